//! The call core's turn-taking, on a virtual clock: a caller's recorded speech (espeak-ng, not
//! the bot's voice) goes through G.711 and the real Silero VAD frame by frame, turns are
//! transcribed by the real whisper model, and every result comes back after a fixed virtual
//! delay, so a run is the same every time and takes no wall-clock waiting. The end-of-turn
//! verdict is scripted where a test needs a given verdict (the model's own accuracy is
//! `tests/speech_turn.rs`'s business); the bot's lines are a tone as long as the line.
//!
//! Covered: a pause inside an answer, an answer resumed within the first 400 ms of the reply, a
//! backchannel during a line, a real barge-in, a cough.

#[allow(dead_code)]
mod common;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use callcenter::dialogue::Script;
use callcenter::domain::status::Outcome;
use callcenter::domain::template::{Step, StepType};
use callcenter::media::g711;
use callcenter::session::core::{CallCore, CallResult, CoreConfig, FRAME, Frame, Heard, Input, Output, RATE, Verdict};
use callcenter::speech::ModelPaths;
use callcenter::speech::stt::{SttConfig, SttPool};
use callcenter::speech::turn::{TurnConfig, TurnPool};
use callcenter::speech::vad::{VadConfig, VadModel, VadRate, VadStream};
use common::{models_dir, voices};

const TICK: Duration = Duration::from_millis(20);
/// Virtual time a transcription takes.
const STT_DELAY: Duration = Duration::from_millis(150);
/// Virtual time the end-of-turn model takes.
const JUDGE_DELAY: Duration = Duration::from_millis(100);
/// Virtual time from a mark sent to the mark back (the far end's playout buffer).
const MARK_DELAY: Duration = Duration::from_millis(40);

/// What the end-of-turn model says in a test.
#[derive(Clone, Copy)]
enum Judge {
    /// Complete at every pause.
    AlwaysComplete,
    /// Incomplete at every pause (the ceiling ends turns).
    AlwaysIncomplete,
    /// No verdict (a busy model): silence ends turns.
    Unavailable,
    /// The real Smart Turn v3.2 model.
    Model,
}

/// One bot line as the caller heard it.
#[derive(Debug, Clone)]
struct LineHeard {
    text: String,
    /// Frame index of its first and last audible frame.
    first: Option<usize>,
    last: Option<usize>,
}

struct Sim {
    core: CallCore,
    t0: Instant,
    /// Frames elapsed.
    frame: usize,
    vad: VadStream,
    stt: &'static SttPool,
    judge: Judge,
    pending: Vec<(Instant, Input)>,
    /// Caller audio still to send, 8 kHz.
    caller: VecDeque<i16>,
    /// Per frame: the caller's frame was voiced (above -40 dBFS).
    caller_voiced: Vec<bool>,
    /// Per frame: a bot frame was sent.
    bot_audible: Vec<bool>,
    lines: Vec<LineHeard>,
    clears: Vec<usize>,
    judged: usize,
    /// Transcriptions are asked for and never answered (a recogniser that died).
    deaf: bool,
    result: Option<CallResult>,
}

fn models() -> ModelPaths {
    ModelPaths::new(models_dir())
}

fn stt() -> &'static SttPool {
    static STT: std::sync::OnceLock<SttPool> = std::sync::OnceLock::new();
    STT.get_or_init(|| SttPool::new(&models().whisper("tiny.en"), SttConfig::for_cores(1)).expect("whisper tiny.en"))
}

fn turn_model() -> &'static TurnPool {
    static TURN: std::sync::OnceLock<TurnPool> = std::sync::OnceLock::new();
    TURN.get_or_init(|| TurnPool::new(&models(), TurnConfig::for_cores(1)).expect("Smart Turn v3.2"))
}

fn to_16k(audio: &[i16]) -> Vec<f32> {
    let samples: Vec<f32> = audio.iter().map(|&s| f32::from(s) / 32768.0).collect();
    callcenter::media::decode::resample_clip(&samples, RATE, 16_000).unwrap()
}

fn vad_model() -> std::sync::Arc<VadModel> {
    static VAD: std::sync::OnceLock<std::sync::Arc<VadModel>> = std::sync::OnceLock::new();
    VAD.get_or_init(|| VadModel::load(&models(), &VadConfig::default()).expect("silero")).clone()
}

/// espeak-ng's `en-us` voice at 8 kHz, as a clean phone line carries it (through µ-law).
fn speak(text: &str) -> Vec<i16> {
    let pcm = voices::say(&voices::Voice::espeak("en-us", 165, 50), text).expect("espeak-ng (scripts/setup.sh)");
    let ulaw = voices::through_phone(&pcm, &voices::Channel::clean());
    let mut line = vec![0i16; ulaw.len()];
    g711::decode_ulaw(&ulaw, &mut line);
    line
}

fn silence(ms: usize) -> Vec<i16> {
    vec![0; ms * RATE as usize / 1000]
}

/// A cough-like burst: loud, noisy, decaying, 150 ms.
fn cough() -> Vec<i16> {
    let mut seed = 7u32;
    (0..150 * 8)
        .map(|i| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (seed >> 16) as i16 as f32 / 32768.0;
            let envelope = (-(i as f32) / 400.0).exp();
            (noise * envelope * 20_000.0) as i16
        })
        .collect()
}

fn step(id: &str, kind: StepType, content: &str) -> Step {
    Step { id: id.into(), step_type: kind, content: content.into(), next: None }
}

const OFFER: &str = "Would you like us to send you the new catalogue?";
const LONG_INFO: &str = "Before we go on, let me tell you a little about our service, our prices and the delivery \
                         times you can expect, so that you know exactly what you would be signing up for today.";

fn offer_script() -> Vec<Step> {
    vec![
        step("1", StepType::Question, OFFER),
        step("2", StepType::Response, "Great, it is on its way."),
        step("3", StepType::Closing, "Thank you for your time. Goodbye."),
    ]
}

fn info_script() -> Vec<Step> {
    vec![
        step("1", StepType::Information, LONG_INFO),
        step("2", StepType::Question, OFFER),
        step("3", StepType::Closing, "Thank you. Goodbye."),
    ]
}

impl Sim {
    fn new(steps: &[Step], judge: Judge) -> Sim {
        let script = Script::new(steps, None, |_| None).unwrap();
        Sim::with_core(CallCore::new(script, CoreConfig::default(), Instant::now()).unwrap(), judge)
    }

    /// A call on `core` (created at `Instant::now()`), answered.
    fn with_core(mut core: CallCore, judge: Judge) -> Sim {
        let t0 = Instant::now();
        core.handle(Input::Answered, t0);
        let mut sim = Sim {
            core,
            t0,
            frame: 0,
            vad: VadStream::new(vad_model(), VadRate::Hz8000).unwrap(),
            stt: stt(),
            judge,
            pending: Vec::new(),
            caller: VecDeque::new(),
            caller_voiced: Vec::new(),
            bot_audible: Vec::new(),
            lines: Vec::new(),
            clears: Vec::new(),
            judged: 0,
            deaf: false,
            result: None,
        };
        sim.drain();
        sim
    }

    fn now(&self) -> Instant {
        self.t0 + TICK * self.frame as u32
    }

    /// Queues caller audio to be sent from the next frame on.
    fn say(&mut self, pcm: &[i16]) {
        self.caller.extend(pcm.iter().copied());
    }

    /// Advances 20 ms: one caller frame in, due results, one tick.
    fn step(&mut self) {
        self.frame += 1;
        let now = self.now();
        let mut pcm: Frame = [0; FRAME];
        for sample in pcm.iter_mut() {
            *sample = self.caller.pop_front().unwrap_or(0);
        }
        let peak = pcm.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        self.caller_voiced.push(peak > 330);
        let speech = self.vad.push_i16(&pcm).unwrap();
        self.core.handle(Input::Audio { pcm, speech }, now);
        self.drain();
        let (due, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.pending).into_iter().partition(|(at, _)| *at <= now);
        self.pending = later;
        for (_, input) in due {
            self.core.handle(input, now);
            self.drain();
        }
        self.bot_audible.push(false);
        self.core.handle(Input::Tick, now);
        self.drain();
    }

    fn drain(&mut self) {
        let now = self.now();
        while let Some(output) = self.core.poll() {
            match output {
                Output::Play(frame) => {
                    if let Some(last) = self.bot_audible.last_mut() {
                        *last = true;
                    }
                    // Lines play one after another: a frame is the newest line's.
                    if let Some(line) = self.lines.last_mut()
                        && frame.iter().any(|&s| s != 0)
                    {
                        line.first.get_or_insert(self.frame);
                        line.last = Some(self.frame);
                    }
                }
                Output::Mark(line) => self.pending.push((now + MARK_DELAY, Input::Played(line))),
                Output::Clear => self.clears.push(self.frame),
                Output::Transcribe { .. } if self.deaf => {}
                Output::Transcribe { id, audio, .. } => {
                    let clip = to_16k(&audio);
                    let result = self
                        .stt
                        .transcribe_blocking(clip)
                        .map(|t| Heard { text: t.text, confidence: t.confidence })
                        .map_err(|e| e.to_string());
                    self.pending.push((now + STT_DELAY, Input::Transcribed { id, result }));
                }
                Output::Judge { id, audio } => {
                    self.judged += 1;
                    let verdict = match self.judge {
                        Judge::AlwaysComplete => Verdict::Complete,
                        Judge::AlwaysIncomplete => Verdict::Incomplete,
                        Judge::Unavailable => Verdict::Unavailable,
                        Judge::Model => {
                            let clip = to_16k(&audio);
                            let prediction = turn_model().predict_blocking(&clip).expect("Smart Turn runs");
                            eprintln!("smart turn: {:.3} at frame {}", prediction.probability, self.frame);
                            if prediction.complete { Verdict::Complete } else { Verdict::Incomplete }
                        }
                    };
                    self.pending.push((now + JUDGE_DELAY, Input::Judged { id, verdict }));
                }
                Output::Synthesize { line, text } => {
                    // A 300 Hz tone, 60 ms a character: as long as the line would be.
                    let samples = text.len() * 60 * RATE as usize / 1000;
                    let pcm: Vec<i16> = (0..samples)
                        .map(|i| ((i as f32 * 2.0 * std::f32::consts::PI * 300.0 / RATE as f32).sin() * 8000.0) as i16)
                        .collect();
                    self.lines.push(LineHeard { text, first: None, last: None });
                    self.pending.push((now + Duration::from_millis(30), Input::LineAudio { line, pcm }));
                    self.pending.push((now + Duration::from_millis(30), Input::LineEnd { line, failed: None }));
                }
                Output::Finished(result) => self.result = Some(result),
                Output::Quiet | Output::TranscriptChanged | Output::ReplyLatency(_) | Output::HangUp => {}
            }
        }
    }

    fn run_for(&mut self, duration: Duration) {
        for _ in 0..duration.as_millis() / 20 {
            self.step();
        }
    }

    /// Steps until `done` holds, at most `limit` of virtual time.
    fn run_until(&mut self, limit: Duration, what: &str, done: impl Fn(&Sim) -> bool) {
        let end = self.frame + (limit.as_millis() / 20) as usize;
        while !done(self) {
            assert!(self.frame < end, "timed out waiting for {what}; lines: {:#?}", self.lines);
            self.step();
        }
    }

    fn line(&self, text: &str) -> Option<&LineHeard> {
        self.lines.iter().find(|l| l.text.contains(text))
    }

    fn line_done(&self, text: &str) -> bool {
        self.line(text).is_some_and(|l| self.core.transcript().iter().any(|t| t.text == l.text && t.speaker_is_bot()))
    }

    /// Frames where the bot was heard while the caller's voice was on the line.
    fn overlaps(&self, from: usize) -> Vec<usize> {
        (from..self.bot_audible.len()).filter(|&i| self.bot_audible[i] && self.caller_voiced[i]).collect()
    }

    fn caller_turns(&self) -> Vec<String> {
        self.core.transcript().iter().filter(|t| !t.speaker_is_bot()).map(|t| t.text.clone()).collect()
    }

    fn hang_up(&mut self) -> CallResult {
        self.core.handle(Input::HungUp, self.now());
        self.drain();
        self.result.clone().expect("the call finished")
    }
}

trait SpeakerExt {
    fn speaker_is_bot(&self) -> bool;
}

impl SpeakerExt for callcenter::store::call_sessions::Turn {
    fn speaker_is_bot(&self) -> bool {
        matches!(self.speaker, callcenter::store::call_sessions::Speaker::Bot)
    }
}

fn words(text: &str) -> String {
    text.to_lowercase().chars().filter(|c| c.is_alphanumeric() || c.is_whitespace()).collect()
}

/// "Yes, sure," 700 ms "go ahead.": the model judges the pause unfinished, so nothing is said
/// in it; the reply comes once, after the whole answer, which is one turn.
#[test]
fn a_pause_inside_an_answer_does_not_end_it() {
    let mut sim = Sim::new(&offer_script(), Judge::AlwaysIncomplete);
    sim.run_until(Duration::from_secs(10), "the offer to be asked", |s| s.line_done(OFFER));
    let answer_from = sim.frame;
    sim.say(&speak("Yes, sure,"));
    sim.say(&silence(700));
    sim.say(&speak("go ahead."));
    sim.run_until(Duration::from_secs(10), "the reply", |s| s.line("Great").is_some_and(|l| l.first.is_some()));
    assert!(
        sim.overlaps(answer_from).is_empty(),
        "the bot spoke over the caller at frames {:?}",
        sim.overlaps(answer_from)
    );
    let turns = sim.caller_turns();
    assert_eq!(turns.len(), 1, "one turn: {turns:?}");
    let heard = words(&turns[0]);
    assert!(heard.contains("yes") && heard.contains("ahead"), "both parts in one turn: {turns:?}");
    assert!(sim.clears.is_empty(), "nothing was said to be cleared");
    sim.run_until(Duration::from_secs(20), "the closing", |s| s.line_done("Goodbye"));
    let result = sim.hang_up();
    assert_eq!(result.outcome, Outcome::Successful, "{result:?}");
}

/// The model says "complete" at the pause after "Yes, sure," and the reply starts; the caller
/// goes on with "go ahead" within the reply's first 400 ms. The reply is cleared without an
/// "As I was saying", the two parts are one turn, and the reply comes once, after it.
#[test]
fn an_answer_resumed_in_the_first_400_ms_of_the_reply_withdraws_it() {
    let mut sim = Sim::new(&offer_script(), Judge::AlwaysComplete);
    sim.run_until(Duration::from_secs(10), "the offer to be asked", |s| s.line_done(OFFER));
    sim.say(&speak("Yes, sure,"));
    sim.run_until(Duration::from_secs(10), "a reply to start", |s| s.line("Great").is_some_and(|l| l.first.is_some()));
    let reply_started = sim.frame;
    sim.run_for(Duration::from_millis(200));
    let resumed = sim.frame;
    sim.say(&speak("go ahead then."));
    sim.run_until(Duration::from_secs(10), "the withdrawn reply's clear", |s| !s.clears.is_empty());
    let clear_after = (sim.clears[0] - resumed) * 20;
    assert!(clear_after <= 400, "cleared {clear_after} ms after the caller went on");
    sim.run_until(Duration::from_secs(20), "the closing", |s| s.line_done("Goodbye"));
    let replies: Vec<&LineHeard> = sim.lines.iter().filter(|l| l.text.contains("Great")).collect();
    assert_eq!(replies.len(), 2, "the withdrawn reply, then the one reply: {:#?}", sim.lines);
    assert!(replies[1].first.unwrap() > resumed + 20, "the reply came after the whole answer");
    assert!(sim.lines.iter().all(|l| !l.text.contains("As I was saying")), "{:#?}", sim.lines);
    let turns = sim.caller_turns();
    assert_eq!(turns.len(), 1, "one merged turn: {turns:?}");
    assert!(words(&turns[0]).contains("yes") && words(&turns[0]).contains("ahead"), "{turns:?}");
    let bot: Vec<_> = sim.core.transcript().iter().filter(|t| t.speaker_is_bot()).map(|t| t.text.clone()).collect();
    assert_eq!(bot.iter().filter(|t| t.contains("Great")).count(), 1, "the withdrawn reply is not a turn: {bot:?}");
    assert!(reply_started < resumed);
    let result = sim.hang_up();
    assert_eq!(result.outcome, Outcome::Successful, "{result:?}");
}

/// "Uh-huh" in the middle of a long statement pauses it for a moment; the words show it was a
/// backchannel, so the line goes on to its end, uninterrupted, with no re-prompt.
#[test]
fn a_backchannel_during_a_line_does_not_interrupt_it() {
    let mut sim = Sim::new(&info_script(), Judge::AlwaysComplete);
    sim.run_until(Duration::from_secs(5), "the line to start", |s| {
        s.line("Before we go on").is_some_and(|l| l.first.is_some())
    });
    sim.run_for(Duration::from_secs(3));
    let uh_huh = speak("uh-huh.");
    sim.say(&uh_huh);
    sim.run_until(Duration::from_secs(30), "the line to end", |s| s.line_done("Before we go on"));
    let info = sim.core.transcript().iter().find(|t| t.text.starts_with("Before we go on")).unwrap().clone();
    assert!(!info.interrupted, "{info:?}; heard {:?} ({} ms)", sim.caller_turns(), uh_huh.len() / 8);
    assert!(sim.lines.iter().all(|l| !l.text.contains("As I was saying")), "{:#?}", sim.lines);
    sim.run_until(Duration::from_secs(10), "the question", |s| s.line(OFFER).is_some_and(|l| l.first.is_some()));
    assert_eq!(sim.lines.iter().filter(|l| l.text == LONG_INFO).count(), 1, "said once");
}

/// "Hold on, I have a question." over a line: the audio stops within 300 ms of the caller's first
/// voiced frame, the line is interrupted, and the caller's words reach the dialogue.
#[test]
fn a_real_barge_in_stops_the_line() {
    let mut sim = Sim::new(&info_script(), Judge::AlwaysComplete);
    sim.run_until(Duration::from_secs(5), "the line to start", |s| {
        s.line("Before we go on").is_some_and(|l| l.first.is_some())
    });
    sim.run_for(Duration::from_secs(2));
    let spoke = sim.frame + 1;
    sim.say(&speak("Hold on, I have a question."));
    sim.run_until(Duration::from_secs(5), "a clear", |s| !s.clears.is_empty());
    let first_voiced = (spoke..sim.caller_voiced.len()).find(|&i| sim.caller_voiced[i]).unwrap();
    let latency = (sim.clears[0] - first_voiced) * 20;
    assert!(latency <= 300, "clear {latency} ms after the caller's first voiced frame");
    let heard_after: Vec<usize> = (sim.clears[0] + 1..sim.bot_audible.len()).filter(|&i| sim.bot_audible[i]).collect();
    assert!(heard_after.is_empty(), "bot audio after the clear: {heard_after:?}");
    sim.run_until(Duration::from_secs(10), "the caller's turn", |s| !s.caller_turns().is_empty());
    let info = sim.core.transcript().iter().find(|t| t.text.starts_with("Before we go on")).unwrap().clone();
    assert!(info.interrupted, "{info:?}");
    assert!(words(&sim.caller_turns().join(" ")).contains("question"), "{:?}", sim.caller_turns());
}

/// A cough in the middle of a line is not speech: no pause, no clear, the line plays whole.
#[test]
fn a_cough_during_a_line_changes_nothing() {
    let mut sim = Sim::new(&info_script(), Judge::AlwaysComplete);
    sim.run_until(Duration::from_secs(5), "the line to start", |s| {
        s.line("Before we go on").is_some_and(|l| l.first.is_some())
    });
    sim.run_for(Duration::from_secs(2));
    sim.say(&cough());
    sim.run_until(Duration::from_secs(30), "the line to end", |s| s.line_done("Before we go on"));
    assert!(sim.clears.is_empty(), "cleared at {:?}", sim.clears);
    let info = sim.core.transcript().iter().find(|t| t.text.starts_with("Before we go on")).unwrap().clone();
    assert!(!info.interrupted);
    assert!(sim.caller_turns().is_empty(), "{:?}", sim.caller_turns());
    assert_eq!(sim.judged, 0, "nothing to judge");
}

/// An outbound call as a person takes it: "Hello?" at pickup, said before the greeting, answers
/// nothing; "Yes, speaking." answers the greeting; the refusal answers the offer. With no
/// end-of-turn verdict (a busy model) silence ends each turn.
#[test]
fn a_person_picking_up_is_heard_in_order() {
    let script = Script::new(
        &[
            step("1", StepType::Greeting, "Hello, this is Acme. Am I speaking with John?"),
            step("2", StepType::Information, "I'm calling to tell you about our new Premium Widget."),
            step("3", StepType::Question, "Do you have a few minutes to discuss how this could benefit your company?"),
            step("4", StepType::Response, "Great! Let me tell you about our key features..."),
            step("5", StepType::Closing, "Thank you for your time. Goodbye."),
        ],
        None,
        |_| None,
    )
    .unwrap();
    let mut config = CoreConfig::default();
    config.dialogue.screen_for_machine = true;
    let mut sim = Sim::with_core(CallCore::new(script, config, Instant::now()).unwrap(), Judge::Unavailable);
    sim.say(&speak("Hello?"));
    sim.run_until(Duration::from_secs(10), "greeting", |s| s.line_done("John"));
    sim.run_for(Duration::from_millis(600));
    sim.say(&speak("Yes, speaking."));
    sim.run_until(Duration::from_secs(20), "question", |s| s.line_done("few minutes"));
    sim.run_for(Duration::from_millis(600));
    sim.say(&speak("No, I am not interested. Thank you."));
    sim.run_until(Duration::from_secs(20), "the goodbye", |s| s.line_done("Goodbye"));
    let result = sim.hang_up();
    assert_eq!(result.outcome, Outcome::Rejected, "{result:?}\n{:#?}", sim.core.transcript());
    assert!(sim.line("Great").is_none(), "the refusal was not taken for a yes: {:#?}", sim.lines);
    assert!(sim.overlaps(0).is_empty(), "the bot spoke over the caller at frames {:?}", sim.overlaps(0));
}

/// The same answer with the real end-of-turn model: whatever it says at each pause, the caller
/// hears nothing over their answer, and the answer is one turn.
#[test]
fn with_the_real_model_a_700_ms_pause_does_not_end_the_answer() {
    let mut sim = Sim::new(&offer_script(), Judge::Model);
    sim.run_until(Duration::from_secs(10), "the offer to be asked", |s| s.line_done(OFFER));
    let answer_from = sim.frame;
    sim.say(&speak("Yes, sure,"));
    sim.say(&silence(700));
    sim.say(&speak("go ahead."));
    sim.run_until(Duration::from_secs(10), "the reply", |s| s.line("Great").is_some_and(|l| l.first.is_some()));
    assert!(
        sim.overlaps(answer_from).is_empty(),
        "the bot spoke over the caller at frames {:?}",
        sim.overlaps(answer_from)
    );
    let turns = sim.caller_turns();
    assert_eq!(turns.len(), 1, "one turn: {turns:?}");
    assert!(words(&turns[0]).contains("ahead"), "{turns:?}");
}

/// Words that never come back (a recogniser that died) do not leave the call waiting forever:
/// after the transcript timeout the answer counts as lost and the question is asked again.
#[test]
fn a_transcript_that_never_comes_is_a_lost_answer() {
    let mut sim = Sim::new(&offer_script(), Judge::AlwaysComplete);
    sim.deaf = true;
    sim.run_until(Duration::from_secs(10), "the offer to be asked", |s| s.line_done(OFFER));
    sim.say(&speak("Yes, please."));
    sim.run_until(Duration::from_secs(20), "the question again", |s| {
        s.lines.iter().filter(|l| l.text.contains(OFFER)).count() == 2
    });
    let asked_again = sim.lines.iter().rfind(|l| l.text.contains(OFFER)).unwrap().text.clone();
    assert_ne!(asked_again, OFFER, "asked again with a word first: {asked_again}");
}

/// A carrier that stops sending audio (a dead peer, a stuck socket) cannot keep the call
/// `in-progress` forever: after `media_idle_ms` without a frame the call ends, and says why.
#[test]
fn a_call_whose_media_stops_ends_with_the_reason() {
    let script = Script::new(&offer_script(), None, |_| None).unwrap();
    let t0 = Instant::now();
    let mut core = CallCore::new(script, CoreConfig::default(), t0).unwrap();
    core.handle(Input::Answered, t0);
    let mut finished = None;
    // Ticks keep coming (the session's timer), frames do not.
    for frame in 1..=(12_000 / 20) {
        core.handle(Input::Tick, t0 + TICK * frame);
        while let Some(output) = core.poll() {
            if let Output::Finished(result) = output {
                finished.get_or_insert((frame, result));
            }
        }
    }
    let (frame, result) = finished.expect("the call ended");
    assert_eq!(frame, 10_000 / 20, "ended at the idle limit");
    assert_eq!(result.outcome, Outcome::Failed);
    let notes = result.notes.unwrap_or_default();
    assert!(notes.contains("no audio from the carrier for 10 s"), "{notes}");
}
