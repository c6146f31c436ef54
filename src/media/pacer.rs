//! Outbound playout pacing: TTS produces audio faster than real time, the transport must send
//! exactly one 20 ms frame per 20 ms. The pacer queues frames and releases one per slot.
//!
//! Slot `n` is at `start + n * 20 ms`, computed from the start each time rather than by adding
//! 20 ms to the previous release, so late polls never accumulate into drift. A caller that
//! falls behind gets at most `max_catch_up` extra frames back to back; slots further behind
//! are skipped (counted in `skipped_slots`), so the far end never sees a burst it would drop.
//! The pacer has no clock: every call takes the `Instant` the caller read.
//!
//! Frames live in a ring allocated once in `new` (`capacity * frame_len` samples); `push`,
//! `tick` and `clear` copy or move indices only.

use std::time::{Duration, Instant};

pub const FRAME: Duration = Duration::from_millis(20);
const FRAME_NANOS: u64 = 20_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacerConfig {
    /// Samples in one 20 ms frame (160 for 8 kHz G.711).
    pub frame_len: usize,
    /// Frames the queue holds; a full queue refuses `push` (back-pressure on TTS).
    pub capacity: usize,
    /// Extra frames released back to back to a late caller before slots are skipped.
    pub max_catch_up: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// No slot is due before `until`.
    Wait { until: Instant },
    /// One frame was written to `out`. Another may already be due: call `tick` again.
    Frame,
    /// A slot passed with the queue empty after audio had been playing: the reply has been
    /// sent in full (the moment to send a Twilio `mark`). Reported once per run of audio.
    Drained,
    /// A slot passed with nothing to play.
    Idle,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("pacer queue is full ({capacity} frames)")]
    Full { capacity: usize },
    #[error("frame has {got} samples, the pacer takes {expected}")]
    FrameLength { expected: usize, got: usize },
}

pub struct Pacer<T> {
    config: PacerConfig,
    start: Instant,
    ring: Vec<T>,
    head: usize,
    len: usize,
    next_slot: u64,
    playing: bool,
    skipped_slots: u64,
}

impl<T: Copy + Default> Pacer<T> {
    /// `start` is slot 0: the first frame pushed can go out at once.
    pub fn new(config: PacerConfig, start: Instant) -> Self {
        assert!(config.frame_len > 0 && config.capacity > 0, "pacer needs a frame length and a capacity");
        Pacer {
            ring: vec![T::default(); config.frame_len * config.capacity],
            config,
            start,
            head: 0,
            len: 0,
            next_slot: 0,
            playing: false,
            skipped_slots: 0,
        }
    }

    pub fn push(&mut self, frame: &[T]) -> Result<(), PushError> {
        let n = self.config.frame_len;
        if frame.len() != n {
            return Err(PushError::FrameLength { expected: n, got: frame.len() });
        }
        if self.len == self.config.capacity {
            return Err(PushError::Full { capacity: self.config.capacity });
        }
        let slot = (self.head + self.len) % self.config.capacity;
        self.ring[slot * n..(slot + 1) * n].copy_from_slice(frame);
        self.len += 1;
        Ok(())
    }

    /// Releases at most one frame into `out` (which must hold `frame_len` samples).
    ///
    /// # Panics
    /// If `out` is shorter than `frame_len`.
    pub fn tick(&mut self, now: Instant, out: &mut [T]) -> Tick {
        let due = match self.slot_at(now) {
            Some(due) if due >= self.next_slot => due,
            _ => return Tick::Wait { until: self.slot_time(self.next_slot) },
        };
        if self.len == 0 {
            self.next_slot = due + 1;
            return if std::mem::replace(&mut self.playing, false) { Tick::Drained } else { Tick::Idle };
        }
        if !self.playing {
            // Audio after a pause starts on the current slot: the idle slots were not late.
            self.playing = true;
            self.next_slot = due;
        } else if due - self.next_slot > self.config.max_catch_up {
            let resume = due - self.config.max_catch_up;
            self.skipped_slots += resume - self.next_slot;
            self.next_slot = resume;
        }
        let n = self.config.frame_len;
        out[..n].copy_from_slice(&self.ring[self.head * n..(self.head + 1) * n]);
        self.head = (self.head + 1) % self.config.capacity;
        self.len -= 1;
        self.next_slot += 1;
        Tick::Frame
    }

    /// Drops everything queued at once (barge-in) and returns how many frames were dropped.
    /// The frame already released is the last one heard. No `Drained` follows: the caller
    /// sends the transport's own `clear`, which discards pending marks too.
    pub fn clear(&mut self) -> usize {
        let dropped = self.len;
        self.head = 0;
        self.len = 0;
        self.playing = false;
        dropped
    }

    /// Holds what is queued: the next frame released starts on its own slot, as after a
    /// pause, instead of counting the held slots as late.
    pub fn pause(&mut self) {
        self.playing = false;
    }

    pub fn queued(&self) -> usize {
        self.len
    }

    pub fn queued_duration(&self) -> Duration {
        FRAME * self.len as u32
    }

    /// Slots given up because the caller polled too late to catch up within the bound.
    pub fn skipped_slots(&self) -> u64 {
        self.skipped_slots
    }

    fn slot_at(&self, now: Instant) -> Option<u64> {
        let elapsed = now.checked_duration_since(self.start)?;
        Some((elapsed.as_nanos() / FRAME_NANOS as u128) as u64)
    }

    fn slot_time(&self, slot: u64) -> Instant {
        self.start + Duration::from_nanos(slot.saturating_mul(FRAME_NANOS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEN: usize = 160;

    fn config(capacity: usize) -> PacerConfig {
        PacerConfig { frame_len: LEN, capacity, max_catch_up: 2 }
    }

    fn frame(id: usize) -> [i16; LEN] {
        [id as i16; LEN]
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Deterministic jitter without a dependency: xorshift64.
    struct Jitter(u64);

    impl Jitter {
        fn below(&mut self, max: Duration) -> Duration {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            Duration::from_nanos(self.0 % max.as_nanos() as u64)
        }
    }

    #[test]
    fn thousand_ticks_with_jittered_polling_never_drift() {
        let start = Instant::now();
        let mut pacer = Pacer::new(config(8), start);
        let mut jitter = Jitter(0x9E37_79B9_7F4A_7C15);
        let mut out = [0i16; LEN];
        let (mut pushed, mut released) = (0, 0);
        let mut now = start;
        while released < 1000 {
            while pushed < 1000 && pacer.push(&frame(pushed)).is_ok() {
                pushed += 1;
            }
            match pacer.tick(now, &mut out) {
                Tick::Frame => {
                    assert_eq!(out[0] as usize, released, "frames leave in order");
                    // Released within its own slot: never early, never a slot late.
                    let slot = start + FRAME * released as u32;
                    assert!(now >= slot && now < slot + FRAME, "frame {released} at {:?}", now - start);
                    released += 1;
                }
                // The caller wakes up to 15 ms after the deadline, and sometimes too early.
                Tick::Wait { until } => {
                    assert_eq!(until, start + FRAME * released as u32, "deadline is anchored to the start");
                    now = until + jitter.below(ms(15)) - ms(1);
                }
                other => panic!("queue was never empty, got {other:?}"),
            }
        }
        assert_eq!(pacer.skipped_slots(), 0);
        assert!(now < start + FRAME * 1000, "1000 frames took exactly 1000 slots");
    }

    #[test]
    fn late_caller_catches_up_within_the_bound() {
        let start = Instant::now();
        let mut pacer = Pacer::new(config(64), start);
        for i in 0..40 {
            pacer.push(&frame(i)).unwrap();
        }
        let mut out = [0i16; LEN];
        assert_eq!(pacer.tick(start, &mut out), Tick::Frame);
        // The caller stalls for 200 ms: ten slots are due at once.
        let late = start + ms(200);
        let mut burst = 0;
        while pacer.tick(late, &mut out) == Tick::Frame {
            burst += 1;
        }
        assert_eq!(burst, 3, "max_catch_up (2) extra frames, no more");
        assert_eq!(pacer.skipped_slots(), 7);
        assert_eq!(out[0], 3, "skipped slots drop no audio");
        // Back on schedule: one frame per slot.
        assert_eq!(pacer.tick(start + ms(220), &mut out), Tick::Frame);
        assert_eq!(pacer.tick(start + ms(220), &mut out), Tick::Wait { until: start + ms(240) });
    }

    #[test]
    fn clear_drops_queued_audio_within_one_frame() {
        let start = Instant::now();
        let mut pacer = Pacer::new(config(64), start);
        for i in 0..50 {
            pacer.push(&frame(i)).unwrap();
        }
        let mut out = [0i16; LEN];
        assert_eq!(pacer.tick(start, &mut out), Tick::Frame);
        assert_eq!(pacer.clear(), 49);
        assert_eq!((pacer.queued(), pacer.queued_duration()), (0, Duration::ZERO));
        // The very next slot is silent, and no mark is due after a barge-in.
        assert_eq!(pacer.tick(start + ms(20), &mut out), Tick::Idle);
        pacer.push(&frame(99)).unwrap();
        assert_eq!(pacer.tick(start + ms(45), &mut out), Tick::Frame);
        assert_eq!(out[0], 99);
    }

    #[test]
    fn capacity_is_respected_and_the_ring_wraps_in_order() {
        let start = Instant::now();
        let mut pacer = Pacer::new(config(4), start);
        for i in 0..4 {
            pacer.push(&frame(i)).unwrap();
        }
        assert_eq!(pacer.push(&frame(4)), Err(PushError::Full { capacity: 4 }));
        assert_eq!(pacer.push(&[0; 10]), Err(PushError::FrameLength { expected: LEN, got: 10 }));
        assert_eq!(pacer.queued_duration(), ms(80));
        let mut out = [0i16; LEN];
        let mut got = Vec::new();
        for slot in 0..8u32 {
            assert_eq!(pacer.tick(start + FRAME * slot, &mut out), Tick::Frame);
            got.push(out[0]);
            pacer.push(&frame(4 + slot as usize)).unwrap();
            assert_eq!(pacer.queued(), 4);
        }
        assert_eq!(got, (0..8).collect::<Vec<i16>>());
    }

    #[test]
    fn drained_is_reported_once_and_audio_resumes_without_a_burst() {
        let start = Instant::now();
        let mut pacer = Pacer::new(config(8), start);
        let mut out = [0i16; LEN];
        assert_eq!(pacer.tick(start, &mut out), Tick::Idle, "nothing queued yet");
        pacer.push(&frame(1)).unwrap();
        pacer.push(&frame(2)).unwrap();
        assert_eq!(pacer.tick(start + ms(20), &mut out), Tick::Frame);
        assert_eq!(pacer.tick(start + ms(40), &mut out), Tick::Frame);
        assert_eq!(pacer.tick(start + ms(60), &mut out), Tick::Drained);
        assert_eq!(pacer.tick(start + ms(80), &mut out), Tick::Idle);
        // A second of silence with no polling, then the next reply: it starts on the current
        // slot and the idle slots are neither replayed as a burst nor counted as skipped.
        for i in 0..5 {
            pacer.push(&frame(10 + i)).unwrap();
        }
        let resume = start + ms(1085);
        assert_eq!(pacer.tick(resume, &mut out), Tick::Frame);
        assert_eq!(pacer.tick(resume, &mut out), Tick::Wait { until: start + ms(1100) });
        assert_eq!(pacer.skipped_slots(), 0);
    }

    #[test]
    fn polls_before_the_start_wait_for_slot_zero() {
        let start = Instant::now() + ms(100);
        let mut pacer = Pacer::new(config(2), start);
        pacer.push(&frame(0)).unwrap();
        let mut out = [0i16; LEN];
        assert_eq!(pacer.tick(start - ms(5), &mut out), Tick::Wait { until: start });
        assert_eq!(pacer.tick(start, &mut out), Tick::Frame);
    }
}
