//! A simulated callee's ear: which of the bot's audio is one line, and when that line ended.
//! Pure (fed frames and marks with their `Instant`s), so the timing rules are tested on a
//! virtual clock.
//!
//! Silence alone cannot tell the end of a line: a line is synthesized sentence by sentence,
//! and on a loaded machine the next sentence may arrive a second after the previous one has
//! played, a gap that looks exactly like the end of the line. The gateway sends a Twilio
//! `mark` after a line's last frame, and Twilio (here the peer's `PlaybackBuffer`) returns
//! it once that frame has played; so a line has ended when a mark comes back after its last
//! voiced frame, and the bot has not gone on within a short settling time. The peer reports the mark of a tick before that tick's frame, with the same
//! `Instant`: a voiced frame at the mark's instant is the line's last, not the next line's
//! first. Only a gateway that sends no marks is judged by silence, after a long one.
//!
//! When the bot says several lines in a row (a statement greeting, then its question), only
//! the last is handed over: what the callee answers is decided by the last thing said, and
//! transcribing less makes the answer come sooner.

use std::time::{Duration, Instant};

use crate::media::g711;
use crate::telephony::twilio::stream::CHUNK_SAMPLES;

#[derive(Clone, Debug, PartialEq)]
pub struct EarConfig {
    /// Quiet after the mark before the line counts as ended: the bot may go straight on (a
    /// statement greeting, then its question), and after its last line it hangs up within
    /// this time, so the callee does not transcribe what it will never answer.
    pub settle: Duration,
    /// Quiet after the bot's last voiced frame that ends a line without a mark.
    pub no_mark_quiet: Duration,
    /// RMS of a 20 ms frame above which the bot is speaking (-40 dBFS).
    pub voiced_rms: f64,
    /// Longest stretch of the bot's speech kept for one transcription (the oldest is dropped).
    pub max_heard: Duration,
}

impl Default for EarConfig {
    fn default() -> Self {
        EarConfig {
            settle: Duration::from_millis(250),
            no_mark_quiet: Duration::from_secs(3),
            voiced_rms: VOICED_RMS,
            max_heard: Duration::from_secs(30),
        }
    }
}

/// The bot's audio of a line that ended, to transcribe.
#[derive(Debug, PartialEq)]
pub struct HeardLine {
    /// 8 kHz µ-law of the last line, from its first voiced frame to its last.
    pub mulaw: Vec<u8>,
    /// When it was cut; speech after this is a new line.
    pub at: Instant,
}

#[derive(Debug)]
pub struct Ear {
    config: EarConfig,
    /// The bot's audio since the last cut, from its first voiced frame to its last.
    heard: Vec<u8>,
    /// Quiet since the last voiced frame: part of the line if the bot speaks again.
    gap: Vec<u8>,
    /// Where in `heard` the last line (after the last mark) starts.
    line_start: usize,
    last_voiced: Option<Instant>,
    /// A mark came back at this instant, after `last_voiced`.
    marked_at: Option<Instant>,
    /// Voiced time of the line now playing (since the last mark).
    line_voiced: Duration,
}

impl Ear {
    pub fn new(config: EarConfig) -> Self {
        Ear {
            config,
            heard: Vec::new(),
            gap: Vec::new(),
            line_start: 0,
            last_voiced: None,
            marked_at: None,
            line_voiced: Duration::ZERO,
        }
    }

    /// One 20 ms frame of what the callee hears; `audible` is false when the gateway sent
    /// nothing for it.
    pub fn hear(&mut self, frame: &[u8], audible: bool, at: Instant) {
        let max = self.max_bytes();
        if audible && rms(frame) >= self.config.voiced_rms {
            if self.marked_at.is_some_and(|m| m < at) {
                // The first frame of a line after a mark.
                self.marked_at = None;
                self.line_start = self.heard.len() + self.gap.len();
            }
            self.heard.append(&mut self.gap);
            self.heard.extend_from_slice(frame);
            if self.heard.len() > max {
                let drop = self.heard.len() - max;
                self.heard.drain(..drop);
                self.line_start = self.line_start.saturating_sub(drop);
            }
            self.last_voiced = Some(at);
            self.line_voiced += Duration::from_millis(20);
        } else if audible && !self.heard.is_empty() && self.gap.len() < max {
            // Quiet the gateway sent is part of the line; a stretch where it sent nothing (the
            // next sentence not synthesized yet) is not: left out, a line sounds the same
            // however fast it was made.
            self.gap.extend_from_slice(frame);
        }
    }

    /// A mark came back (or a `clear` ended playback): whatever played before it is over.
    pub fn mark(&mut self, at: Instant) {
        self.marked_at = Some(at);
        self.line_voiced = Duration::ZERO;
    }

    /// The line that has ended by `now`, if one has: taken out, so it is returned once.
    pub fn line_ended(&mut self, now: Instant) -> Option<HeardLine> {
        let last_voiced = self.last_voiced?;
        if self.heard.is_empty() {
            return None;
        }
        let quiet = now.saturating_duration_since(last_voiced);
        let settled = self.marked_at.is_some_and(|m| now.saturating_duration_since(m) >= self.config.settle);
        if !settled && quiet < self.config.no_mark_quiet {
            return None;
        }
        self.gap.clear();
        self.marked_at = None;
        let mut mulaw = std::mem::take(&mut self.heard);
        mulaw.drain(..std::mem::take(&mut self.line_start).min(mulaw.len()));
        Some(HeardLine { mulaw, at: now })
    }

    /// Whether the bot made a voiced sound after `at`.
    pub fn voiced_since(&self, at: Instant) -> bool {
        self.last_voiced.is_some_and(|v| v > at)
    }

    /// How long the line now playing has been voiced.
    pub fn line_voiced(&self) -> Duration {
        self.line_voiced
    }

    /// The callee took a turn: what the bot said before it is answered (by that turn).
    pub fn forget(&mut self) {
        self.heard.clear();
        self.gap.clear();
        self.line_start = 0;
        self.marked_at = None;
    }

    fn max_bytes(&self) -> usize {
        // 8 µ-law bytes per millisecond.
        (self.config.max_heard.as_millis() as usize).saturating_mul(8)
    }
}

/// RMS of a 20 ms frame of speech: -40 dBFS.
pub const VOICED_RMS: f64 = 32768.0 * 0.01;

/// RMS of a µ-law frame (up to 20 ms), in i16 units.
pub fn rms(frame: &[u8]) -> f64 {
    let mut pcm = [0i16; CHUNK_SAMPLES];
    let n = g711::decode_ulaw(&frame[..frame.len().min(CHUNK_SAMPLES)], &mut pcm);
    if n == 0 {
        return 0.0;
    }
    let energy: f64 = pcm[..n].iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (energy / n as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telephony::twilio::stream::MULAW_SILENCE;

    const FRAME: Duration = Duration::from_millis(20);

    /// A loud µ-law frame (a square wave at about -12 dBFS).
    fn voice() -> Vec<u8> {
        let pcm: Vec<i16> = (0..CHUNK_SAMPLES).map(|i| if i % 16 < 8 { 8000 } else { -8000 }).collect();
        let mut out = vec![0u8; CHUNK_SAMPLES];
        g711::encode_ulaw(&pcm, &mut out);
        out
    }

    fn silence() -> Vec<u8> {
        vec![MULAW_SILENCE; CHUNK_SAMPLES]
    }

    /// An ear on a virtual clock, fed one tick at a time.
    struct Clock {
        ear: Ear,
        now: Instant,
    }

    impl Clock {
        fn new() -> Self {
            Clock { ear: Ear::new(EarConfig::default()), now: Instant::now() }
        }

        /// `n` ticks of bot speech (or silence when `voiced` is false, or nothing sent when
        /// `audible` is false); returns a line that ended during them.
        fn ticks(&mut self, n: usize, voiced: bool, audible: bool) -> Option<HeardLine> {
            let mut ended = None;
            for _ in 0..n {
                self.now += FRAME;
                let frame = if voiced { voice() } else { silence() };
                self.ear.hear(&frame, audible, self.now);
                ended = ended.or(self.ear.line_ended(self.now));
            }
            ended
        }

        fn speak(&mut self, ms: u64) -> Option<HeardLine> {
            self.ticks((ms / 20) as usize, true, true)
        }

        fn quiet(&mut self, ms: u64) -> Option<HeardLine> {
            self.ticks(ms.div_ceil(20) as usize, false, false)
        }

        /// The peer's order within a tick: the mark, then the line's last frame, same instant.
        fn last_frame_with_mark(&mut self) -> Option<HeardLine> {
            self.now += FRAME;
            self.ear.mark(self.now);
            self.ear.hear(&voice(), true, self.now);
            self.ear.line_ended(self.now)
        }
    }

    /// The mark and the last frame, then quiet until the line has settled.
    fn end_line(c: &mut Clock) -> Option<HeardLine> {
        c.last_frame_with_mark().or_else(|| c.quiet(250))
    }

    #[test]
    fn a_line_ends_once_its_mark_came_back_and_the_bot_did_not_go_on() {
        let mut c = Clock::new();
        assert_eq!(c.quiet(200), None, "silence before the bot speaks is no line");
        assert_eq!(c.speak(1000), None);
        assert_eq!(c.last_frame_with_mark(), None, "not at the mark itself");
        assert_eq!(c.quiet(230), None);
        let line = c.quiet(20).expect("ended 250 ms after its mark");
        assert_eq!(line.mulaw.len(), 51 * CHUNK_SAMPLES, "all of it, from the first voiced frame, no tail");
        assert_eq!(c.quiet(5000), None, "and it is returned once");
    }

    #[test]
    fn of_lines_said_in_a_row_the_last_is_heard() {
        let mut c = Clock::new();
        c.speak(1000);
        c.last_frame_with_mark();
        c.quiet(200);
        c.speak(600);
        let last = end_line(&mut c).expect("the second line's mark ends the run");
        assert_eq!(last.mulaw.len(), 31 * CHUNK_SAMPLES, "the second line, all of it");
        assert_eq!(c.quiet(1000), None, "the first is not returned on its own");
    }

    #[test]
    fn a_long_pause_between_sentences_of_a_line_does_not_end_it() {
        let mut c = Clock::new();
        c.speak(1200);
        // The next sentence is still being synthesized: 2.5 s of nothing sent.
        assert_eq!(c.quiet(2500), None);
        c.speak(1000);
        let line = end_line(&mut c).expect("ended by the mark");
        assert_eq!(line.mulaw.len(), (60 + 50 + 1) * CHUNK_SAMPLES, "both sentences, not the wait between them");
    }

    #[test]
    fn quiet_the_gateway_sent_inside_a_line_is_part_of_it() {
        let mut c = Clock::new();
        c.speak(400);
        c.ticks(10, false, true);
        c.speak(400);
        let line = end_line(&mut c).unwrap();
        assert_eq!(line.mulaw.len(), (20 + 10 + 21) * CHUNK_SAMPLES);
    }

    #[test]
    fn without_marks_a_line_ends_after_a_long_silence() {
        let mut c = Clock::new();
        c.speak(1000);
        assert_eq!(c.quiet(2900), None);
        let line = c.quiet(200).expect("3 s of quiet end it");
        assert_eq!(line.mulaw.len(), 50 * CHUNK_SAMPLES, "trailing silence is not part of it");
    }

    #[test]
    fn a_mark_before_any_speech_ends_nothing() {
        let mut c = Clock::new();
        c.ear.mark(c.now);
        assert_eq!(c.quiet(400), None);
        c.speak(400);
        assert_eq!(c.quiet(1000), None, "the old mark does not end the new line");
    }

    #[test]
    fn speech_after_the_cut_is_noticed_and_starts_a_new_line() {
        let mut c = Clock::new();
        c.speak(600);
        let first = end_line(&mut c).unwrap();
        assert!(!c.ear.voiced_since(first.at));
        c.quiet(100);
        c.speak(400);
        assert!(c.ear.voiced_since(first.at), "the bot went on talking");
        let second = end_line(&mut c).unwrap();
        assert_eq!(second.mulaw.len(), 21 * CHUNK_SAMPLES);
    }

    #[test]
    fn the_line_playing_counts_its_voiced_time_from_the_last_mark() {
        let mut c = Clock::new();
        c.speak(800);
        c.quiet(300);
        c.speak(400);
        assert_eq!(c.ear.line_voiced(), Duration::from_millis(1200));
        c.last_frame_with_mark();
        c.speak(200);
        assert_eq!(c.ear.line_voiced(), Duration::from_millis(220));
    }

    #[test]
    fn a_turn_of_the_callee_forgets_what_was_pending() {
        let mut c = Clock::new();
        c.speak(1000);
        c.ear.forget();
        assert_eq!(end_line(&mut c).map(|l| l.mulaw.len()), Some(CHUNK_SAMPLES));
    }

    #[test]
    fn what_is_kept_is_bounded() {
        let config = EarConfig { max_heard: Duration::from_secs(1), ..EarConfig::default() };
        let mut c = Clock { ear: Ear::new(config), now: Instant::now() };
        c.speak(3000);
        let line = end_line(&mut c).unwrap();
        assert_eq!(line.mulaw.len(), 8000);
    }
}
