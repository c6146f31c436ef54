//! The dialogue state machine: one per call, fed [`Event`]s with the current `Instant`,
//! answering with [`Action`]s. No I/O, no clock, no async: the call session turns transport
//! and speech events into `Event`s, performs the actions, and calls
//! `handle(Event::Tick, now)` at [`Dialogue::next_deadline`] (or every frame).
//!
//! The flow of a call:
//! 1. `Answered`. Outbound calls first screen for an answering machine (`voicemail`), saying
//!    nothing; inbound calls, and callees found human, hear step 1.
//! 2. Each step is said (`Say`, interruptible). When its `LineDone` arrives, a step that
//!    listens (a question, or a greeting or closing ending in "?") emits `Listen` and waits;
//!    others go on to the next step.
//! 3. An answer (a transcribed turn or a key) is read (`answer`): opt-out ends the call with
//!    a polite line and `SetDoNotCall`; a callback request asks for a time if none was said,
//!    then says goodbye; a repeat request says the line again (twice at most); unclear or
//!    silence re-prompts once, then moves on; yes and no follow the step's `next`, or the next
//!    step in order (after "no", `response` steps right after the question are skipped: they
//!    answer a yes). A greeting's answer only moves on: it never re-prompts.
//! 4. Unsure answers: a yes or no to a yes/no question that is hedged, a bare "okay", mixed,
//!    or transcribed with low confidence is not guessed at: the bot asks "Sorry, was that a
//!    yes?" (once per step) and the reply decides; an unclear reply, or silence, moves on as
//!    unclear. A turn that could not be transcribed (`CallerTurnLost`) is asked again once per
//!    step, on top of the re-prompt an unclear answer gets.
//! 5. Barge-in: caller speech while an interruptible line plays emits `StopSpeaking`; what the
//!    caller then says answers the interrupted step if it listens. Interrupting a step that
//!    does not listen with "no" / "not interested" declines (on to the step's `next.no`, else
//!    the next closing step); with anything else the line is said once more, then skipped.
//! 6. The call ends with `HangUp` (when we end it) and exactly one `Finish` with the outcome
//!    and a one-sentence note.
//!
//! Outcome: `voicemail` for a machine; `optedOut`; `callbackRequested`; else the last yes or
//! no given to a `question` step (`successful` / `rejected`: only an explicit no rejects);
//! else by how the call ended: the script ran out with no question asked (a message
//! delivered) is `successful`; questions left without a clear answer, the caller gone silent
//! or hanging up without answering are `unsuccessful`; a lost connection is `failed`. Calls
//! that are never answered (`noAnswer`, `busy`, `failed`) are reported by the carrier's
//! status, not by the dialogue.

use std::fmt;
use std::time::{Duration, Instant};

use super::answer::{self, Answer, Doubt, Expect, Reading, classify, classify_dtmf};
use super::script::Script;
use super::voicemail::{MachineConfig, MachineDetector, MachineSign, Verdict};
use super::when::CallbackTime;
use crate::domain::status::Outcome;
use crate::domain::template::{StepType, fill};

#[derive(Debug, Clone, PartialEq)]
pub struct DialogueConfig {
    /// Listen for an answering machine before speaking (outbound calls).
    pub screen_for_machine: bool,
    pub machine: MachineConfig,
    /// Silence after a question before the re-prompt (and after it, before moving on).
    pub answer_timeout: Duration,
    /// Silence after a greeting before going on.
    pub greeting_timeout: Duration,
    /// Transcripts below this confidence are unclear (an opt-out is honoured anyway).
    pub min_confidence: f32,
    /// A yes transcribed below this confidence (but above `min_confidence`) is confirmed
    /// before it counts, like a hedged one.
    pub confirm_confidence: f32,
    /// Re-prompts per step for unclear answers or silence.
    pub max_reprompts: u32,
    /// Repeat requests honoured per step.
    pub max_repeats: u32,
    /// Consecutive silent timeouts that end the call.
    pub max_silences: u32,
    /// On a machine without a beep: quiet after its greeting before leaving the message.
    pub beep_silence: Duration,
    /// On a machine: longest wait for the beep.
    pub max_beep_wait: Duration,
    /// Longest call, from answer.
    pub max_duration: Duration,
    /// Steps started per call; stops a `next` loop that never listens.
    pub max_step_visits: u32,
    pub phrases: Phrases,
}

impl Default for DialogueConfig {
    fn default() -> Self {
        Self {
            screen_for_machine: false,
            machine: MachineConfig::default(),
            answer_timeout: Duration::from_secs(6),
            greeting_timeout: Duration::from_secs(3),
            min_confidence: 0.3,
            confirm_confidence: 0.5,
            max_reprompts: 1,
            max_repeats: 2,
            max_silences: 3,
            beep_silence: Duration::from_millis(2500),
            max_beep_wait: Duration::from_secs(30),
            max_duration: Duration::from_secs(15 * 60),
            max_step_visits: 100,
            phrases: Phrases::default(),
        }
    }
}

/// The lines the engine says on its own. `callback_goodbye` may hold `{when}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Phrases {
    pub didnt_catch: String,
    /// Asked once per step when a yes or no was unsure; the reply decides.
    pub confirm: String,
    pub still_there: String,
    pub resume: String,
    pub opt_out_goodbye: String,
    pub ask_callback_time: String,
    pub callback_goodbye: String,
    pub callback_goodbye_no_time: String,
    pub decline_goodbye: String,
    pub farewell: String,
    pub no_response_goodbye: String,
    pub time_limit_goodbye: String,
}

impl Phrases {
    /// The lines said as they are (no `{when}` to fill), for synthesising ahead: a re-prompt
    /// or a confirmation then starts as fast as a scripted line. A line said with a question
    /// after it ("Sorry, I didn't catch that. <question>") is cached sentence by sentence, so
    /// its first sentence is here too.
    pub fn fixed(&self) -> Vec<&str> {
        [
            &self.didnt_catch,
            &self.confirm,
            &self.still_there,
            &self.opt_out_goodbye,
            &self.ask_callback_time,
            &self.callback_goodbye_no_time,
            &self.decline_goodbye,
            &self.farewell,
            &self.no_response_goodbye,
        ]
        .into_iter()
        .map(String::as_str)
        .filter(|line| !line.contains('{'))
        .collect()
    }
}

impl Default for Phrases {
    fn default() -> Self {
        let s = |t: &str| t.to_owned();
        Self {
            didnt_catch: s("Sorry, I didn't catch that."),
            confirm: s("Sorry, was that a yes?"),
            still_there: s("Are you still there?"),
            resume: s("As I was saying:"),
            opt_out_goodbye: s("Understood. We won't call you again. Sorry for the trouble, goodbye."),
            ask_callback_time: s("Of course. When would be a good time to call you back?"),
            callback_goodbye: s("Of course. We'll call you back {when}. Thank you, goodbye."),
            callback_goodbye_no_time: s("Of course. We'll call you back later. Thank you, goodbye."),
            decline_goodbye: s("I understand. Thank you for your time. Goodbye."),
            farewell: s("Thank you. Goodbye."),
            no_response_goodbye: s("I can't hear you, so I'll let you go. Goodbye."),
            time_limit_goodbye: s("I'm sorry, we have to end the call here. Goodbye."),
        }
    }
}

/// Identifies one `Say`; its `LineDone` carries it back (e.g. as a Twilio `mark` name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LineId(pub u32);

impl fmt::Display for LineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line-{}", self.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The callee picked up (outbound) or the call was connected (inbound).
    Answered,
    /// A `Say` finished playing (or was cleared).
    LineDone(LineId),
    /// The caller started talking (the endpointer's `SpeechStarted`, or its `BargeIn`).
    CallerSpeechStarted,
    CallerSpeechEnded,
    /// A transcribed caller turn. An empty `text` means the same as `CallerTurnLost`.
    CallerTurn {
        text: String,
        confidence: f32,
    },
    /// A transcribed caller turn said before the line now in play started (its words came
    /// late, from a busy recogniser): it answers nothing, but an opt-out or a callback request
    /// in it still counts.
    CallerAside {
        text: String,
        confidence: f32,
    },
    /// The caller said something that could not be transcribed (speech-to-text failed or
    /// was refused): the question is asked again once rather than the answer guessed.
    CallerTurnLost,
    Dtmf(char),
    /// The beep detector heard an answering-machine beep end.
    Beep,
    /// Time passed.
    Tick,
    /// The caller hung up (or the transport ended normally).
    HungUp,
    /// The transport broke off without a hang-up.
    TransportLost {
        reason: String,
    },
    /// The call was cancelled through the API; the session hangs up.
    Cancelled,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Say a line; `step` is the template step it comes from, if any.
    Say {
        line: LineId,
        text: String,
        interruptible: bool,
        step: Option<String>,
    },
    /// The caller's turn is awaited; `expect` hints the endpointer (short yes/no answers end sooner).
    Listen {
        expect: Expect,
        timeout: Duration,
    },
    /// Stop playback now (barge-in): clear queued audio.
    StopSpeaking,
    HangUp,
    /// Mark the contact do-not-call (sent as soon as the caller opts out).
    SetDoNotCall,
    /// The call is over; sent exactly once, last.
    Finish(Summary),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub outcome: Outcome,
    /// One sentence on what happened.
    pub notes: String,
    /// The callback asked for, if any (`None` inside means "no time said").
    pub callback: Option<Option<CallbackTime>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// The step's own answer.
    Answer,
    /// The caller cut into a step that does not listen.
    Interruption,
    /// After "when would be a good time?".
    CallbackTime,
    /// After "Sorry, was that a yes?": the reply decides the step's unsure answer.
    Confirm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// A step's line: listen or go on.
    AfterStep(usize),
    Listen(usize, Purpose),
    /// A final line: hang up.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ringing,
    Screening,
    Speaking { line: LineId, then: Then, interruptible: bool },
    Listening { step: usize, purpose: Purpose, deadline: Option<Instant> },
    AwaitingBeep { since: Instant, quiet_since: Option<Instant> },
    Done,
}

#[derive(Debug, Default, Clone, Copy)]
struct Attempts {
    reprompts: u32,
    repeats: u32,
    resumes: u32,
    asked_callback_time: bool,
    /// Asked to confirm an unsure answer (once per step at most).
    asked_to_confirm: bool,
    /// Asked again after a turn that could not be transcribed (once per step at most).
    asked_after_loss: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Ending {
    ScriptDone,
    HungUp,
    BeforeGreeting,
    Silence,
    TransportLost(String),
    Cancelled,
    TimeLimit,
    StepLimit,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Message {
    NoneConfigured,
    Waiting,
    Saying { after_beep: bool },
    Left { after_beep: bool },
    Cut,
}

/// The yes or no that decides the outcome.
#[derive(Debug, Clone, PartialEq)]
struct Decision {
    yes: bool,
    step: String,
    said: String,
    /// The reply to "was that a yes?", when the answer had to be confirmed.
    confirmed_by: Option<String>,
}

#[derive(Debug, Default, Clone)]
struct Tally {
    voicemail: Option<(MachineSign, Message)>,
    opted_out: Option<(String, String)>,
    callback: Option<(String, Option<CallbackTime>, String)>,
    /// The last yes/no to a question.
    decision: Option<Decision>,
    last_question: Option<String>,
    reached_closing: bool,
    steps_said: u32,
    ending: Option<(Ending, Option<String>)>,
}

/// Cloneable so the call core can snapshot it before a caller turn and roll back the reply
/// when the caller turns out only to have paused (the merged turn is then fed to the copy).
#[derive(Debug, Clone)]
pub struct Dialogue {
    script: Script,
    config: DialogueConfig,
    state: State,
    lines: u32,
    answered_at: Option<Instant>,
    detector: Option<MachineDetector>,
    attempts: Attempts,
    /// What was said, while "was that a yes?" waits for its reply.
    pending: Option<String>,
    /// The step in play, for notes.
    current: Option<usize>,
    silent_run: u32,
    visits: u32,
    ending: bool,
    tally: Tally,
}

impl Dialogue {
    pub fn new(script: Script, config: DialogueConfig) -> Self {
        Self {
            script,
            config,
            state: State::Ringing,
            lines: 0,
            answered_at: None,
            detector: None,
            attempts: Attempts::default(),
            pending: None,
            current: None,
            silent_run: 0,
            visits: 0,
            ending: false,
            tally: Tally::default(),
        }
    }

    /// Everything the call may say, for synthesising ahead.
    pub fn script(&self) -> &Script {
        &self.script
    }

    pub fn phrases(&self) -> &Phrases {
        &self.config.phrases
    }

    pub fn is_finished(&self) -> bool {
        self.state == State::Done
    }

    /// Goes back to `earlier`, a clone of this dialogue taken before a caller turn that turned
    /// out to be unfinished (the call core withdraws the reply). Line ids keep counting up, so
    /// audio or marks of the withdrawn line can never be taken for a later one.
    pub fn rewind_to(&mut self, earlier: Dialogue) {
        let lines = self.lines;
        *self = earlier;
        self.lines = self.lines.max(lines);
    }

    /// True while a line the caller may interrupt is being said.
    pub fn speaking_interruptibly(&self) -> bool {
        matches!(self.state, State::Speaking { interruptible: true, .. })
    }

    /// The line playing, if any.
    pub fn speaking(&self) -> Option<LineId> {
        match self.state {
            State::Speaking { line, .. } => Some(line),
            _ => None,
        }
    }

    /// Whether the session should run the beep detector on the caller's audio: while
    /// screening, waiting for the beep, and while a human verdict may still be revised.
    pub fn wants_beep(&self) -> bool {
        match self.state {
            State::Screening | State::AwaitingBeep { .. } => true,
            State::Ringing | State::Done => false,
            _ => self.detector.is_some() && self.tally.voicemail.is_none(),
        }
    }

    /// When `Tick` next matters.
    pub fn next_deadline(&self) -> Option<Instant> {
        let state_deadline = match self.state {
            State::Screening => self.detector.as_ref().and_then(MachineDetector::next_deadline),
            State::Listening { deadline, .. } => deadline,
            State::AwaitingBeep { since, quiet_since } => {
                let cap = since + self.config.max_beep_wait;
                Some(quiet_since.map_or(cap, |q| cap.min(q + self.config.beep_silence)))
            }
            _ => None,
        };
        let limit = if self.ending || self.state == State::Done {
            None
        } else {
            self.answered_at.map(|a| a + self.config.max_duration)
        };
        match (state_deadline, limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Done {
            return out;
        }
        match event {
            Event::Answered => self.on_answered(now, &mut out),
            Event::HungUp => self.on_ended(None, &mut out),
            Event::TransportLost { reason } => self.on_ended(Some(reason), &mut out),
            Event::Cancelled => {
                self.set_ending(Ending::Cancelled);
                self.on_ended(None, &mut out);
            }
            _ if self.state == State::Ringing => {}
            Event::LineDone(line) => self.on_line_done(line, now, &mut out),
            Event::CallerSpeechStarted => self.on_speech_started(now, &mut out),
            Event::CallerSpeechEnded => self.on_speech_ended(now, &mut out),
            Event::CallerTurn { text, confidence } => self.on_turn(text, confidence, now, &mut out),
            Event::CallerAside { text, confidence } => self.on_aside(text, confidence, now, &mut out),
            Event::CallerTurnLost => self.on_turn_lost(now, &mut out),
            Event::Dtmf(digit) => self.on_dtmf(digit, now, &mut out),
            Event::Beep => self.on_beep(now, &mut out),
            Event::Tick => self.on_tick(now, &mut out),
        }
        out
    }

    // ---- events ----

    fn on_answered(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state != State::Ringing {
            return;
        }
        self.answered_at = Some(now);
        if self.config.screen_for_machine {
            self.detector = Some(MachineDetector::new(self.config.machine.clone(), now));
            self.state = State::Screening;
            out.push(Action::Listen { expect: Expect::Open, timeout: self.config.machine.max_analysis });
        } else {
            self.start_step(0, out);
        }
    }

    fn on_ended(&mut self, reason: Option<String>, out: &mut Vec<Action>) {
        if self.state == State::Ringing {
            // Never answered: the summary reads it from `answered_at`.
            self.set_ending(reason.map_or(Ending::HungUp, Ending::TransportLost));
            self.finish(out);
            return;
        }
        if let Some((_, message)) = &mut self.tally.voicemail
            && matches!(message, Message::Waiting | Message::Saying { .. })
        {
            *message = Message::Cut;
        }
        let ending = match (reason, self.state) {
            (Some(r), _) => Ending::TransportLost(r),
            (None, State::Screening) => Ending::BeforeGreeting,
            (None, _) => Ending::HungUp,
        };
        self.set_ending(ending);
        self.finish(out);
    }

    fn on_line_done(&mut self, line: LineId, now: Instant, out: &mut Vec<Action>) {
        let State::Speaking { line: playing, then, .. } = self.state else { return };
        if playing != line {
            return;
        }
        match then {
            Then::AfterStep(i) => self.after_step(i, now, out),
            Then::Listen(i, purpose) => self.listen(i, purpose, now, out),
            Then::End => self.hang_up(out),
        }
    }

    fn on_speech_started(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.feed_detector(now, out, |d| d.speech_started(now)) {
            return;
        }
        match self.state {
            State::AwaitingBeep { since, .. } => self.state = State::AwaitingBeep { since, quiet_since: None },
            State::Speaking { then, interruptible: true, .. } => {
                if let Some((i, purpose)) = self.interrupt(then, out) {
                    out.push(Action::Listen { expect: self.expect(i, purpose), timeout: self.timeout(i, purpose) });
                }
            }
            State::Listening { step, purpose, .. } => {
                self.state = State::Listening { step, purpose, deadline: None };
            }
            _ => {}
        }
    }

    fn on_speech_ended(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.feed_detector(now, out, |d| d.speech_ended(now)) {
            return;
        }
        match self.state {
            State::AwaitingBeep { since, .. } => self.state = State::AwaitingBeep { since, quiet_since: Some(now) },
            // Wait for the transcript; if none comes (it was noise) this times out as silence.
            State::Listening { step, purpose, deadline: None } => {
                let deadline = Some(now + self.timeout(step, purpose));
                self.state = State::Listening { step, purpose, deadline };
            }
            _ => {}
        }
    }

    fn on_turn(&mut self, text: String, confidence: f32, now: Instant, out: &mut Vec<Action>) {
        if self.feed_detector(now, out, |d| d.transcript(&text, now)) {
            return;
        }
        if text.trim().is_empty() {
            self.on_turn_lost(now, out);
            return;
        }
        match self.state {
            State::Listening { step, purpose, .. } => {
                let reading = self.read(&text, confidence, step, purpose);
                self.on_reading(step, purpose, reading, text, now, out);
            }
            // A turn that began before this line (no barge-in): only an opt-out or a callback
            // request is acted on; anything else was an aside.
            State::Speaking { then, interruptible, .. } => {
                let answer = classify(&text, Expect::Open);
                match answer {
                    Answer::OptOut if !interruptible => self.mark_opted_out(self.current, text, out),
                    Answer::OptOut | Answer::Callback(_) if interruptible => {
                        if let Some((i, purpose)) = self.interrupt(then, out) {
                            self.on_answer(i, purpose, answer, text, now, out);
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn on_aside(&mut self, text: String, confidence: f32, now: Instant, out: &mut Vec<Action>) {
        if self.feed_detector(now, out, |d| d.transcript(&text, now)) {
            return;
        }
        match self.state {
            // Over a line, a turn is an aside anyway.
            State::Speaking { .. } => self.on_turn(text, confidence, now, out),
            State::Listening { step, purpose, .. } => {
                let answer = classify(&text, Expect::Open);
                if matches!(answer, Answer::OptOut | Answer::Callback(_)) {
                    self.on_answer(step, purpose, answer, text, now, out);
                }
            }
            _ => {}
        }
    }

    /// Speech that could not be transcribed, while listening: the question is asked again,
    /// once per step and apart from the re-prompt for an unclear answer, so a failure of ours
    /// does not use up the caller's second chance. A greeting's answer only moves the call on,
    /// and an interruption only resumes the line, so there it counts as unclear.
    fn on_turn_lost(&mut self, now: Instant, out: &mut Vec<Action>) {
        let State::Listening { step: i, purpose, .. } = self.state else { return };
        let greeting = self.script.steps().get(i).is_some_and(|s| s.kind == StepType::Greeting);
        let only_moves_on = purpose == Purpose::Interruption || (greeting && purpose == Purpose::Answer);
        if self.attempts.asked_after_loss || only_moves_on {
            self.on_answer(i, purpose, Answer::Unclear, String::new(), now, out);
            return;
        }
        self.attempts.asked_after_loss = true;
        self.silent_run = 0;
        let again = self.ask_again(i, purpose);
        self.say(again, true, Some(i), Then::Listen(i, purpose), out);
    }

    /// "Sorry, I didn't catch that." and what was last asked.
    fn ask_again(&self, i: usize, purpose: Purpose) -> String {
        let p = &self.config.phrases;
        let asked = match purpose {
            // The confirmation is short and already starts with "Sorry".
            Purpose::Confirm => return p.confirm.clone(),
            Purpose::CallbackTime => p.ask_callback_time.as_str(),
            Purpose::Answer | Purpose::Interruption => self.script.steps().get(i).map_or("", |s| s.text.as_str()),
        };
        format!("{} {}", p.didnt_catch, last_question(asked))
    }

    /// The turn's reading, with the recogniser's own confidence folded in.
    fn read(&self, text: &str, confidence: f32, i: usize, purpose: Purpose) -> Reading {
        let reading = answer::read(text, self.expect(i, purpose));
        if reading.answer == Answer::OptOut {
            reading
        } else if confidence < self.config.min_confidence {
            Reading::clear(Answer::Unclear)
        } else if reading.answer == Answer::Yes
            && reading.doubt.is_none()
            && confidence < self.config.confirm_confidence
        {
            // Only a yes is confirmed for a shaky transcript: a misheard refusal taken as a yes
            // books a sale nobody agreed to; a plain "no" heard without confidence costs a
            // question more if it is confirmed, and nothing if it is not.
            Reading { doubt: Some(Doubt::LowConfidence), ..reading }
        } else {
            reading
        }
    }

    /// An unsure yes or no to a yes/no question is confirmed ("Sorry, was that a yes?") once
    /// per step; after that, and for an unsure reply to the confirmation, it decides nothing.
    fn on_reading(
        &mut self,
        i: usize,
        purpose: Purpose,
        reading: Reading,
        said: String,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let answer = match (purpose, reading.doubt) {
            (_, None) => reading.answer,
            (Purpose::Confirm, Some(doubt)) if settles_a_confirmation(doubt) => reading.answer,
            (Purpose::Confirm, Some(_)) => Answer::Unclear,
            (Purpose::Answer, Some(_)) if self.expect(i, purpose) == Expect::YesNo => {
                if !self.attempts.asked_to_confirm {
                    self.ask_to_confirm(i, said, out);
                    return;
                }
                Answer::Unclear
            }
            (_, Some(_)) => reading.answer,
        };
        self.on_answer(i, purpose, answer, said, now, out);
    }

    fn ask_to_confirm(&mut self, i: usize, said: String, out: &mut Vec<Action>) {
        self.attempts.asked_to_confirm = true;
        self.silent_run = 0;
        self.pending = Some(said);
        let ask = self.config.phrases.confirm.clone();
        self.say(ask, true, Some(i), Then::Listen(i, Purpose::Confirm), out);
    }

    fn on_dtmf(&mut self, digit: char, now: Instant, out: &mut Vec<Action>) {
        if self.feed_detector(now, out, |d| d.keypress(now)) || self.state == State::Screening {
            return;
        }
        let Some(answer) = classify_dtmf(digit) else { return };
        let said = format!("pressed {digit}");
        match self.state {
            State::Listening { step, purpose, .. } => self.on_answer(step, purpose, answer, said, now, out),
            State::Speaking { then, interruptible: true, .. } => {
                if let Some((i, purpose)) = self.interrupt(then, out) {
                    self.on_answer(i, purpose, answer, said, now, out);
                }
            }
            State::Speaking { interruptible: false, .. } if answer == Answer::OptOut => {
                self.mark_opted_out(self.current, said, out)
            }
            _ => {}
        }
    }

    fn on_beep(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.feed_detector(now, out, |d| d.beep(now)) {
            return;
        }
        if let State::AwaitingBeep { .. } = self.state {
            self.leave_message(true, out);
        }
    }

    fn on_tick(&mut self, now: Instant, out: &mut Vec<Action>) {
        if !self.ending
            && let Some(answered) = self.answered_at
            && now.saturating_duration_since(answered) >= self.config.max_duration
        {
            if matches!(self.state, State::Speaking { .. }) {
                out.push(Action::StopSpeaking);
            }
            let text = self.config.phrases.time_limit_goodbye.clone();
            self.end_with(text, Ending::TimeLimit, None, out);
            return;
        }
        match self.state {
            State::Screening => {
                self.feed_detector(now, out, |d| d.tick(now));
            }
            State::Listening { step, purpose, deadline: Some(deadline) } if now >= deadline => {
                self.on_silence(step, purpose, now, out)
            }
            State::AwaitingBeep { since, quiet_since } => {
                let quiet = quiet_since.is_some_and(|q| now.saturating_duration_since(q) >= self.config.beep_silence);
                if quiet || now.saturating_duration_since(since) >= self.config.max_beep_wait {
                    self.leave_message(false, out);
                }
            }
            _ => {}
        }
    }

    // ---- voicemail ----

    /// Feeds the machine detector; true when a machine was found and the call switched to
    /// voicemail (the event is then used up), or while still screening.
    fn feed_detector(
        &mut self,
        now: Instant,
        out: &mut Vec<Action>,
        feed: impl FnOnce(&mut MachineDetector) -> Option<Verdict>,
    ) -> bool {
        if matches!(self.state, State::AwaitingBeep { .. }) || self.tally.voicemail.is_some() {
            return false;
        }
        let Some(detector) = self.detector.as_mut() else { return false };
        match feed(detector) {
            Some(Verdict::Machine(sign)) => {
                self.on_machine(sign, now, out);
                true
            }
            Some(Verdict::Human(_)) if self.state == State::Screening => {
                self.start_step(0, out);
                true
            }
            _ => self.state == State::Screening,
        }
    }

    fn on_machine(&mut self, sign: MachineSign, now: Instant, out: &mut Vec<Action>) {
        if matches!(self.state, State::Speaking { .. }) {
            out.push(Action::StopSpeaking);
        }
        self.ending = true;
        if self.script.voicemail_message().is_none() {
            self.tally.voicemail = Some((sign, Message::NoneConfigured));
            self.hang_up(out);
            return;
        }
        self.tally.voicemail = Some((sign, Message::Waiting));
        if sign == MachineSign::Beep {
            self.leave_message(true, out);
            return;
        }
        let quiet_since = match &self.detector {
            Some(d) if !d.in_speech() => Some(d.last_speech_end().unwrap_or(now)),
            _ => None,
        };
        self.state = State::AwaitingBeep { since: now, quiet_since };
    }

    fn leave_message(&mut self, after_beep: bool, out: &mut Vec<Action>) {
        let Some(text) = self.script.voicemail_message().map(str::to_owned) else {
            self.hang_up(out);
            return;
        };
        if let Some((_, message)) = &mut self.tally.voicemail {
            *message = Message::Saying { after_beep };
        }
        self.say(text, false, None, Then::End, out);
    }

    // ---- steps ----

    fn start_step(&mut self, i: usize, out: &mut Vec<Action>) {
        self.visits += 1;
        if self.visits > self.config.max_step_visits {
            self.set_ending(Ending::StepLimit);
            self.hang_up(out);
            return;
        }
        let Some(step) = self.script.steps().get(i) else {
            self.set_ending(Ending::ScriptDone);
            self.hang_up(out);
            return;
        };
        let (text, kind) = (step.text.clone(), step.kind);
        self.current = Some(i);
        self.attempts = Attempts::default();
        self.pending = None;
        self.tally.steps_said += 1;
        match kind {
            StepType::Closing => self.tally.reached_closing = true,
            StepType::Question => self.tally.last_question = Some(step.id.clone()),
            _ => {}
        }
        self.say(text, true, Some(i), Then::AfterStep(i), out);
    }

    fn after_step(&mut self, i: usize, now: Instant, out: &mut Vec<Action>) {
        let Some(step) = self.script.steps().get(i) else { return };
        if step.listens {
            self.listen(i, Purpose::Answer, now, out);
        } else if let Some(j) = step.next.default {
            self.start_step(j, out);
        } else if step.kind == StepType::Closing {
            self.set_ending(Ending::ScriptDone);
            self.hang_up(out);
        } else {
            self.advance(i, None, out);
        }
    }

    /// After step `i` was answered (or needed no answer): its branch, else the next in order.
    fn advance(&mut self, i: usize, answer: Option<Answer>, out: &mut Vec<Action>) {
        let Some(step) = self.script.steps().get(i) else { return };
        let branch = match answer {
            Some(Answer::Yes) => step.next.yes,
            Some(Answer::No) => step.next.no,
            Some(Answer::Unclear) => step.next.unclear,
            _ => None,
        };
        if let Some(j) = branch.or(step.next.default) {
            self.start_step(j, out);
            return;
        }
        if step.kind == StepType::Closing {
            let text = self.config.phrases.farewell.clone();
            self.end_with(text, Ending::ScriptDone, None, out);
            return;
        }
        let mut j = i + 1;
        if answer == Some(Answer::No) {
            while self.script.steps().get(j).is_some_and(|s| s.kind == StepType::Response) {
                j += 1;
            }
        }
        if j < self.script.steps().len() {
            self.start_step(j, out);
        } else {
            let declined = self.tally.decision.as_ref().is_some_and(|d| !d.yes);
            let p = &self.config.phrases;
            let text = if declined { p.decline_goodbye.clone() } else { p.farewell.clone() };
            self.end_with(text, Ending::ScriptDone, None, out);
        }
    }

    fn listen(&mut self, i: usize, purpose: Purpose, now: Instant, out: &mut Vec<Action>) {
        let timeout = self.timeout(i, purpose);
        self.state = State::Listening { step: i, purpose, deadline: Some(now + timeout) };
        out.push(Action::Listen { expect: self.expect(i, purpose), timeout });
    }

    fn expect(&self, i: usize, purpose: Purpose) -> Expect {
        match purpose {
            Purpose::CallbackTime => Expect::CallbackTime,
            Purpose::Interruption => Expect::Open,
            Purpose::Confirm => Expect::YesNo,
            Purpose::Answer => self.script.steps().get(i).map_or(Expect::Open, |s| s.expect),
        }
    }

    fn timeout(&self, i: usize, purpose: Purpose) -> Duration {
        let greeting = self.script.steps().get(i).is_some_and(|s| s.kind == StepType::Greeting);
        if greeting && purpose == Purpose::Answer { self.config.greeting_timeout } else { self.config.answer_timeout }
    }

    /// Barge-in: stops the line and listens for what interrupted it.
    fn interrupt(&mut self, then: Then, out: &mut Vec<Action>) -> Option<(usize, Purpose)> {
        let (i, purpose) = match then {
            Then::AfterStep(i) => {
                let listens = self.script.steps().get(i).is_some_and(|s| s.listens);
                (i, if listens { Purpose::Answer } else { Purpose::Interruption })
            }
            Then::Listen(i, purpose) => (i, purpose),
            Then::End => return None,
        };
        out.push(Action::StopSpeaking);
        self.state = State::Listening { step: i, purpose, deadline: None };
        Some((i, purpose))
    }

    fn on_answer(
        &mut self,
        i: usize,
        purpose: Purpose,
        answer: Answer,
        said: String,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(step) = self.script.steps().get(i) else { return };
        let (id, kind, text) = (step.id.clone(), step.kind, step.text.clone());
        self.silent_run = 0;
        match answer {
            Answer::OptOut => {
                self.mark_opted_out(Some(i), said, out);
                let target = self.script.steps().get(i).and_then(|s| s.next.opt_out);
                let line = self.closing_line(target, self.config.phrases.opt_out_goodbye.clone());
                self.end_with(line, Ending::ScriptDone, target, out);
            }
            Answer::Callback(when) => {
                let asked = self.attempts.asked_callback_time || purpose == Purpose::CallbackTime;
                if when.is_none() && !asked {
                    self.attempts.asked_callback_time = true;
                    self.tally.callback = Some((id, None, said));
                    let ask = self.config.phrases.ask_callback_time.clone();
                    self.say(ask, true, None, Then::Listen(i, Purpose::CallbackTime), out);
                } else {
                    self.callback_goodbye(i, when, said, out);
                }
            }
            Answer::Repeat if self.attempts.repeats < self.config.max_repeats => {
                self.attempts.repeats += 1;
                match purpose {
                    Purpose::CallbackTime => {
                        let ask = self.config.phrases.ask_callback_time.clone();
                        self.say(ask, true, None, Then::Listen(i, purpose), out);
                    }
                    Purpose::Answer => self.say(text, true, Some(i), Then::Listen(i, purpose), out),
                    Purpose::Interruption => self.say(text, true, Some(i), Then::AfterStep(i), out),
                    Purpose::Confirm => {
                        let ask = self.config.phrases.confirm.clone();
                        self.say(ask, true, Some(i), Then::Listen(i, purpose), out);
                    }
                }
            }
            Answer::Yes | Answer::No | Answer::Unclear | Answer::Repeat => match purpose {
                Purpose::CallbackTime => {
                    if answer == Answer::No {
                        // "Never mind": no callback after all.
                        self.tally.callback = None;
                        self.tally.decision = Some(Decision { yes: false, step: id, said, confirmed_by: None });
                        let line = self.config.phrases.decline_goodbye.clone();
                        self.end_with(line, Ending::ScriptDone, None, out);
                    } else {
                        self.callback_goodbye(i, None, said, out);
                    }
                }
                Purpose::Interruption => {
                    if answer == Answer::No {
                        self.tally.decision = Some(Decision { yes: false, step: id, said, confirmed_by: None });
                        self.decline_from(i, out);
                    } else if self.attempts.resumes == 0 {
                        self.attempts.resumes += 1;
                        let again = format!("{} {}", self.config.phrases.resume, text);
                        self.say(again, true, Some(i), Then::AfterStep(i), out);
                    } else {
                        self.after_step(i, now, out);
                    }
                }
                Purpose::Confirm => match answer {
                    Answer::Yes | Answer::No => {
                        let first = self.pending.take().unwrap_or_default();
                        self.decide(i, answer, first, Some(said), out);
                    }
                    _ => {
                        self.pending = None;
                        self.advance(i, Some(Answer::Unclear), out);
                    }
                },
                Purpose::Answer => match answer {
                    Answer::Yes | Answer::No => self.decide(i, answer, said, None, out),
                    _ => {
                        if kind != StepType::Greeting && self.attempts.reprompts < self.config.max_reprompts {
                            self.attempts.reprompts += 1;
                            let again = format!("{} {}", self.config.phrases.didnt_catch, last_question(&text));
                            self.say(again, true, Some(i), Then::Listen(i, purpose), out);
                        } else {
                            self.advance(i, Some(Answer::Unclear), out);
                        }
                    }
                },
            },
        }
    }

    /// A yes or no to step `i`: a question's decides the outcome; either follows the branch.
    fn decide(&mut self, i: usize, answer: Answer, said: String, confirmed_by: Option<String>, out: &mut Vec<Action>) {
        if let Some(step) = self.script.steps().get(i)
            && step.kind == StepType::Question
        {
            let (yes, step) = (answer == Answer::Yes, step.id.clone());
            self.tally.decision = Some(Decision { yes, step, said, confirmed_by });
        }
        self.advance(i, Some(answer), out);
    }

    fn on_silence(&mut self, i: usize, purpose: Purpose, now: Instant, out: &mut Vec<Action>) {
        let Some(step) = self.script.steps().get(i) else { return };
        let (kind, text) = (step.kind, step.text.clone());
        // Waiting out a greeting is normal; it does not count as the caller going quiet.
        if kind == StepType::Greeting && purpose == Purpose::Answer {
            self.advance(i, None, out);
            return;
        }
        self.silent_run += 1;
        if self.silent_run >= self.config.max_silences {
            let line = self.config.phrases.no_response_goodbye.clone();
            self.end_with(line, Ending::Silence, None, out);
            return;
        }
        match purpose {
            Purpose::CallbackTime => self.callback_goodbye(i, None, String::new(), out),
            Purpose::Interruption => self.after_step(i, now, out),
            // No reply to "was that a yes?": the answer stays unclear.
            Purpose::Confirm => {
                self.pending = None;
                self.advance(i, Some(Answer::Unclear), out);
            }
            Purpose::Answer => {
                if self.attempts.reprompts < self.config.max_reprompts {
                    self.attempts.reprompts += 1;
                    let again = format!("{} {}", self.config.phrases.still_there, last_question(&text));
                    self.say(again, true, Some(i), Then::Listen(i, purpose), out);
                } else {
                    self.advance(i, Some(Answer::Unclear), out);
                }
            }
        }
    }

    /// "No" while a step that does not listen was playing: the step's `next.no`, else the
    /// next closing step, else a goodbye.
    fn decline_from(&mut self, i: usize, out: &mut Vec<Action>) {
        let steps = self.script.steps();
        let target = steps.get(i).and_then(|s| s.next.no).or_else(|| {
            steps.iter().enumerate().skip(i + 1).find(|(_, s)| s.kind == StepType::Closing).map(|(j, _)| j)
        });
        match target {
            Some(j) => self.start_step(j, out),
            None => {
                let line = self.config.phrases.decline_goodbye.clone();
                self.end_with(line, Ending::ScriptDone, None, out);
            }
        }
    }

    fn mark_opted_out(&mut self, step: Option<usize>, said: String, out: &mut Vec<Action>) {
        if self.tally.opted_out.is_some() {
            return;
        }
        let id = step.and_then(|i| self.script.steps().get(i)).map(|s| s.id.clone()).unwrap_or_default();
        self.tally.opted_out = Some((id, said));
        out.push(Action::SetDoNotCall);
    }

    fn callback_goodbye(&mut self, i: usize, when: Option<CallbackTime>, said: String, out: &mut Vec<Action>) {
        let id = self.script.steps().get(i).map(|s| s.id.clone()).unwrap_or_default();
        // Keep what was said when the callback was first asked for, if this is the time answer.
        let said = match &self.tally.callback {
            Some((_, _, first)) if !first.is_empty() => first.clone(),
            _ => said,
        };
        let id = match &self.tally.callback {
            Some((first, _, _)) => first.clone(),
            None => id,
        };
        self.tally.callback = Some((id, when, said));
        let target = self.script.steps().get(i).and_then(|s| s.next.callback);
        let p = &self.config.phrases;
        let builtin = match when {
            Some(t) => fill(&p.callback_goodbye, |name| (name == "when").then(|| t.to_string())),
            None => p.callback_goodbye_no_time.clone(),
        };
        let line = self.closing_line(target, builtin);
        self.end_with(line, Ending::ScriptDone, target, out);
    }

    /// The text of a `next.optOut` / `next.callback` step, else the built-in line.
    fn closing_line(&self, target: Option<usize>, builtin: String) -> String {
        target.and_then(|j| self.script.steps().get(j)).map_or(builtin, |s| s.text.clone())
    }

    // ---- ending ----

    fn say(&mut self, text: String, interruptible: bool, step: Option<usize>, then: Then, out: &mut Vec<Action>) {
        self.lines += 1;
        let line = LineId(self.lines);
        let step = step.and_then(|i| self.script.steps().get(i)).map(|s| s.id.clone());
        out.push(Action::Say { line, text, interruptible, step });
        self.state = State::Speaking { line, then, interruptible };
    }

    /// Says a last line (not interruptible), then hangs up.
    fn end_with(&mut self, text: String, ending: Ending, step: Option<usize>, out: &mut Vec<Action>) {
        self.ending = true;
        self.set_ending(ending);
        if let Some(j) = step {
            self.current = Some(j);
        }
        self.say(text, false, step, Then::End, out);
    }

    fn set_ending(&mut self, ending: Ending) {
        if self.tally.ending.is_none() {
            let step = self.current.and_then(|i| self.script.steps().get(i)).map(|s| s.id.clone());
            self.tally.ending = Some((ending, step));
        }
    }

    fn hang_up(&mut self, out: &mut Vec<Action>) {
        if let Some((_, message)) = &mut self.tally.voicemail
            && let Message::Saying { after_beep } = *message
        {
            *message = Message::Left { after_beep };
        }
        self.set_ending(Ending::ScriptDone);
        out.push(Action::HangUp);
        self.finish(out);
    }

    fn finish(&mut self, out: &mut Vec<Action>) {
        self.state = State::Done;
        self.ending = true;
        out.push(Action::Finish(self.summary()));
    }

    fn summary(&self) -> Summary {
        let t = &self.tally;
        let quote = |said: &str| quoted(said).map(|q| format!(" ({q})")).unwrap_or_default();
        let callback = t.callback.as_ref().map(|(_, when, _)| *when);
        let (outcome, notes) = if self.answered_at.is_none() {
            // Normally the carrier's status reports an unanswered call; this covers an end
            // reported to the dialogue before `Answered`.
            match &t.ending {
                Some((Ending::TransportLost(reason), _)) => {
                    (Outcome::Failed, format!("The call failed before it was answered: {reason}."))
                }
                Some((Ending::Cancelled, _)) => {
                    (Outcome::NoAnswer, "Call cancelled through the API before it was answered.".to_owned())
                }
                _ => (Outcome::NoAnswer, "No answer.".to_owned()),
            }
        } else if let Some((sign, message)) = &t.voicemail {
            let how = sign.describe();
            let notes = match message {
                Message::NoneConfigured => {
                    format!("Reached voicemail ({how}); no message left because the template has none.")
                }
                Message::Left { after_beep: true } => {
                    format!("Reached voicemail ({how}); left the message after the beep.")
                }
                Message::Left { after_beep: false } => {
                    format!("Reached voicemail ({how}); left the message without hearing a beep.")
                }
                Message::Waiting | Message::Saying { .. } | Message::Cut => {
                    format!("Reached voicemail ({how}); the line closed before the message was complete.")
                }
            };
            (Outcome::Voicemail, notes)
        } else if let Some((step, said)) = &t.opted_out {
            let at = if step.is_empty() { String::new() } else { format!(" at step {step}") };
            (Outcome::OptedOut, format!("Caller asked not to be called again{at}{}; marked do-not-call.", quote(said)))
        } else if let Some((step, when, _)) = &t.callback {
            let notes = match when {
                Some(when) => format!("Caller asked to be called back {when} (at step {step})."),
                None => format!("Caller asked to be called back, without a time (at step {step})."),
            };
            (Outcome::CallbackRequested, notes)
        } else if let Some(d) = &t.decision {
            let said = match (quoted(&d.said), d.confirmed_by.as_deref().and_then(quoted)) {
                (Some(first), Some(reply)) => format!(" ({first}; {reply} when asked to confirm)"),
                (first, reply) => first.or(reply).map(|q| format!(" ({q})")).unwrap_or_default(),
            };
            if d.yes {
                (Outcome::Successful, format!("Caller agreed at step {}{said}.", d.step))
            } else {
                (Outcome::Rejected, format!("Caller declined at step {}{said}.", d.step))
            }
        } else {
            let (ending, step) = t.ending.clone().unwrap_or((Ending::ScriptDone, None));
            let step = step.unwrap_or_else(|| "1".to_owned());
            match ending {
                Ending::ScriptDone => match &t.last_question {
                    None => (
                        Outcome::Successful,
                        format!("Message delivered: the caller heard all {} steps.", t.steps_said),
                    ),
                    Some(q) => (Outcome::Unsuccessful, format!("Script completed without a clear answer at step {q}.")),
                },
                Ending::HungUp if t.reached_closing => match &t.last_question {
                    None => {
                        (Outcome::Successful, "Message delivered: the caller hung up during the closing.".to_owned())
                    }
                    Some(q) => (
                        Outcome::Unsuccessful,
                        format!("Caller hung up during the closing without a clear answer at step {q}."),
                    ),
                },
                // Hanging up is not saying no: only an explicit no is `rejected`.
                Ending::HungUp => match &t.last_question {
                    None => (Outcome::Unsuccessful, format!("Caller hung up during step {step} without answering.")),
                    Some(q) => (
                        Outcome::Unsuccessful,
                        format!("Caller hung up during step {step} without a clear answer to step {q}."),
                    ),
                },
                Ending::BeforeGreeting => (Outcome::Unsuccessful, "Callee hung up before the greeting.".to_owned()),
                Ending::Silence => (Outcome::Unsuccessful, format!("Caller stopped responding at step {step}.")),
                Ending::TransportLost(reason) => {
                    (Outcome::Failed, format!("Connection lost during step {step}: {reason}."))
                }
                Ending::Cancelled => (
                    Outcome::Unsuccessful,
                    format!("Call cancelled through the API during step {step}, before a clear answer."),
                ),
                Ending::TimeLimit => (
                    Outcome::Unsuccessful,
                    format!(
                        "Call ended at the {}-minute limit during step {step}.",
                        self.config.max_duration.as_secs() / 60
                    ),
                ),
                Ending::StepLimit => (
                    Outcome::Failed,
                    format!("Script stopped after {} steps: its `next` links loop.", self.config.max_step_visits),
                ),
            }
        };
        Summary { outcome, notes, callback }
    }
}

/// What was said, for notes: quoted and cut at 80 characters, or a key as "pressed 1".
fn quoted(said: &str) -> Option<String> {
    let said = said.trim();
    if said.is_empty() {
        return None;
    }
    if said.starts_with("pressed ") {
        return Some(said.to_owned());
    }
    let short: String = said.chars().take(80).collect();
    let ellipsis = if said.chars().count() > 80 { "..." } else { "" };
    Some(format!("\"{short}{ellipsis}\""))
}

/// Whether an unsure reply to "was that a yes?" still settles it: a bare "okay" or a hedged
/// "yeah, I guess" answers that question; a yes asked back, broken off, next to an unexplained
/// "not", or mixed with a no does not.
fn settles_a_confirmation(doubt: Doubt) -> bool {
    match doubt {
        Doubt::Acknowledgment | Doubt::Hedged | Doubt::LowConfidence => true,
        Doubt::Questioning | Doubt::Mixed | Doubt::StrayNegation | Doubt::CutOff => false,
    }
}

/// The question to ask again: the last sentence ending in "?", else the whole text.
fn last_question(text: &str) -> &str {
    let Some(end) = text.rfind('?') else { return text.trim() };
    let before = &text[..end];
    let start = before.rfind(['.', '!', '?']).map(|i| i + 1).unwrap_or(0);
    text[start..=end].trim()
}
