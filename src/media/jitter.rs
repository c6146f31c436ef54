//! The jitter buffer for RTP audio (SIP calls): packets go in as they arrive, one packet comes
//! out per playout tick, in sequence order. It holds `depth` packets before it starts (and
//! again after running dry), puts reordered packets back in place, drops late and duplicate
//! ones, reports a gap as `Lost` for the codec to conceal, and starts over when the stream
//! restarts (a new SSRC, or a sequence jump confirmed by a second packet, as after a
//! re-INVITE). Sequence numbers are extended to 64 bits as RFC 3550 appendix A.1 does, and
//! interarrival jitter is estimated as in appendix A.8.
//!
//! Sans-IO: the caller passes arrival times and drives the playout clock. Written here
//! because it is small and the playout policy is ours; ezk's `rtp_session/inbound/queue.rs`
//! is the model.

use std::collections::BTreeMap;
use std::time::Instant;

/// RFC 3550 A.1: a forward jump of more than this many packets is a restart, not loss.
const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 A.1: packets this far behind the highest seen are reordered (or duplicates).
const MAX_MISORDER: u16 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Packets held before playout starts: 3 packets of 20 ms = 60 ms of delay.
    pub depth: usize,
    /// Most packets held; past it the oldest are played out of turn (dropped) to keep the
    /// delay bounded when a sender bursts.
    pub capacity: usize,
    /// RTP clock rate of the payload (8000 for G.711, 48000 for Opus).
    pub clock_rate: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig { depth: 3, capacity: 50, clock_rate: 8000 }
    }
}

/// One RTP packet's fields the buffer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpAudio {
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: Vec<u8>,
}

/// What one playout tick yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// The next packet in order.
    Packet(RtpAudio),
    /// The packet due now never came: conceal it.
    Lost,
    /// Nothing to play: not started, or run dry (the sender paused or stopped).
    Idle,
}

/// What the buffer saw, for the call's metrics and RTCP receiver reports.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JitterStats {
    pub received: u64,
    pub played: u64,
    /// Gaps reported as `Lost`.
    pub lost: u64,
    /// Packets that came after their turn had passed.
    pub late: u64,
    pub duplicates: u64,
    /// Packets dropped because the buffer was full.
    pub overflowed: u64,
    /// Restarts: a new SSRC or a confirmed sequence jump.
    pub resets: u64,
    /// Interarrival jitter (RFC 3550 A.8), in RTP timestamp units.
    pub jitter: f64,
}

impl JitterStats {
    /// The jitter in milliseconds at `clock_rate`.
    pub fn jitter_ms(&self, clock_rate: u32) -> f64 {
        self.jitter * 1000.0 / f64::from(clock_rate.max(1))
    }
}

/// RFC 3550 A.1 sequence state for one source.
#[derive(Debug, Clone, Copy)]
struct Sequence {
    max_seq: u16,
    /// Count of sequence number wraps, shifted left 16.
    cycles: u64,
    /// The sequence that would confirm a large jump (the one after the jumping packet).
    bad_seq: Option<u16>,
}

/// Where a packet's sequence number puts it.
enum Placed {
    At(u64),
    /// A jump too big to be loss; drop the packet unless the next one confirms it.
    Suspect,
    /// Confirmed jump: the source restarted its numbering.
    Restarted,
}

impl Sequence {
    fn new(seq: u16) -> Sequence {
        // Start one cycle up so a packet reordered before the first still has a place.
        Sequence { max_seq: seq, cycles: 1 << 16, bad_seq: None }
    }

    fn place(&mut self, seq: u16) -> Placed {
        let ahead = seq.wrapping_sub(self.max_seq);
        if ahead < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += 1 << 16;
            }
            self.max_seq = seq;
            self.bad_seq = None;
            return Placed::At(self.cycles + u64::from(seq));
        }
        if ahead <= u16::MAX - MAX_MISORDER {
            if self.bad_seq == Some(seq) {
                return Placed::Restarted;
            }
            self.bad_seq = Some(seq.wrapping_add(1));
            return Placed::Suspect;
        }
        // Behind the highest seen, within the misorder window.
        let behind = u64::from(self.max_seq.wrapping_sub(seq));
        Placed::At(self.cycles + u64::from(self.max_seq) - behind)
    }
}

pub struct JitterBuffer {
    config: JitterConfig,
    ssrc: Option<u32>,
    sequence: Option<Sequence>,
    held: BTreeMap<u64, RtpAudio>,
    /// The extended sequence number due next; `None` until playout starts.
    next: Option<u64>,
    /// RFC 3550 A.8: the previous packet's relative transit time, in timestamp units.
    transit: Option<f64>,
    epoch: Option<Instant>,
    stats: JitterStats,
}

impl JitterBuffer {
    pub fn new(config: JitterConfig) -> JitterBuffer {
        JitterBuffer {
            config: JitterConfig {
                depth: config.depth.max(1),
                capacity: config.capacity.max(config.depth.max(1)),
                ..config
            },
            ssrc: None,
            sequence: None,
            held: BTreeMap::new(),
            next: None,
            transit: None,
            epoch: None,
            stats: JitterStats::default(),
        }
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Packets held now.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    fn restart(&mut self, packet: &RtpAudio) {
        if self.ssrc.is_some() {
            self.stats.resets += 1;
        }
        self.ssrc = Some(packet.ssrc);
        self.sequence = Some(Sequence::new(packet.sequence));
        self.held.clear();
        self.next = None;
        self.transit = None;
    }

    /// Takes a packet that arrived at `arrival`.
    pub fn push(&mut self, packet: RtpAudio, arrival: Instant) {
        if self.ssrc != Some(packet.ssrc) {
            self.restart(&packet);
        }
        let sequence = self.sequence.get_or_insert_with(|| Sequence::new(packet.sequence));
        let extended = match sequence.place(packet.sequence) {
            Placed::At(extended) => extended,
            Placed::Suspect => return,
            Placed::Restarted => {
                self.restart(&packet);
                match self.sequence.as_mut().map(|s| s.place(packet.sequence)) {
                    Some(Placed::At(extended)) => extended,
                    _ => return,
                }
            }
        };
        self.stats.received += 1;
        self.update_jitter(&packet, arrival);
        if self.next.is_some_and(|next| extended < next) {
            self.stats.late += 1;
            return;
        }
        if self.held.contains_key(&extended) {
            self.stats.duplicates += 1;
            return;
        }
        self.held.insert(extended, packet);
        while self.held.len() > self.config.capacity {
            if let Some((seq, _)) = self.held.pop_first() {
                self.stats.overflowed += 1;
                self.next = Some(seq + 1);
            }
        }
    }

    fn update_jitter(&mut self, packet: &RtpAudio, arrival: Instant) {
        let epoch = *self.epoch.get_or_insert(arrival);
        let arrived = arrival.saturating_duration_since(epoch).as_secs_f64() * f64::from(self.config.clock_rate);
        let transit = arrived - f64::from(packet.timestamp);
        if let Some(previous) = self.transit {
            let d = (transit - previous).abs();
            // A timestamp jump of seconds is a new talk spurt or a re-INVITE, not jitter.
            if d < f64::from(self.config.clock_rate) {
                self.stats.jitter += (d - self.stats.jitter) / 16.0;
            }
        }
        self.transit = Some(transit);
    }

    /// One playout tick: the packet due now, a loss to conceal, or nothing.
    pub fn pop(&mut self) -> Playout {
        let next = match self.next {
            Some(next) => next,
            None => {
                if self.held.len() < self.config.depth {
                    return Playout::Idle;
                }
                *self.held.keys().next().expect("held is not empty")
            }
        };
        if self.held.is_empty() {
            // Run dry: wait for `depth` packets again rather than report every tick of a
            // pause as loss.
            self.next = None;
            return Playout::Idle;
        }
        self.next = Some(next + 1);
        match self.held.remove(&next) {
            Some(packet) => {
                self.stats.played += 1;
                Playout::Packet(packet)
            }
            None => {
                self.stats.lost += 1;
                Playout::Lost
            }
        }
    }
}

/// Fills lost 20 ms frames of decoded PCM (G.711 has no concealment of its own): the last good
/// frame again, quieter each time, then silence, as ITU-T G.711 Appendix I does in spirit.
#[derive(Debug, Clone)]
pub struct PcmConcealer {
    last: Vec<i16>,
    /// Lost frames in a row so far.
    run: u32,
}

/// Gain of each repeated frame, by its place in a run of losses; silence after.
const FADE: [f32; 3] = [0.8, 0.5, 0.2];

impl PcmConcealer {
    pub fn new(frame_len: usize) -> PcmConcealer {
        PcmConcealer { last: vec![0; frame_len], run: 0 }
    }

    /// Remembers a frame that arrived.
    pub fn good(&mut self, frame: &[i16]) {
        self.last.clear();
        self.last.extend_from_slice(frame);
        self.run = 0;
    }

    /// Writes the stand-in for a lost frame into `out`.
    pub fn conceal(&mut self, out: &mut [i16]) {
        let gain = FADE.get(self.run as usize).copied().unwrap_or(0.0);
        self.run += 1;
        for (o, s) in out.iter_mut().zip(self.last.iter().chain(std::iter::repeat(&0))) {
            *o = (f32::from(*s) * gain) as i16;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn packet(sequence: u16, ssrc: u32) -> RtpAudio {
        RtpAudio { sequence, timestamp: u32::from(sequence).wrapping_mul(160), ssrc, payload: vec![sequence as u8] }
    }

    fn played(buffer: &mut JitterBuffer, ticks: usize) -> Vec<Option<u16>> {
        (0..ticks)
            .filter_map(|_| match buffer.pop() {
                Playout::Packet(p) => Some(Some(p.sequence)),
                Playout::Lost => Some(None),
                Playout::Idle => None,
            })
            .collect()
    }

    #[test]
    fn waits_for_its_depth_then_plays_in_order_what_came_out_of_order() {
        let t0 = Instant::now();
        let mut buffer = JitterBuffer::new(JitterConfig::default());
        buffer.push(packet(11, 1), t0);
        buffer.push(packet(10, 1), t0);
        assert_eq!(buffer.pop(), Playout::Idle, "two packets are below the depth of three");
        buffer.push(packet(13, 1), t0);
        buffer.push(packet(12, 1), t0);
        assert_eq!(played(&mut buffer, 6), [Some(10), Some(11), Some(12), Some(13)]);
        assert_eq!(buffer.stats().played, 4);
    }

    #[test]
    fn a_gap_is_lost_and_a_packet_after_its_turn_is_dropped_as_late() {
        let t0 = Instant::now();
        let mut buffer = JitterBuffer::new(JitterConfig::default());
        for seq in [1, 2, 4, 5] {
            buffer.push(packet(seq, 7), t0);
        }
        assert_eq!(played(&mut buffer, 3), [Some(1), Some(2), None]);
        buffer.push(packet(3, 7), t0);
        buffer.push(packet(4, 7), t0);
        assert_eq!(played(&mut buffer, 2), [Some(4), Some(5)]);
        let stats = buffer.stats();
        assert_eq!((stats.lost, stats.late, stats.duplicates), (1, 1, 1));
    }

    #[test]
    fn sequence_numbers_wrap_without_a_reset() {
        let t0 = Instant::now();
        let mut buffer = JitterBuffer::new(JitterConfig { depth: 2, ..JitterConfig::default() });
        let sequence = [65533, 65535, 65534, 0, 1, 2];
        for seq in sequence {
            buffer.push(packet(seq, 3), t0);
        }
        assert_eq!(played(&mut buffer, 8), [Some(65533), Some(65534), Some(65535), Some(0), Some(1), Some(2)]);
        assert_eq!(buffer.stats().resets, 0);
    }

    #[test]
    fn a_new_ssrc_or_a_confirmed_jump_starts_over() {
        let t0 = Instant::now();
        let mut buffer = JitterBuffer::new(JitterConfig { depth: 1, ..JitterConfig::default() });
        buffer.push(packet(100, 1), t0);
        assert_eq!(played(&mut buffer, 1), [Some(100)]);
        // A re-INVITE: same source, numbering restarted far away. One packet alone is
        // dropped as a stray; the next in line confirms the restart.
        buffer.push(packet(30_000, 1), t0);
        assert_eq!(buffer.len(), 0);
        buffer.push(packet(30_001, 1), t0);
        assert_eq!(played(&mut buffer, 2), [Some(30_001)]);
        // Another source altogether.
        buffer.push(packet(5, 2), t0);
        assert_eq!(played(&mut buffer, 2), [Some(5)]);
        assert_eq!(buffer.stats().resets, 2);
    }

    #[test]
    fn running_dry_waits_for_the_depth_again_instead_of_counting_losses() {
        let t0 = Instant::now();
        let mut buffer = JitterBuffer::new(JitterConfig { depth: 2, ..JitterConfig::default() });
        buffer.push(packet(1, 9), t0);
        buffer.push(packet(2, 9), t0);
        assert_eq!(played(&mut buffer, 10), [Some(1), Some(2)]);
        buffer.push(packet(3, 9), t0);
        assert_eq!(buffer.pop(), Playout::Idle);
        buffer.push(packet(4, 9), t0);
        assert_eq!(played(&mut buffer, 3), [Some(3), Some(4)]);
        assert_eq!(buffer.stats().lost, 0);
    }

    #[test]
    fn a_burst_past_capacity_drops_the_oldest() {
        let t0 = Instant::now();
        let mut buffer = JitterBuffer::new(JitterConfig { depth: 2, capacity: 4, clock_rate: 8000 });
        for seq in 1..=6 {
            buffer.push(packet(seq, 1), t0);
        }
        assert_eq!(buffer.stats().overflowed, 2);
        assert_eq!(played(&mut buffer, 5), [Some(3), Some(4), Some(5), Some(6)]);
    }

    #[test]
    fn jitter_follows_rfc_3550_and_is_zero_for_a_steady_sender() {
        let t0 = Instant::now();
        let mut steady = JitterBuffer::new(JitterConfig::default());
        for seq in 0..50u16 {
            steady.push(packet(seq, 1), t0 + Duration::from_millis(20 * u64::from(seq)));
        }
        assert!(steady.stats().jitter < 0.5, "{}", steady.stats().jitter);
        // Every other packet 10 ms late: |D| alternates around 80 timestamp units.
        let mut wobbly = JitterBuffer::new(JitterConfig::default());
        for seq in 0..200u16 {
            let late = if seq % 2 == 1 { 10 } else { 0 };
            wobbly.push(packet(seq, 1), t0 + Duration::from_millis(20 * u64::from(seq) + late));
        }
        let ms = wobbly.stats().jitter_ms(8000);
        assert!((9.0..=11.0).contains(&ms), "{ms} ms");
    }

    #[test]
    fn concealment_repeats_the_last_frame_fading_to_silence() {
        let mut concealer = PcmConcealer::new(4);
        concealer.good(&[1000, -1000, 500, 0]);
        let mut out = [0i16; 4];
        concealer.conceal(&mut out);
        assert_eq!(out, [800, -800, 400, 0]);
        concealer.conceal(&mut out);
        assert_eq!(out, [500, -500, 250, 0]);
        concealer.conceal(&mut out);
        concealer.conceal(&mut out);
        assert_eq!(out, [0; 4]);
        concealer.good(&[10, 10, 10, 10]);
        concealer.conceal(&mut out);
        assert_eq!(out, [8; 4]);
    }
}
