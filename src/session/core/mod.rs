//! The call core: everything a call decides, as a sans-IO state machine. It owns the dialogue,
//! the endpointer, the beep detector, the outbound pacer and the transcript; it holds no socket,
//! file, model or transport type. A transport adapter and the session task feed it [`Input`]s,
//! each with the `Instant` it happened at, and carry out the [`Output`]s it queues
//! ([`CallCore::poll`]). Time only moves when an input says so, so tests drive whole
//! conversations on a virtual clock with recorded audio.
//!
//! Audio runs at 8 kHz in 20 ms frames both ways. Inbound frames come with their VAD speech
//! probability (the session runs Silero); outbound frames leave through the pacer, one per
//! `Tick`.
//!
//! Turn-taking, the part a caller hears:
//! - **End of turn.** At a short pause (the endpointer's `Pause`, 200 ms of silence) the core
//!   asks for the turn's transcript and for the end-of-turn model's verdict at once (`Transcribe`
//!   and `Judge`, same audio), and weighs both (`words::weigh`): every sign of an end (the model
//!   says complete, whisper closed the words with a full stop, nothing left open, a few words at
//!   least) ends the turn at once; one sign ends it once the caller has been quiet `settle_ms`
//!   (longer than a mid-sentence pause); none, or an open ending ("Yes, and", "for", "um"),
//!   waits for the endpointer's silence ceiling. A caller who goes on (`Resumed`) drops both
//!   answers; the turn continues.
//! - **Never over the caller.** A line's first frame is held while the caller is mid-turn.
//! - **Withdrawing a reply.** The dialogue's state is snapshot before each caller turn. If the
//!   caller starts speaking again before the reply has played `withdraw_window_ms` (or before it
//!   started), the reply is cleared without a word, the dialogue is rolled back, and the two
//!   parts are transcribed and answered as one turn.
//! - **Barge-in and backchannels.** Speech over a playing, interruptible line (`barge_in_ms` of
//!   it) pauses the line at once (`Clear`), keeping the rest of its audio. If the utterance turns
//!   out to be a backchannel ("uh-huh", "okay" over a statement) or nothing, the line resumes
//!   where it stopped; if it runs longer than `backchannel_max_ms` or says something, the
//!   dialogue hears the interruption (`CallerSpeechStarted`, then the turn) as before. Shorter
//!   sounds (a cough) never reach `barge_in_ms` and never pause anything.

mod words;

pub use words::{Finished, ends_open, is_backchannel, weigh};

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::dialogue::{
    Action, BeepConfig, BeepDetector, Dialogue, DialogueConfig, Event as DialogueEvent, LineId, Summary,
};
use crate::domain::status::Outcome;
use crate::media::endpointer::{Endpointer, EndpointerConfig, Event as EndpointEvent};
use crate::media::pacer::{Pacer, PacerConfig, Tick};
use crate::store::call_sessions::{Speaker, Turn};

/// 8 kHz: G.711 on the wire, and the rate the core runs at.
pub const RATE: u32 = 8000;
/// Samples in one 20 ms frame at `RATE`.
pub const FRAME: usize = 160;
pub type Frame = [i16; FRAME];

/// Turn-taking timings (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct TurnTaking {
    /// Silence after which a turn that is probably finished ends (`words::weigh`): longer than
    /// the pauses callers make inside a sentence (700 ms must never end a turn).
    pub settle_ms: u32,
    /// Words a transcript needs before a pause may end the turn at once.
    pub sure_min_words: usize,
    /// A reply the caller speaks into within this much of its playback is withdrawn.
    pub withdraw_window_ms: u32,
    /// Speech over a paused line longer than this interrupts it without waiting for words.
    pub backchannel_max_ms: u32,
    /// Longest a line waits for the caller to finish before it starts anyway.
    pub max_hold_ms: u32,
    /// Longest wait for a line's mark after its last frame left: the transport may lose it.
    pub mark_timeout_ms: u32,
    /// Longest wait for an ended turn's words; past it the words count as lost (the dialogue
    /// asks again) and the dialogue's own timers run again.
    pub transcript_timeout_ms: u32,
}

impl Default for TurnTaking {
    fn default() -> Self {
        TurnTaking {
            // 700 ms of silence inside a sentence must never end a turn; the VAD sees a pause
            // start early and a resumption late by tens of ms each, so the margin is 250 ms
            // (at 750 the conversation bench ended 4 of 13 700 ms pauses).
            settle_ms: 950,
            sure_min_words: 3,
            withdraw_window_ms: 450,
            backchannel_max_ms: 900,
            max_hold_ms: 5000,
            mark_timeout_ms: 3000,
            transcript_timeout_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CoreConfig {
    pub dialogue: DialogueConfig,
    pub endpointer: EndpointerConfig,
    pub turn_taking: TurnTaking,
    /// A call whose transport delivers no audio for this long is lost: carriers send a frame
    /// every 20 ms, silence included, so a quiet stream means a dead peer.
    pub media_idle_ms: u32,
    /// Past the dialogue's `max_duration` by this much the call ends whatever it is doing (its
    /// goodbye should have played long before).
    pub hard_limit_grace_ms: u32,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            dialogue: DialogueConfig::default(),
            endpointer: EndpointerConfig {
                sample_rate: RATE,
                pause_events: true,
                // The ceiling: a pause judged unfinished is waited out up to this.
                end_silence_ms: 1500,
                ..EndpointerConfig::default()
            },
            turn_taking: TurnTaking::default(),
            media_idle_ms: 10_000,
            hard_limit_grace_ms: 60_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("endpointer: {0}")]
    Endpointer(#[from] crate::media::endpointer::ConfigError),
    #[error("beep detector: {0}")]
    Beep(#[from] crate::dialogue::beep::BeepConfigError),
}

/// A transcription's words, back from speech-to-text.
#[derive(Debug, Clone, PartialEq)]
pub struct Heard {
    pub text: String,
    pub confidence: f32,
}

/// The end-of-turn model's verdict on a pause.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    Complete,
    Incomplete,
    /// No verdict: the model was busy or failed.
    Unavailable,
}

#[derive(Debug, Clone, PartialEq)]
// Frames travel inline: boxing them would allocate 100 times a second per call.
#[allow(clippy::large_enum_variant)]
pub enum Input {
    /// The call was answered: the dialogue starts.
    Answered,
    /// One 20 ms inbound frame and its VAD speech probability.
    Audio {
        pcm: Frame,
        speech: f32,
    },
    Dtmf(char),
    /// A line's `Mark` came back: everything sent before it has been played.
    Played(LineId),
    /// A `Transcribe`'s result; `Err` when the audio could not be transcribed.
    Transcribed {
        id: u64,
        result: Result<Heard, String>,
    },
    /// A `Judge`'s result.
    Judged {
        id: u64,
        verdict: Verdict,
    },
    /// Synthesized audio of a line, at `RATE`, in order.
    LineAudio {
        line: LineId,
        pcm: Vec<i16>,
    },
    /// A line's synthesis is complete (`failed`: it stopped short).
    LineEnd {
        line: LineId,
        failed: Option<String>,
    },
    /// 20 ms passed: release the frame that is due, check timers.
    Tick,
    /// The caller hung up.
    HungUp,
    /// The transport broke off.
    Lost(String),
    /// The call was cancelled through the API.
    Cancelled,
}

#[derive(Debug, Clone, PartialEq)]
// Frames travel inline: boxing them would allocate 100 times a second per call.
#[allow(clippy::large_enum_variant)]
pub enum Output {
    /// Send this frame now.
    Play(Frame),
    /// A 20 ms slot passed with no bot audio (for the recording).
    Quiet,
    /// Ask the transport to report `Played(line)` once what was sent so far has been played.
    Mark(LineId),
    /// Drop whatever audio the transport still holds.
    Clear,
    /// Transcribe this 8 kHz audio; answer with `Transcribed` under the same id.
    Transcribe { id: u64, audio: Vec<i16>, prompt: Option<String> },
    /// Ask the end-of-turn model about this 8 kHz audio; answer with `Judged`.
    Judge { id: u64, audio: Vec<i16> },
    /// Synthesize a line; answer with `LineAudio`s and a `LineEnd`.
    Synthesize { line: LineId, text: String },
    /// The transcript (`CallCore::transcript`) changed.
    TranscriptChanged,
    /// From the caller's last voiced frame to the first frame of the bot's answer.
    ReplyLatency(Duration),
    /// End the call from our side: the last line has played.
    HangUp,
    /// The call is over; always the last output.
    Finished(CallResult),
}

/// What the session stores when the call is over.
#[derive(Debug, Clone, PartialEq)]
pub struct CallResult {
    pub outcome: Outcome,
    pub notes: Option<String>,
    pub summary: Option<Summary>,
    /// The caller opted out: the contact becomes do-not-call.
    pub do_not_call: bool,
}

/// The line being said.
#[derive(Debug, Clone)]
struct Line {
    id: LineId,
    text: String,
    /// When its first frame left.
    started: Option<Instant>,
    /// Held since (caller mid-turn when it was ready to start).
    held_since: Option<Instant>,
    /// Paused by caller speech (barge-in not yet confirmed).
    paused: bool,
    /// When it was last paused: where it ends if the pause becomes an interruption.
    paused_at: Option<Instant>,
    /// Synthesis complete.
    synthesized: bool,
    /// Frames still to release before the mark (once synthesized).
    frames_until_mark: Option<usize>,
    mark_sent: Option<Instant>,
    /// Samples of a chunk that did not fill a frame, carried to the next chunk.
    partial: Vec<i16>,
}

/// A pause being judged: both answers come back under `id`.
#[derive(Debug, Clone)]
struct PauseCheck {
    id: u64,
    audio_len: usize,
    /// The caller's last voiced frame.
    since: Instant,
    heard: Option<Result<Heard, String>>,
    verdict: Option<Verdict>,
}

/// The caller's open turn.
#[derive(Debug, Clone, Default)]
struct OpenTurn {
    start_ms: i64,
    pause: Option<PauseCheck>,
    /// The audio of a withdrawn turn this one continues, and where that turn started.
    continues: Option<(Vec<i16>, i64)>,
}

/// A caller turn that ended and waits for its transcript.
#[derive(Debug, Clone)]
struct ClosedTurn {
    id: u64,
    start_ms: i64,
    end_ms: i64,
    stopped: Instant,
    audio: Vec<i16>,
    heard: Option<Result<Heard, String>>,
}

/// The state before a caller turn was handed to the dialogue, kept while its reply may still
/// be withdrawn.
#[derive(Clone)]
struct Tentative {
    dialogue: Dialogue,
    turns_len: usize,
    do_not_call: bool,
    audio: Vec<i16>,
    start_ms: i64,
    reply: LineId,
}

pub struct CallCore {
    config: CoreConfig,
    started: Instant,
    dialogue: Dialogue,
    endpointer: Endpointer,
    beep: BeepDetector,
    pacer: Pacer<i16>,
    out: VecDeque<Output>,
    turns: Vec<Turn>,
    line: Option<Line>,
    /// The text of the last line said (its question is the next transcription's prompt).
    last_said: String,
    open: Option<OpenTurn>,
    closed: VecDeque<ClosedTurn>,
    tentative: Option<Tentative>,
    next_id: u64,
    /// When the caller's last turn ended, until the next line starts.
    caller_stopped: Option<Instant>,
    /// When the newest line started playing: a turn that ended before it cannot answer it.
    line_started: Option<Instant>,
    /// When the transport last delivered a frame (or the call started).
    last_audio: Instant,
    do_not_call: bool,
    hang_up_requested: bool,
    hung_up: bool,
    summary: Option<Summary>,
    finished: bool,
}

impl CallCore {
    pub fn new(script: crate::dialogue::Script, config: CoreConfig, now: Instant) -> Result<CallCore, CoreError> {
        let endpointer = Endpointer::new(&config.endpointer)?;
        let beep = BeepDetector::new(BeepConfig::default())?;
        // A minute of queued speech; synthesis beyond that waits for the pacer to drain.
        let pacer = Pacer::new(PacerConfig { frame_len: FRAME, capacity: 50 * 60, max_catch_up: 2 }, now);
        Ok(CallCore {
            dialogue: Dialogue::new(script, config.dialogue.clone()),
            config,
            started: now,
            endpointer,
            beep,
            pacer,
            out: VecDeque::with_capacity(16),
            turns: Vec::new(),
            line: None,
            last_said: String::new(),
            open: None,
            closed: VecDeque::new(),
            tentative: None,
            next_id: 0,
            caller_stopped: None,
            line_started: None,
            last_audio: now,
            do_not_call: false,
            hang_up_requested: false,
            hung_up: false,
            summary: None,
            finished: false,
        })
    }

    /// The next output to carry out, oldest first.
    pub fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The conversation so far.
    pub fn transcript(&self) -> &[Turn] {
        &self.turns
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Milliseconds since the call started at `at`.
    pub fn ms(&self, at: Instant) -> i64 {
        at.saturating_duration_since(self.started).as_millis() as i64
    }

    pub fn handle(&mut self, input: Input, now: Instant) {
        if self.finished {
            return;
        }
        match input {
            Input::Answered => self.tell_dialogue(DialogueEvent::Answered, now),
            Input::Audio { pcm, speech } => self.on_audio(&pcm, speech, now),
            Input::Dtmf(digit) => {
                self.commit_tentative();
                self.tell_dialogue(DialogueEvent::Dtmf(digit), now);
            }
            Input::Played(id) => self.on_played(id, now),
            Input::Transcribed { id, result } => self.on_transcribed(id, result, now),
            Input::Judged { id, verdict } => self.on_judged(id, verdict, now),
            Input::LineAudio { line, pcm } => self.on_line_audio(line, &pcm),
            Input::LineEnd { line, failed } => self.on_line_end(line, failed, now),
            Input::Tick => self.on_tick(now),
            Input::HungUp => self.end(DialogueEvent::HungUp, now),
            Input::Lost(reason) => self.end(DialogueEvent::TransportLost { reason }, now),
            Input::Cancelled => {
                self.end(DialogueEvent::Cancelled, now);
            }
        }
        self.after(now);
    }

    // ---- caller audio ----

    fn on_audio(&mut self, pcm: &Frame, speech: f32, now: Instant) {
        self.last_audio = now;
        if self.dialogue.wants_beep() && self.beep.push(pcm).is_some() {
            self.tell_dialogue(DialogueEvent::Beep, now);
        }
        for event in self.endpointer.push_frame(speech, pcm) {
            match event {
                EndpointEvent::SpeechStarted => self.on_speech_started(now),
                EndpointEvent::BargeIn => self.on_barge_in(now),
                EndpointEvent::Pause { audio } => self.on_pause(audio, now),
                EndpointEvent::Resumed => {
                    if let Some(open) = self.open.as_mut() {
                        open.pause = None;
                    }
                }
                EndpointEvent::SpeechEnded { audio, silence_ms } => {
                    let stopped = now.checked_sub(Duration::from_millis(u64::from(silence_ms))).unwrap_or(now);
                    self.close_turn(audio, stopped, now);
                }
            }
        }
        self.check_pause(now);
        if let Some(line) = &self.line
            && line.paused
            && self.endpointer.speech_ms() > self.config.turn_taking.backchannel_max_ms
        {
            // Too long for a backchannel: the caller is taking the floor.
            self.confirm_interruption(now);
        }
    }

    fn on_speech_started(&mut self, now: Instant) {
        let c = &self.config.endpointer;
        let onset = now.checked_sub(Duration::from_millis(u64::from(self.endpointer.speech_ms()))).unwrap_or(now);
        let start_ms = self.ms(now) - i64::from(c.min_speech_ms + c.pre_roll_ms);
        let continues = self.withdraw_if_early(onset, now);
        let start_ms = continues.as_ref().map_or(start_ms.max(0), |c| c.1);
        self.open = Some(OpenTurn { start_ms, pause: None, continues });
        // Over a playing line the barge-in rules decide; before a line starts, the turn is an
        // aside the dialogue hears when its words are in.
        let quiet_for_now = match &self.line {
            Some(line) => line.started.is_none() || self.dialogue_can_be_interrupted(),
            None => false,
        };
        if !quiet_for_now {
            self.tell_dialogue(DialogueEvent::CallerSpeechStarted, now);
        }
    }

    /// Speech over a playing line: pause it now, decide when the words are in.
    fn on_barge_in(&mut self, now: Instant) {
        let interruptible = self.dialogue_can_be_interrupted();
        let at_ms = self.ms(now);
        let Some(line) = self.line.as_mut() else { return };
        if line.started.is_none() || line.paused || !interruptible {
            return;
        }
        line.paused = true;
        line.paused_at = Some(now);
        self.pacer.pause();
        self.endpointer.set_bot_speaking(false);
        self.out.push_back(Output::Clear);
        tracing::debug!(at_ms, line = %line.id, "caller speech over the line: paused");
    }

    /// The caller is taking the floor from a paused line: the dialogue hears the interruption.
    fn confirm_interruption(&mut self, now: Instant) {
        self.tell_dialogue(DialogueEvent::CallerSpeechStarted, now);
        // The dialogue normally stops the line now; if it kept it, it plays on.
        if self.line.as_ref().is_some_and(|l| l.paused) {
            self.resume_line(now);
        }
    }

    fn on_pause(&mut self, audio: Vec<i16>, now: Instant) {
        let Some(open) = self.open.as_ref() else { return };
        let since =
            now.checked_sub(Duration::from_millis(u64::from(self.config.endpointer.pre_roll_ms))).unwrap_or(now);
        let audio_len = audio.len();
        let audio = joined(open.continues.as_ref(), audio);
        let id = self.new_id();
        tracing::debug!(at_ms = self.ms(now), id, since_ms = self.ms(since), "pause: judging and transcribing");
        self.out.push_back(Output::Judge { id, audio: audio.clone() });
        self.out.push_back(Output::Transcribe { id, audio, prompt: self.prompt() });
        if let Some(open) = self.open.as_mut() {
            open.pause = Some(PauseCheck { id, audio_len, since, heard: None, verdict: None });
        }
    }

    /// Ends the open turn at its pause when the answers allow it.
    fn check_pause(&mut self, now: Instant) {
        let Some(pause) = self.open.as_ref().and_then(|o| o.pause.as_ref()) else { return };
        let tt = &self.config.turn_taking;
        let settled = now.saturating_duration_since(pause.since) >= Duration::from_millis(u64::from(tt.settle_ms));
        let over_paused_line = self.line.as_ref().is_some_and(|l| l.paused);
        let ready = match &pause.heard {
            None => false,
            // A backchannel over a paused line: the line goes on without waiting for the model.
            Some(Ok(heard)) if over_paused_line && is_backchannel(&heard.text, false) => true,
            Some(Ok(heard)) => match weigh(pause.verdict, &heard.text, tt.sure_min_words) {
                Finished::Surely => true,
                Finished::Probably => settled,
                Finished::Not => false,
            },
            // Words lost: the dialogue will ask again; not before the caller has settled.
            Some(Err(_)) => settled,
        };
        if !ready {
            return;
        }
        let Some(audio) = self.endpointer.end_turn() else { return };
        let Some(open) = self.open.take() else { return };
        let Some(pause) = open.pause else { return };
        debug_assert_eq!(audio.len(), pause.audio_len);
        let turn = ClosedTurn {
            id: pause.id,
            start_ms: open.start_ms,
            end_ms: self.ms(pause.since),
            stopped: pause.since,
            audio: joined(open.continues.as_ref(), audio),
            heard: pause.heard,
        };
        self.turn_ended(turn, now);
    }

    /// The endpointer ended the turn by itself (the silence ceiling, or its longest turn).
    fn close_turn(&mut self, audio: Vec<i16>, stopped: Instant, now: Instant) {
        let open = self.open.take().unwrap_or_default();
        let same_audio = open.pause.filter(|p| p.audio_len == audio.len());
        let audio = joined(open.continues.as_ref(), audio);
        let (id, heard) = match same_audio {
            // The pause's transcription is of exactly this audio: it is (or will be) the turn's.
            Some(pause) => (pause.id, pause.heard),
            None => {
                let id = self.new_id();
                self.out.push_back(Output::Transcribe { id, audio: audio.clone(), prompt: self.prompt() });
                (id, None)
            }
        };
        let turn = ClosedTurn { id, start_ms: open.start_ms, end_ms: self.ms(stopped), stopped, audio, heard };
        self.turn_ended(turn, now);
    }

    fn turn_ended(&mut self, turn: ClosedTurn, now: Instant) {
        // Over a paused line the dialogue has not heard this turn start (see `deliver`).
        if !self.line.as_ref().is_some_and(|l| l.paused) {
            self.tell_dialogue(DialogueEvent::CallerSpeechEnded, now);
        }
        self.closed.push_back(turn);
        self.deliver_turns(now);
    }

    fn on_transcribed(&mut self, id: u64, result: Result<Heard, String>, now: Instant) {
        tracing::debug!(at_ms = self.ms(now), id, heard = ?result.as_ref().map(|h| &h.text), "transcribed");
        if let Some(pause) = self.open.as_mut().and_then(|o| o.pause.as_mut())
            && pause.id == id
        {
            pause.heard = Some(result);
            self.check_pause(now);
            return;
        }
        if let Some(turn) = self.closed.iter_mut().find(|t| t.id == id) {
            turn.heard = Some(result);
            self.deliver_turns(now);
        }
    }

    fn on_judged(&mut self, id: u64, verdict: Verdict, now: Instant) {
        tracing::debug!(at_ms = self.ms(now), id, ?verdict, "end of turn judged");
        if let Some(pause) = self.open.as_mut().and_then(|o| o.pause.as_mut())
            && pause.id == id
        {
            pause.verdict = Some(verdict);
            self.check_pause(now);
        }
    }

    /// Hands ended turns whose words are in to the dialogue, in order.
    fn deliver_turns(&mut self, now: Instant) {
        while self.closed.front().is_some_and(|t| t.heard.is_some()) {
            let Some(turn) = self.closed.pop_front() else { break };
            self.deliver(turn, now);
        }
    }

    fn deliver(&mut self, mut turn: ClosedTurn, now: Instant) {
        let heard = match turn.heard.take() {
            Some(Ok(heard)) => Some(heard),
            Some(Err(reason)) => {
                tracing::warn!(%reason, "speech-to-text failed for a caller turn");
                None
            }
            None => return,
        };
        let text = heard.as_ref().map_or("", |h| h.text.trim());
        if self.line.as_ref().is_some_and(|l| l.paused) {
            let asks = self.line.as_ref().is_some_and(|l| l.text.trim_end().ends_with('?'));
            if heard.is_some() && is_backchannel(text, asks) {
                self.resume_line(now);
                self.record_caller(&turn, heard);
                return;
            }
            self.confirm_interruption(now);
        }
        if heard.as_ref().is_some_and(|h| h.text.trim().is_empty()) {
            // Noise or breath that made a turn: nothing to answer.
            return;
        }
        let snapshot = Tentative {
            dialogue: self.dialogue.clone(),
            turns_len: self.turns.len(),
            do_not_call: self.do_not_call,
            audio: turn.audio.clone(),
            start_ms: turn.start_ms,
            reply: LineId(0),
        };
        let line_before = self.line.as_ref().map(|l| l.id);
        let predates_line = self.line_started.is_some_and(|started| turn.stopped < started);
        let event = match heard.as_ref() {
            // Lost words (the recogniser failed or was full): the dialogue asks again.
            None => DialogueEvent::CallerTurnLost,
            // Words that come late (a busy recogniser) may arrive after the bot has moved on:
            // what was said before the newest line started does not answer it.
            Some(h) if predates_line => DialogueEvent::CallerAside { text: h.text.clone(), confidence: h.confidence },
            Some(h) => DialogueEvent::CallerTurn { text: h.text.clone(), confidence: h.confidence },
        };
        self.record_caller(&turn, heard);
        self.tell_dialogue(event, now);
        self.tentative = match self.line.as_ref().map(|l| l.id) {
            Some(reply) if Some(reply) != line_before => {
                self.caller_stopped = Some(turn.stopped);
                Some(Tentative { reply, ..snapshot })
            }
            _ => None,
        };
    }

    fn record_caller(&mut self, turn: &ClosedTurn, heard: Option<Heard>) {
        let Some(heard) = heard.filter(|h| !h.text.trim().is_empty()) else { return };
        self.turns.push(Turn {
            speaker: Speaker::Caller,
            text: heard.text,
            start_ms: turn.start_ms,
            end_ms: turn.end_ms,
            confidence: Some(heard.confidence),
            interrupted: false,
        });
        self.out.push_back(Output::TranscriptChanged);
    }

    /// The caller started speaking at `onset`: if the reply to their last turn has not started
    /// or has only just started, it is withdrawn and the turn reopened. Returns the withdrawn
    /// turn's audio and start, which the new speech continues.
    fn withdraw_if_early(&mut self, onset: Instant, now: Instant) -> Option<(Vec<i16>, i64)> {
        let tentative = self.tentative.as_ref()?;
        let started = self.line.as_ref().filter(|l| l.id == tentative.reply)?.started;
        let window = Duration::from_millis(u64::from(self.config.turn_taking.withdraw_window_ms));
        if started.is_some_and(|started| onset >= started + window) {
            return None;
        }
        let tentative = self.tentative.take()?;
        if started.is_some() {
            self.out.push_back(Output::Clear);
        }
        self.pacer.clear();
        self.line = None;
        self.endpointer.set_bot_speaking(false);
        self.dialogue.rewind_to(tentative.dialogue);
        self.turns.truncate(tentative.turns_len);
        self.do_not_call = tentative.do_not_call;
        self.out.push_back(Output::TranscriptChanged);
        tracing::debug!(at_ms = self.ms(now), "the caller went on: reply withdrawn, turns joined");
        Some((tentative.audio, tentative.start_ms))
    }

    fn commit_tentative(&mut self) {
        self.tentative = None;
    }

    // ---- the bot's lines ----

    fn on_line_audio(&mut self, id: LineId, pcm: &[i16]) {
        let Some(line) = self.line.as_mut().filter(|l| l.id == id) else { return };
        line.partial.extend_from_slice(pcm);
        let whole = line.partial.len() / FRAME * FRAME;
        for frame in line.partial[..whole].chunks_exact(FRAME) {
            // The queue holds a minute; a longer line is cut rather than stalling the call.
            let _ = self.pacer.push(frame);
        }
        line.partial.drain(..whole);
    }

    fn on_line_end(&mut self, id: LineId, failed: Option<String>, now: Instant) {
        let Some(line) = self.line.as_mut().filter(|l| l.id == id) else { return };
        if let Some(reason) = failed {
            tracing::warn!(%reason, line = %id, "text-to-speech failed; the line stops here");
        }
        if !line.partial.is_empty() {
            let mut last = [0i16; FRAME];
            last[..line.partial.len()].copy_from_slice(&line.partial);
            line.partial.clear();
            let _ = self.pacer.push(&last);
        }
        line.synthesized = true;
        let queued = self.pacer.queued();
        if queued > 0 {
            line.frames_until_mark = Some(queued);
        } else if line.started.is_some() {
            self.send_mark(now);
        } else {
            // Nothing to say at all: the line is done at once.
            self.line_done(id, now);
        }
    }

    fn send_mark(&mut self, now: Instant) {
        if let Some(line) = self.line.as_mut() {
            line.frames_until_mark = None;
            line.mark_sent = Some(now);
            self.out.push_back(Output::Mark(line.id));
        }
    }

    fn on_played(&mut self, id: LineId, now: Instant) {
        if self.line.as_ref().is_some_and(|l| l.id == id && l.synthesized && l.mark_sent.is_some()) {
            self.line_done(id, now);
        }
    }

    fn line_done(&mut self, id: LineId, now: Instant) {
        let Some(line) = self.line.take() else { return };
        self.endpointer.set_bot_speaking(false);
        if let Some(started) = line.started {
            self.turns.push(Turn {
                speaker: Speaker::Bot,
                text: line.text,
                start_ms: self.ms(started),
                end_ms: self.ms(now),
                confidence: None,
                interrupted: false,
            });
            self.out.push_back(Output::TranscriptChanged);
        }
        self.tell_dialogue(DialogueEvent::LineDone(id), now);
    }

    fn resume_line(&mut self, now: Instant) {
        let at_ms = self.ms(now);
        if let Some(line) = self.line.as_mut() {
            line.paused = false;
            self.endpointer.set_bot_speaking(true);
            tracing::debug!(at_ms, line = %line.id, "a backchannel: the line goes on");
        }
    }

    /// Stops the line for good (the dialogue's `StopSpeaking`): it is in the transcript as
    /// interrupted if any of it was heard.
    fn stop_line(&mut self, now: Instant) {
        self.pacer.clear();
        self.endpointer.set_bot_speaking(false);
        let Some(line) = self.line.take() else { return };
        if line.started.is_some() && !line.paused {
            self.out.push_back(Output::Clear);
        }
        if let Some(started) = line.started {
            // A paused line was last heard when it paused, not when the words confirmed it.
            let stopped = if line.paused { line.paused_at.unwrap_or(now) } else { now };
            self.turns.push(Turn {
                speaker: Speaker::Bot,
                text: line.text,
                start_ms: self.ms(started),
                end_ms: self.ms(stopped),
                confidence: None,
                interrupted: true,
            });
            self.out.push_back(Output::TranscriptChanged);
        }
    }

    // ---- time ----

    fn on_tick(&mut self, now: Instant) {
        if self.check_limits(now) {
            return;
        }
        self.release_frames(now);
        self.check_transcript_timeout(now);
        self.check_pause(now);
        self.check_mark_timeout(now);
        self.check_window(now);
        // The dialogue's timeouts wait for words the core knows are coming: a turn being
        // transcribed on a busy pool is not silence.
        if self.closed.is_empty() && self.dialogue.next_deadline().is_some_and(|at| at <= now) {
            self.tell_dialogue(DialogueEvent::Tick, now);
        }
    }

    /// Ends a call whose media stopped or that ran far past its time limit; true if it did.
    fn check_limits(&mut self, now: Instant) -> bool {
        let idle = now.saturating_duration_since(self.last_audio);
        let reason = if idle >= Duration::from_millis(u64::from(self.config.media_idle_ms)) {
            format!("no audio from the carrier for {} s", idle.as_secs())
        } else if now.saturating_duration_since(self.started)
            >= self.config.dialogue.max_duration + Duration::from_millis(u64::from(self.config.hard_limit_grace_ms))
        {
            format!("the call ran past its time limit of {} min", self.config.dialogue.max_duration.as_secs() / 60)
        } else {
            return false;
        };
        tracing::warn!(at_ms = self.ms(now), %reason, "ending the call");
        self.hang_up_requested = true;
        self.end(DialogueEvent::TransportLost { reason }, now);
        true
    }

    /// Whether the line may play now: never its first frame while the caller is mid-turn
    /// (up to `max_hold_ms`), nothing while paused by caller speech.
    fn may_play(&mut self, now: Instant) -> bool {
        let max_hold = Duration::from_millis(u64::from(self.config.turn_taking.max_hold_ms));
        let caller_quiet = self.endpointer.is_idle();
        let Some(line) = self.line.as_mut() else { return true };
        if line.paused {
            return false;
        }
        if line.started.is_some() || caller_quiet {
            return true;
        }
        let held = *line.held_since.get_or_insert(now);
        now.saturating_duration_since(held) >= max_hold
    }

    fn release_frames(&mut self, now: Instant) {
        if !self.may_play(now) {
            self.out.push_back(Output::Quiet);
            return;
        }
        let mut frame = [0i16; FRAME];
        loop {
            match self.pacer.tick(now, &mut frame) {
                Tick::Frame => {
                    self.out.push_back(Output::Play(frame));
                    self.frame_sent(now);
                }
                Tick::Drained | Tick::Idle => {
                    self.out.push_back(Output::Quiet);
                    break;
                }
                Tick::Wait { .. } => break,
            }
        }
    }

    fn frame_sent(&mut self, now: Instant) {
        let Some(line) = self.line.as_mut() else { return };
        if line.started.is_none() {
            line.started = Some(now);
            self.line_started = Some(now);
            self.endpointer.set_bot_speaking(true);
            if let Some(stopped) = self.caller_stopped.take() {
                self.out.push_back(Output::ReplyLatency(now.saturating_duration_since(stopped)));
            }
        }
        if let Some(left) = line.frames_until_mark.as_mut() {
            *left = left.saturating_sub(1);
            if *left == 0 {
                self.send_mark(now);
            }
        }
    }

    fn check_transcript_timeout(&mut self, now: Instant) {
        let timeout = Duration::from_millis(u64::from(self.config.turn_taking.transcript_timeout_ms));
        if let Some(turn) = self.closed.front_mut()
            && turn.heard.is_none()
            && now.saturating_duration_since(turn.stopped) >= timeout
        {
            turn.heard = Some(Err(format!("no transcript within {} s", timeout.as_secs())));
            self.deliver_turns(now);
        }
    }

    fn check_mark_timeout(&mut self, now: Instant) {
        let timeout = Duration::from_millis(u64::from(self.config.turn_taking.mark_timeout_ms));
        let lost = self
            .line
            .as_ref()
            .filter(|l| l.mark_sent.is_some_and(|sent| now.saturating_duration_since(sent) >= timeout))
            .map(|l| l.id);
        if let Some(id) = lost {
            tracing::warn!(line = %id, "the line's mark did not come back; taking it as played");
            self.line_done(id, now);
        }
    }

    /// A reply that has played past the window stands: the turn before it is final.
    fn check_window(&mut self, now: Instant) {
        let Some(tentative) = &self.tentative else { return };
        let window = Duration::from_millis(u64::from(self.config.turn_taking.withdraw_window_ms));
        let stands = match self.line.as_ref().filter(|l| l.id == tentative.reply) {
            Some(line) => line.started.is_some_and(|s| now >= s + window),
            None => true,
        };
        if stands {
            self.commit_tentative();
        }
    }

    // ---- the dialogue ----

    fn dialogue_can_be_interrupted(&self) -> bool {
        self.dialogue.speaking_interruptibly()
    }

    fn tell_dialogue(&mut self, event: DialogueEvent, now: Instant) {
        let actions = self.dialogue.handle(event, now);
        self.perform(actions, now);
    }

    fn perform(&mut self, actions: Vec<Action>, now: Instant) {
        for action in actions {
            tracing::debug!(at_ms = self.ms(now), ?action, "dialogue action");
            match action {
                Action::Say { line, text, .. } => {
                    if self.line.is_some() {
                        self.stop_line(now);
                    }
                    self.last_said = text.clone();
                    self.out.push_back(Output::Synthesize { line, text: text.clone() });
                    self.line = Some(Line {
                        id: line,
                        text,
                        started: None,
                        held_since: None,
                        paused: false,
                        paused_at: None,
                        synthesized: false,
                        frames_until_mark: None,
                        mark_sent: None,
                        partial: Vec::new(),
                    });
                }
                Action::StopSpeaking => self.stop_line(now),
                Action::HangUp => self.hang_up_requested = true,
                Action::SetDoNotCall => self.do_not_call = true,
                Action::Finish(summary) => self.summary = Some(summary),
                Action::Listen { .. } => {}
            }
        }
    }

    fn end(&mut self, event: DialogueEvent, now: Instant) {
        let cancelled = matches!(event, DialogueEvent::Cancelled);
        self.tentative = None;
        self.tell_dialogue(event, now);
        // A line cut short by the end is still part of what was said.
        if let Some(line) = self.line.take()
            && let Some(started) = line.started
        {
            self.turns.push(Turn {
                speaker: Speaker::Bot,
                text: line.text,
                start_ms: self.ms(started),
                end_ms: self.ms(now),
                confidence: None,
                interrupted: true,
            });
            self.out.push_back(Output::TranscriptChanged);
        }
        if cancelled {
            self.hang_up_requested = true;
        }
        self.finish();
    }

    /// Hangs up once the last line has played, and reports the end once the dialogue has.
    fn after(&mut self, _now: Instant) {
        if self.hang_up_requested && self.line.is_none() && !self.hung_up {
            self.hung_up = true;
            self.out.push_back(Output::HangUp);
        }
        if self.summary.is_some() && (self.hung_up || !self.hang_up_requested) {
            self.finish();
        }
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        if self.hang_up_requested && !self.hung_up {
            self.hung_up = true;
            self.out.push_back(Output::HangUp);
        }
        self.finished = true;
        let summary = self.summary.clone();
        self.out.push_back(Output::Finished(CallResult {
            outcome: summary.as_ref().map_or(Outcome::Failed, |s| s.outcome),
            notes: summary.as_ref().map(|s| s.notes.clone()),
            summary,
            do_not_call: self.do_not_call,
        }));
    }

    // ---- helpers ----

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The question last asked, as the transcription's prompt: whisper then expects its answers.
    fn prompt(&self) -> Option<String> {
        let text = self.last_said.trim();
        let end = text.rfind('?')?;
        let before = &text[..end];
        let start = before.rfind(['.', '!', '?']).map_or(0, |i| i + 1);
        Some(text[start..=end].trim().to_owned())
    }
}

/// A continued turn's audio: the withdrawn part, then the new one.
fn joined(continues: Option<&(Vec<i16>, i64)>, audio: Vec<i16>) -> Vec<i16> {
    match continues {
        Some((before, _)) => {
            let mut all = Vec::with_capacity(before.len() + audio.len());
            all.extend_from_slice(before);
            all.extend_from_slice(&audio);
            all
        }
        None => audio,
    }
}
