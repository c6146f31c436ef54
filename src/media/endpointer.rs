//! Endpointing: decides, frame by frame, when a caller's turn starts and ends and when the
//! caller is talking over the bot.
//!
//! A pure state machine (sans-IO, no clock): each [`Endpointer::push_frame`] call is one 20 ms
//! frame, given as the VAD's speech probability plus the frame's PCM, so time is counted in
//! frames and tests replay probability sequences without sleeping.
//!
//! Rules (all durations configurable in [`EndpointerConfig`]):
//! - A candidate turn starts on a frame at or above `start_threshold`; afterwards frames at or
//!   above the lower `end_threshold` still count as speech (hysteresis), so a probability that
//!   wobbles around the start threshold does not chop a turn.
//! - The candidate becomes a turn ([`Event::SpeechStarted`]) after `min_speech_ms` of speech
//!   frames. It is dropped after `start_gap_ms` of consecutive low frames before that, so clicks
//!   and short noise blips never become turns.
//! - While the bot is speaking ([`Endpointer::set_bot_speaking`]) a turn needs `barge_in_ms` of
//!   speech instead, and [`Event::BargeIn`] is emitted right before `SpeechStarted`: a cough or an
//!   "mm-hmm" under the bot's voice neither interrupts it nor becomes a turn. A turn already in
//!   progress when the bot starts speaking emits `BargeIn` once it has `barge_in_ms` of speech.
//! - The turn ends on its own ([`Event::SpeechEnded`]) after `end_silence_ms` of consecutive
//!   frames below `end_threshold`. That is a ceiling: silence alone cannot tell "Yes," (more to
//!   come) from "Yes." (done), so with `pause_events` the call core asks an end-of-turn model at
//!   each [`Event::Pause`] and ends a finished turn early with [`Endpointer::end_turn`]. A caller
//!   who speaks again after a `Pause` gets [`Event::Resumed`]: the turn goes on.
//! - The turn's audio starts `pre_roll_ms` before the first speech frame (the VAD reacts after
//!   a word's soft onset) and ends `pre_roll_ms` after the last speech frame, so STT neither
//!   loses leading consonants nor pays for the whole end-of-turn silence.
//! - A turn longer than `max_turn_ms` is handed out at that length and the next frame may start
//!   a new one; this bounds the buffer, which is sized once in [`Endpointer::new`].
//!
//! Per-frame work does not allocate: the pre-roll ring and the turn buffer are allocated up
//! front and [`Events`] lives on the stack. The only allocation is the `Vec` handed out with
//! `SpeechEnded`.

use thiserror::Error;

/// Duration of one frame, i.e. of one `push_frame` call.
pub const FRAME_MS: u32 = 20;

#[derive(Debug, Clone, PartialEq)]
pub struct EndpointerConfig {
    /// Sample rate of the PCM given to `push_frame` (sizes the buffers).
    pub sample_rate: u32,
    /// Speech probability at or above which a turn may start.
    pub start_threshold: f32,
    /// Speech probability below which a frame counts as silence once a turn has started.
    pub end_threshold: f32,
    /// Speech needed before a candidate becomes a turn (bot silent).
    pub min_speech_ms: u32,
    /// Consecutive silence that drops a candidate before it becomes a turn.
    pub start_gap_ms: u32,
    /// Consecutive silence that ends a turn by itself (the ceiling: see the module docs).
    pub end_silence_ms: u32,
    /// Speech needed, while the bot speaks, before the caller interrupts it.
    pub barge_in_ms: u32,
    /// Audio kept before the first and after the last speech frame of a turn.
    pub pre_roll_ms: u32,
    /// Longest turn handed out at once; sizes the turn buffer.
    pub max_turn_ms: u32,
    /// Emit [`Event::Pause`] when a turn's trailing silence reaches `pre_roll_ms` (and
    /// [`Event::Resumed`] when speech follows it), so the turn's audio can be judged and
    /// transcribed while its end is still open.
    pub pause_events: bool,
}

impl Default for EndpointerConfig {
    fn default() -> Self {
        // Thresholds follow Silero's own defaults (0.5, and 0.15 below it to end).
        Self {
            sample_rate: 16_000,
            start_threshold: 0.5,
            end_threshold: 0.35,
            min_speech_ms: 140,
            start_gap_ms: 60,
            end_silence_ms: 400,
            barge_in_ms: 200,
            pre_roll_ms: 200,
            // 15 s at 16 kHz is 480 KB per call; longer monologues arrive as several turns.
            max_turn_ms: 15_000,
            pause_events: false,
        }
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum ConfigError {
    #[error("thresholds must satisfy 0 <= end_threshold <= start_threshold <= 1")]
    Thresholds,
    #[error("sample_rate must be between 8000 and 48000")]
    SampleRate,
    #[error("{0} must be at least one frame (20 ms)")]
    TooShort(&'static str),
    #[error("max_turn_ms must exceed pre_roll_ms plus the speech needed to start a turn")]
    MaxTurn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A turn was confirmed (`min_speech_ms`, or `barge_in_ms` while the bot speaks).
    SpeechStarted,
    /// The turn ended; its audio including the pre-roll and a tail of the same length.
    /// `silence_ms`: how long ago the caller stopped (the end-of-turn silence that was
    /// waited for: shorter after a yes/no question).
    SpeechEnded { audio: Vec<i16>, silence_ms: u32 },
    /// The caller talks over the bot: stop playback.
    BargeIn,
    /// The caller has been silent for `pre_roll_ms` and the turn may be over (only with
    /// `pause_events`, and only when the end silence is longer than that). `audio` is exactly
    /// what `SpeechEnded` (or `end_turn`) will carry if no speech follows before the end (same
    /// length), so a transcription started now can be used as the turn's.
    Pause { audio: Vec<i16> },
    /// Speech again after a `Pause`: the turn goes on, what was started at the pause is stale.
    Resumed,
}

/// The events of one frame, in order; at most three (a turn cut at `max_turn_ms` can end, and
/// with one-frame limits a new one start and barge in, on the same frame).
#[must_use = "events carry the caller's turn and barge-ins"]
#[derive(Debug, Default)]
pub struct Events {
    slots: [Option<Event>; 3],
    next: usize,
}

impl Events {
    fn push(&mut self, event: Event) {
        if let Some(slot) = self.slots.iter_mut().find(|slot| slot.is_none()) {
            *slot = Some(event);
        }
    }
}

impl Iterator for Events {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        let event = self.slots.get_mut(self.next)?.take();
        self.next += 1;
        event
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    /// Above the start threshold, not yet long enough to be a turn.
    Candidate,
    Turn,
}

#[derive(Debug)]
pub struct Endpointer {
    start_threshold: f32,
    end_threshold: f32,
    min_speech_frames: u32,
    start_gap_frames: u32,
    end_silence_frames: u32,
    barge_in_frames: u32,
    /// Pre-roll (and tail) length in samples.
    pad: usize,
    /// Silence frames after which `Pause` is emitted; 0: never.
    pause_frames: u32,

    state: State,
    bot_speaking: bool,
    /// Last `pad` samples seen, oldest at `ring_pos` once full.
    ring: Vec<i16>,
    ring_pos: usize,
    ring_len: usize,
    turn: Vec<i16>,
    speech_frames: u32,
    silence_run: u32,
    /// `turn.len()` right after the last speech frame.
    voiced_len: usize,
    barged_in: bool,
}

fn frames(ms: u32) -> u32 {
    ms.div_ceil(FRAME_MS)
}

impl Endpointer {
    pub fn new(config: &EndpointerConfig) -> Result<Self, ConfigError> {
        let c = config;
        if !(0.0..=1.0).contains(&c.end_threshold)
            || !(0.0..=1.0).contains(&c.start_threshold)
            || c.end_threshold > c.start_threshold
        {
            return Err(ConfigError::Thresholds);
        }
        if !(8_000..=48_000).contains(&c.sample_rate) {
            return Err(ConfigError::SampleRate);
        }
        for (name, ms) in [
            ("min_speech_ms", c.min_speech_ms),
            ("start_gap_ms", c.start_gap_ms),
            ("end_silence_ms", c.end_silence_ms),
            ("barge_in_ms", c.barge_in_ms),
        ] {
            if ms < FRAME_MS {
                return Err(ConfigError::TooShort(name));
            }
        }
        if c.max_turn_ms <= c.pre_roll_ms + c.min_speech_ms.max(c.barge_in_ms) + FRAME_MS {
            return Err(ConfigError::MaxTurn);
        }
        let samples = |ms: u32| (u64::from(c.sample_rate) * u64::from(ms) / 1000) as usize;
        let pad = samples(c.pre_roll_ms);
        Ok(Self {
            start_threshold: c.start_threshold,
            end_threshold: c.end_threshold,
            min_speech_frames: frames(c.min_speech_ms),
            start_gap_frames: frames(c.start_gap_ms),
            end_silence_frames: frames(c.end_silence_ms),
            barge_in_frames: frames(c.barge_in_ms),
            pad,
            pause_frames: if c.pause_events { frames(c.pre_roll_ms).max(1) } else { 0 },
            state: State::Idle,
            bot_speaking: false,
            ring: vec![0; pad],
            ring_pos: 0,
            ring_len: 0,
            turn: Vec::with_capacity(samples(c.max_turn_ms)),
            speech_frames: 0,
            silence_run: 0,
            voiced_len: 0,
            barged_in: false,
        })
    }

    /// Tells the endpointer whether the bot's audio is playing (barge-in detection).
    pub fn set_bot_speaking(&mut self, speaking: bool) {
        self.bot_speaking = speaking;
    }

    /// True between `SpeechStarted` and `SpeechEnded`.
    pub fn in_turn(&self) -> bool {
        self.state == State::Turn
    }

    /// True when no turn or candidate is open: the caller is not talking.
    pub fn is_idle(&self) -> bool {
        self.state == State::Idle
    }

    /// Milliseconds of speech in the open turn or candidate (0 when idle).
    pub fn speech_ms(&self) -> u32 {
        if self.state == State::Idle { 0 } else { self.speech_frames * FRAME_MS }
    }

    /// Milliseconds of trailing silence in the open turn (0 while the caller speaks).
    pub fn silence_ms(&self) -> u32 {
        if self.state == State::Turn { self.silence_run * FRAME_MS } else { 0 }
    }

    /// Ends the open turn now, at a pause the caller is in, and returns its audio (the same
    /// as the last `Pause` carried once the pause reached it). `None` while the caller is
    /// speaking or when no turn is open: a turn is only ended in silence.
    pub fn end_turn(&mut self) -> Option<Vec<i16>> {
        if self.state != State::Turn || self.silence_run == 0 {
            return None;
        }
        match self.finish_turn() {
            Event::SpeechEnded { audio, .. } => Some(audio),
            _ => None,
        }
    }

    /// Feeds one 20 ms frame: its VAD speech probability and its samples.
    pub fn push_frame(&mut self, probability: f32, samples: &[i16]) -> Events {
        let mut events = Events::default();
        if self.state != State::Idle && self.turn.len() + samples.len() > self.turn.capacity() {
            if self.state == State::Turn {
                events.push(self.finish_turn());
            } else {
                self.reset_turn();
            }
        }
        match self.state {
            State::Idle => {
                if probability >= self.start_threshold {
                    self.begin_candidate(samples);
                    self.check_start(&mut events);
                }
            }
            State::Candidate | State::Turn => {
                self.turn.extend_from_slice(samples);
                if probability >= self.end_threshold {
                    if self.pause_frames > 0 && self.silence_run >= self.pause_frames && self.state == State::Turn {
                        events.push(Event::Resumed);
                    }
                    self.speech_frames += 1;
                    self.silence_run = 0;
                    self.voiced_len = self.turn.len();
                } else {
                    self.silence_run += 1;
                }
                if self.state == State::Candidate {
                    if self.silence_run >= self.start_gap_frames {
                        self.reset_turn();
                    } else {
                        self.check_start(&mut events);
                    }
                } else if self.silence_run >= self.end_silence_frames {
                    events.push(self.finish_turn());
                } else {
                    if self.silence_run == self.pause_frames && self.pause_frames > 0 {
                        let end = self.turn.len().min(self.voiced_len + self.pad);
                        events.push(Event::Pause { audio: self.turn[..end].to_vec() });
                    }
                    self.check_barge_in(&mut events);
                }
            }
        }
        self.remember(samples);
        events
    }

    fn begin_candidate(&mut self, samples: &[i16]) {
        self.turn.clear();
        // Until the ring fills, `ring_pos == ring_len` and `head` is empty; once full, the
        // oldest sample sits at `ring_pos`.
        let (head, tail) = self.ring[..self.ring_len].split_at(self.ring_pos % self.ring_len.max(1));
        self.turn.extend_from_slice(tail);
        self.turn.extend_from_slice(head);
        self.turn.extend_from_slice(samples);
        self.state = State::Candidate;
        self.speech_frames = 1;
        self.silence_run = 0;
        self.voiced_len = self.turn.len();
        self.barged_in = false;
    }

    fn check_start(&mut self, events: &mut Events) {
        let needed = if self.bot_speaking { self.barge_in_frames } else { self.min_speech_frames };
        if self.speech_frames >= needed {
            self.state = State::Turn;
            self.check_barge_in(events);
            events.push(Event::SpeechStarted);
        }
    }

    fn check_barge_in(&mut self, events: &mut Events) {
        if self.bot_speaking && !self.barged_in && self.speech_frames >= self.barge_in_frames {
            self.barged_in = true;
            events.push(Event::BargeIn);
        }
    }

    fn finish_turn(&mut self) -> Event {
        let end = self.turn.len().min(self.voiced_len + self.pad);
        let audio = self.turn[..end].to_vec();
        let silence_ms = self.silence_run * FRAME_MS;
        self.reset_turn();
        Event::SpeechEnded { audio, silence_ms }
    }

    fn reset_turn(&mut self) {
        self.turn.clear();
        self.state = State::Idle;
        self.speech_frames = 0;
        self.silence_run = 0;
        self.voiced_len = 0;
    }

    /// Keeps the last `pad` samples for the next turn's pre-roll.
    fn remember(&mut self, samples: &[i16]) {
        let cap = self.ring.len();
        if cap == 0 {
            return;
        }
        for &s in &samples[samples.len().saturating_sub(cap)..] {
            self.ring[self.ring_pos] = s;
            self.ring_pos = (self.ring_pos + 1) % cap;
        }
        self.ring_len = (self.ring_len + samples.len()).min(cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEECH: f32 = 0.9;
    const QUIET: f32 = 0.05;
    /// Samples per 20 ms frame at the default 16 kHz.
    const N: usize = 320;

    /// What happened at which frame index.
    #[derive(Debug, Default)]
    struct Run {
        started: Vec<usize>,
        ended: Vec<(usize, Vec<i16>)>,
        barge_ins: Vec<usize>,
        pauses: Vec<(usize, Vec<i16>)>,
        resumed: Vec<usize>,
        frames: usize,
    }

    /// Every sample of frame `i` is `i + 1`, so a turn's audio says which frames it holds.
    fn frame(i: usize) -> [i16; N] {
        [(i + 1) as i16; N]
    }

    fn feed(ep: &mut Endpointer, run: &mut Run, probabilities: &[f32]) {
        for &p in probabilities {
            let i = run.frames;
            for event in ep.push_frame(p, &frame(i)) {
                match event {
                    Event::SpeechStarted => run.started.push(i),
                    Event::SpeechEnded { audio, .. } => run.ended.push((i, audio)),
                    Event::BargeIn => run.barge_ins.push(i),
                    Event::Pause { audio } => run.pauses.push((i, audio)),
                    Event::Resumed => run.resumed.push(i),
                }
            }
            run.frames += 1;
        }
    }

    fn ms(p: f32, duration_ms: usize) -> Vec<f32> {
        vec![p; duration_ms / FRAME_MS as usize]
    }

    fn seq(parts: &[Vec<f32>]) -> Vec<f32> {
        parts.concat()
    }

    fn endpointer() -> Endpointer {
        Endpointer::new(&EndpointerConfig::default()).unwrap()
    }

    /// Frame indices (0-based) whose samples the audio holds, in order, deduplicated.
    fn frames_in(audio: &[i16]) -> Vec<usize> {
        let mut out: Vec<usize> = audio.chunks(N).map(|c| c[0] as usize - 1).collect();
        out.dedup();
        out
    }

    /// Milliseconds from the end of the last speech frame to the end of the frame that ended the turn.
    fn end_latency_ms(ended_at: usize, last_speech_frame: usize) -> i64 {
        (ended_at as i64 - last_speech_frame as i64) * i64::from(FRAME_MS)
    }

    #[test]
    fn a_pause_hands_out_the_turns_final_audio_early_unless_speech_resumes() {
        let mut ep = Endpointer::new(&EndpointerConfig { pause_events: true, ..EndpointerConfig::default() }).unwrap();
        let mut run = Run::default();
        // A mid-turn pause longer than the pre-roll, then the real end.
        let p = seq(&[ms(QUIET, 200), ms(SPEECH, 600), ms(QUIET, 300), ms(SPEECH, 400), ms(QUIET, 1000)]);
        feed(&mut ep, &mut run, &p);
        assert_eq!(run.ended.len(), 1, "{run:?}");
        assert_eq!(run.pauses.len(), 2, "one pause mid-turn, one at its end");
        let last_speech = (200 + 600 + 300 + 400) / 20 - 1;
        // 200 ms (the pre-roll) after the last speech frame, 200 ms before the end.
        assert_eq!(run.pauses[1].0, last_speech + 10);
        assert_eq!(run.ended[0].0, last_speech + 20);
        assert_eq!(run.pauses[1].1, run.ended[0].1, "the early audio is the turn's");
        assert!(run.pauses[0].1.len() < run.ended[0].1.len(), "the mid-turn pause's audio is not");

        assert_eq!(run.resumed, vec![(200 + 600 + 300) / 20], "speech after the first pause resumes the turn");

        // Without the option, no pause is emitted.
        let mut plain = endpointer();
        let mut run = Run::default();
        feed(&mut plain, &mut run, &p);
        assert!(run.pauses.is_empty() && run.resumed.is_empty());
    }

    #[test]
    fn end_turn_ends_a_turn_only_in_a_pause_and_hands_out_the_pause_audio() {
        let mut ep = Endpointer::new(&EndpointerConfig {
            pause_events: true,
            end_silence_ms: 2000,
            ..EndpointerConfig::default()
        })
        .unwrap();
        let mut run = Run::default();
        feed(&mut ep, &mut run, &seq(&[ms(QUIET, 200), ms(SPEECH, 600)]));
        assert!(ep.in_turn() && !ep.is_idle());
        assert_eq!(ep.end_turn(), None, "not while the caller speaks");
        feed(&mut ep, &mut run, &ms(QUIET, 200));
        assert_eq!(ep.silence_ms(), 200);
        let audio = ep.end_turn().expect("ended in the pause");
        assert_eq!(audio, run.pauses[0].1);
        assert!(ep.is_idle());
        assert_eq!(ep.end_turn(), None);
        // Nothing more comes of that turn.
        feed(&mut ep, &mut run, &ms(QUIET, 3000));
        assert!(run.ended.is_empty(), "{run:?}");
    }

    #[test]
    fn turn_ends_400ms_after_the_true_end_of_speech() {
        let mut ep = endpointer();
        let mut run = Run::default();
        // Two utterances separated by pauses shorter than the end silence, then a long pause.
        let p = seq(&[ms(QUIET, 1000), ms(SPEECH, 800), ms(QUIET, 300), ms(SPEECH, 600), ms(QUIET, 1500)]);
        feed(&mut ep, &mut run, &p);
        let last_speech = (1000 + 800 + 300 + 600) / 20 - 1;
        assert_eq!(run.started.len(), 1, "{run:?}");
        assert_eq!(run.ended.len(), 1);
        let latency = end_latency_ms(run.ended[0].0, last_speech);
        assert!((latency - 400).abs() <= i64::from(FRAME_MS), "ended {latency} ms after speech");
        // Started after min_speech_ms of the first speech frame (index 50).
        assert_eq!(run.started[0], 50 + frames(140) as usize - 1);
        assert!(run.barge_ins.is_empty());
        assert!(!ep.in_turn());

        // A second turn later ends the same way.
        feed(&mut ep, &mut run, &seq(&[ms(SPEECH, 500), ms(QUIET, 1000)]));
        let last_speech = (1000 + 800 + 300 + 600 + 1500 + 500) / 20 - 1;
        assert_eq!(run.ended.len(), 2);
        let latency = end_latency_ms(run.ended[1].0, last_speech);
        assert!((latency - 400).abs() <= i64::from(FRAME_MS), "ended {latency} ms after speech");
    }

    #[test]
    fn a_150ms_burst_during_playback_is_not_a_barge_in() {
        let mut ep = endpointer();
        let mut run = Run::default();
        ep.set_bot_speaking(true);
        feed(&mut ep, &mut run, &seq(&[ms(QUIET, 500), ms(SPEECH, 150), ms(QUIET, 1000)]));
        assert!(run.barge_ins.is_empty(), "{run:?}");
        // Nor is it a turn of its own: the bot keeps talking and STT is not bothered.
        assert!(run.started.is_empty() && run.ended.is_empty());
    }

    #[test]
    fn four_hundred_ms_of_speech_during_playback_is_a_barge_in() {
        let mut ep = endpointer();
        let mut run = Run::default();
        ep.set_bot_speaking(true);
        feed(&mut ep, &mut run, &seq(&[ms(QUIET, 500), ms(SPEECH, 400)]));
        // Fires once barge_in_ms (200 ms = 10 frames) of speech is in, before the turn starts.
        assert_eq!(run.barge_ins, vec![25 + 10 - 1]);
        assert_eq!(run.started, vec![25 + 10 - 1]);
        ep.set_bot_speaking(false);
        feed(&mut ep, &mut run, &ms(QUIET, 600));
        assert_eq!(run.ended.len(), 1);
        assert_eq!(run.barge_ins.len(), 1);
    }

    #[test]
    fn a_turn_running_when_the_bot_starts_speaking_barges_in_once() {
        let mut ep = endpointer();
        let mut run = Run::default();
        feed(&mut ep, &mut run, &ms(SPEECH, 200));
        assert_eq!(run.started.len(), 1);
        ep.set_bot_speaking(true);
        feed(&mut ep, &mut run, &ms(SPEECH, 400));
        // The 10 frames before the bot spoke count: barge_in_ms (10 frames) is reached at once.
        assert_eq!(run.barge_ins, vec![10]);
    }

    #[test]
    fn the_turn_audio_includes_the_pre_roll_and_a_short_tail() {
        let mut ep = endpointer();
        let mut run = Run::default();
        feed(&mut ep, &mut run, &seq(&[ms(QUIET, 1000), ms(SPEECH, 600), ms(QUIET, 600)]));
        let (_, audio) = &run.ended[0];
        // Speech is frames 50..80; 200 ms = 10 frames of pre-roll and of tail.
        assert_eq!(frames_in(audio), (40..90).collect::<Vec<_>>());
        assert_eq!(audio.len(), 50 * N);
    }

    #[test]
    fn the_pre_roll_is_partial_when_speech_starts_at_once() {
        let mut ep = endpointer();
        let mut run = Run::default();
        feed(&mut ep, &mut run, &seq(&[ms(QUIET, 60), ms(SPEECH, 300), ms(QUIET, 600)]));
        assert_eq!(frames_in(&run.ended[0].1), (0..28).collect::<Vec<_>>());
    }

    #[test]
    fn noise_blips_shorter_than_min_speech_do_not_start_turns() {
        let mut ep = endpointer();
        let mut run = Run::default();
        let blip = seq(&[ms(SPEECH, 100), ms(QUIET, 300)]);
        for _ in 0..20 {
            feed(&mut ep, &mut run, &blip);
        }
        assert!(run.started.is_empty() && run.ended.is_empty(), "{run:?}");
        // Probabilities between the thresholds never start anything either.
        feed(&mut ep, &mut run, &ms(0.45, 2000));
        assert!(run.started.is_empty());
    }

    #[test]
    fn hysteresis_holds_a_turn_through_a_single_low_frame() {
        let mut ep = endpointer();
        let mut run = Run::default();
        // A single dip far below the end threshold, and frames between the two thresholds
        // (below start, above end), all inside one utterance.
        let p = seq(&[ms(SPEECH, 300), vec![0.0], ms(SPEECH, 300), ms(0.4, 200), ms(SPEECH, 200), ms(QUIET, 800)]);
        feed(&mut ep, &mut run, &p);
        assert_eq!(run.started.len(), 1);
        assert_eq!(run.ended.len(), 1, "{run:?}");
        let last_speech = (300 + 20 + 300 + 200 + 200) / 20 - 1;
        let latency = end_latency_ms(run.ended[0].0, last_speech);
        assert!((latency - 400).abs() <= i64::from(FRAME_MS), "ended {latency} ms after speech");
    }

    #[test]
    fn a_long_turn_is_handed_out_at_max_turn_and_the_buffer_never_grows() {
        let config = EndpointerConfig { max_turn_ms: 2000, ..EndpointerConfig::default() };
        let mut ep = Endpointer::new(&config).unwrap();
        let (ptr, capacity) = (ep.turn.as_ptr(), ep.turn.capacity());
        let mut run = Run::default();
        feed(&mut ep, &mut run, &seq(&[ms(QUIET, 400), ms(SPEECH, 5000), ms(QUIET, 600)]));
        assert_eq!(run.ended.len(), 3, "{run:?}");
        assert!(run.ended.iter().all(|(_, audio)| audio.len() <= capacity));
        assert_eq!((ep.turn.as_ptr(), ep.turn.capacity()), (ptr, capacity));
    }

    #[test]
    fn invalid_configs_are_rejected() {
        let bad = |c: EndpointerConfig| Endpointer::new(&c).unwrap_err();
        let d = EndpointerConfig::default;
        assert_eq!(bad(EndpointerConfig { end_threshold: 0.6, ..d() }), ConfigError::Thresholds);
        assert_eq!(bad(EndpointerConfig { start_threshold: f32::NAN, ..d() }), ConfigError::Thresholds);
        assert_eq!(bad(EndpointerConfig { sample_rate: 0, ..d() }), ConfigError::SampleRate);
        assert_eq!(bad(EndpointerConfig { end_silence_ms: 0, ..d() }), ConfigError::TooShort("end_silence_ms"));
        assert_eq!(bad(EndpointerConfig { max_turn_ms: 400, ..d() }), ConfigError::MaxTurn);
    }
}
