//! RFC 4733 telephone events (DTMF over RTP), both ways. Sans-IO.
//!
//! A key press is one event: every packet of it carries the same RTP timestamp (the event's
//! start) and a growing duration; the last three carry the E (end) bit. The marker bit only
//! flags the first packet and may be lost, so the end is read from the E bit, and the
//! repeated end packets are reported once. An event whose end packets were all lost is
//! reported when the next event starts, or by `flush`.

/// The payload: event (8 bits), E (1), R (1), volume (6), duration (16).
pub const PAYLOAD_LEN: usize = 4;
const END_BIT: u8 = 0x80;

/// One telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// 0-9, 10 = `*`, 11 = `#`, 12-15 = A-D, 16 = flash.
    pub event: u8,
    pub end: bool,
    /// Power in -dBm0 (0-63).
    pub volume: u8,
    /// In RTP timestamp units since the event's start.
    pub duration: u16,
}

impl TelephoneEvent {
    pub fn parse(payload: &[u8]) -> Option<TelephoneEvent> {
        let bytes: &[u8; PAYLOAD_LEN] = payload.get(..PAYLOAD_LEN)?.try_into().ok()?;
        Some(TelephoneEvent {
            event: bytes[0],
            end: bytes[1] & END_BIT != 0,
            volume: bytes[1] & 0x3f,
            duration: u16::from_be_bytes([bytes[2], bytes[3]]),
        })
    }

    pub fn to_bytes(self) -> [u8; PAYLOAD_LEN] {
        let [d0, d1] = self.duration.to_be_bytes();
        [self.event, if self.end { END_BIT } else { 0 } | (self.volume & 0x3f), d0, d1]
    }
}

/// The key of an event code; `None` for flash and codes that are not keys.
pub fn digit_of(event: u8) -> Option<char> {
    Some(match event {
        0..=9 => char::from(b'0' + event),
        10 => '*',
        11 => '#',
        12..=15 => char::from(b'A' + event - 12),
        _ => return None,
    })
}

/// The event code of a key (`0-9`, `*`, `#`, `A-D`).
pub fn event_of(digit: char) -> Option<u8> {
    Some(match digit {
        '0'..='9' => digit as u8 - b'0',
        '*' => 10,
        '#' => 11,
        'A'..='D' => digit as u8 - b'A' + 12,
        'a'..='d' => digit as u8 - b'a' + 12,
        _ => return None,
    })
}

/// Turns received telephone-event packets into key presses, each reported once.
#[derive(Debug, Default)]
pub struct DtmfReceiver {
    /// The event in progress: its RTP timestamp and code, and whether it was reported.
    current: Option<(u32, u8, bool)>,
}

impl DtmfReceiver {
    /// One packet of payload type telephone-event, with its RTP timestamp. Returns the keys
    /// it completes (at most two: one whose end was lost, and this one).
    pub fn push(&mut self, timestamp: u32, payload: &[u8]) -> Vec<char> {
        let Some(event) = TelephoneEvent::parse(payload) else { return Vec::new() };
        let mut keys = Vec::new();
        match self.current {
            Some((ts, _, _)) if ts == timestamp => {}
            _ => {
                // A new event: the previous one ended without an end packet we saw.
                keys.extend(self.flush());
                self.current = Some((timestamp, event.event, false));
            }
        }
        if event.end
            && let Some((_, code, reported)) = self.current.as_mut()
            && !*reported
        {
            *reported = true;
            keys.extend(digit_of(*code));
        }
        keys
    }

    /// The key in progress if its end was never seen (call when the stream goes quiet).
    pub fn flush(&mut self) -> Option<char> {
        match self.current.take() {
            Some((_, code, false)) => digit_of(code),
            _ => None,
        }
    }
}

/// The packets of one key press to send: (marker, timestamp offset from the first, payload).
/// Sent every `packet_ms`; the first has the marker bit, the last three the E bit (repeated
/// for loss, as RFC 4733 section 2.5.1.4 recommends), all with the event's start timestamp.
pub fn key_press_packets(digit: char, duration_ms: u32, packet_ms: u32, clock_rate: u32) -> Vec<(bool, [u8; 4])> {
    let Some(event) = event_of(digit) else { return Vec::new() };
    let units_per_ms = clock_rate / 1000;
    let steps = (duration_ms / packet_ms.max(1)).max(1);
    let mut packets = Vec::with_capacity(steps as usize + 3);
    for step in 1..=steps {
        let duration = (step * packet_ms * units_per_ms).min(u32::from(u16::MAX)) as u16;
        let payload = TelephoneEvent { event, end: false, volume: 10, duration }.to_bytes();
        packets.push((step == 1, payload));
    }
    let duration = (steps * packet_ms * units_per_ms).min(u32::from(u16::MAX)) as u16;
    for _ in 0..3 {
        packets.push((false, TelephoneEvent { event, end: true, volume: 10, duration }.to_bytes()));
    }
    packets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent { event, end, volume: 10, duration }.to_bytes()
    }

    #[test]
    fn payloads_round_trip_and_short_ones_are_refused() {
        let event = TelephoneEvent { event: 11, end: true, volume: 63, duration: 1600 };
        assert_eq!(TelephoneEvent::parse(&event.to_bytes()), Some(event));
        assert_eq!(TelephoneEvent::parse(&[1, 2, 3]), None);
        assert_eq!(event.to_bytes(), [11, 0x80 | 63, 0x06, 0x40]);
    }

    #[test]
    fn a_key_is_reported_once_at_its_first_end_packet() {
        let mut receiver = DtmfReceiver::default();
        assert!(receiver.push(1000, &payload(5, false, 160)).is_empty());
        assert!(receiver.push(1000, &payload(5, false, 320)).is_empty());
        assert_eq!(receiver.push(1000, &payload(5, true, 480)), ['5']);
        // The two repeated end packets, then a retransmitted one out of order.
        assert!(receiver.push(1000, &payload(5, true, 480)).is_empty());
        assert!(receiver.push(1000, &payload(5, true, 480)).is_empty());
        assert!(receiver.push(1000, &payload(5, false, 320)).is_empty());
        assert_eq!(receiver.flush(), None);
    }

    #[test]
    fn the_same_key_twice_is_two_presses_and_a_lost_end_is_reported_by_the_next_event() {
        let mut receiver = DtmfReceiver::default();
        assert_eq!(receiver.push(0, &payload(1, true, 800)), ['1']);
        assert_eq!(receiver.push(2000, &payload(1, true, 800)), ['1']);
        // '#' whose end packets were all lost, then '0'.
        assert!(receiver.push(4000, &payload(11, false, 160)).is_empty());
        assert_eq!(receiver.push(6000, &payload(0, true, 800)), ['#', '0']);
        assert!(receiver.push(8000, &payload(9, false, 160)).is_empty());
        assert_eq!(receiver.flush(), Some('9'));
        // Flash is an event but no key.
        assert!(receiver.push(9000, &payload(16, true, 800)).is_empty());
    }

    #[test]
    fn a_key_press_is_sent_as_rfc_4733_describes() {
        let packets = key_press_packets('#', 100, 20, 8000);
        assert_eq!(packets.len(), 5 + 3);
        assert!(packets[0].0 && packets[1..].iter().all(|(marker, _)| !marker), "marker on the first only");
        let events: Vec<TelephoneEvent> = packets.iter().map(|(_, p)| TelephoneEvent::parse(p).unwrap()).collect();
        assert!(events.iter().all(|e| e.event == 11));
        assert_eq!(events[0].duration, 160);
        assert_eq!(events[4].duration, 800);
        assert!(events[5..].iter().all(|e| e.end && e.duration == 800));
        assert!(events[..5].iter().all(|e| !e.end));
        assert!(key_press_packets('x', 100, 20, 8000).is_empty());
        // What we send, a receiver reads as one key.
        let mut receiver = DtmfReceiver::default();
        let keys: Vec<char> = packets.iter().flat_map(|(_, p)| receiver.push(42, p)).collect();
        assert_eq!(keys, ['#']);
    }
}
