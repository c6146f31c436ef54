//! RTP for a SIP call's media, sans-IO: incoming datagrams sorted into audio, telephone
//! events and comfort noise by the negotiated payload types; outgoing packets stamped with our
//! SSRC, sequence and timestamp; and symmetric RTP (latching), so a caller behind NAT gets its
//! audio back at the address its packets come from rather than the one its SDP names.
//! Packets are read and built by `rtp-rs` (RFC 3550 header, CSRCs, extension, padding).

use std::net::SocketAddr;

use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};

use crate::media::jitter::RtpAudio;

/// The payload types negotiated for the call (the offerer's numbers are kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadTypes {
    pub audio: u8,
    /// telephone-event (RFC 4733), if negotiated.
    pub events: Option<u8>,
    /// Comfort noise (RFC 3389): tolerated, ignored.
    pub comfort_noise: Option<u8>,
}

/// What an incoming datagram is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Audio(RtpAudio),
    /// A telephone-event payload with its RTP timestamp (`sip::dtmf::DtmfReceiver`). Events
    /// share the audio's sequence numbers, so the jitter buffer must see them too (as packets
    /// without audio) or it would count them as lost audio.
    Event {
        sequence: u16,
        timestamp: u32,
        ssrc: u32,
        payload: Vec<u8>,
    },
    /// Comfort noise: its sequence number, for the same reason.
    ComfortNoise {
        sequence: u16,
        timestamp: u32,
        ssrc: u32,
    },
    /// A payload type the call did not negotiate.
    Unknown(u8),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("not an RTP packet: {0}")]
    Malformed(String),
    /// RTCP shares the port when the peer multiplexes (RFC 5761): payload types 72-76 with
    /// the marker bit are its packet types 200-204.
    #[error("an RTCP packet on the RTP port")]
    Rtcp,
}

/// Sorts one datagram.
pub fn classify(datagram: &[u8], types: PayloadTypes) -> Result<Incoming, RtpError> {
    let packet = RtpReader::new(datagram).map_err(|e| RtpError::Malformed(format!("{e:?}")))?;
    let pt = packet.payload_type();
    if (72..=76).contains(&pt) && packet.mark() {
        return Err(RtpError::Rtcp);
    }
    Ok(if pt == types.audio {
        Incoming::Audio(RtpAudio {
            sequence: u16::from(packet.sequence_number()),
            timestamp: packet.timestamp(),
            ssrc: packet.ssrc(),
            payload: packet.payload().to_vec(),
        })
    } else if Some(pt) == types.events {
        Incoming::Event {
            sequence: u16::from(packet.sequence_number()),
            timestamp: packet.timestamp(),
            ssrc: packet.ssrc(),
            payload: packet.payload().to_vec(),
        }
    } else if Some(pt) == types.comfort_noise {
        Incoming::ComfortNoise {
            sequence: u16::from(packet.sequence_number()),
            timestamp: packet.timestamp(),
            ssrc: packet.ssrc(),
        }
    } else {
        Incoming::Unknown(pt)
    })
}

/// Stamps our outgoing packets: one SSRC, a sequence number per packet, a timestamp that
/// advances with the samples sent.
#[derive(Debug, Clone)]
pub struct RtpSender {
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    /// The next audio packet starts a talk spurt (the first, and the first after silence).
    spurt: bool,
}

impl RtpSender {
    /// `ssrc`, first sequence and timestamp should be random (RFC 3550 5.1).
    pub fn new(ssrc: u32, sequence: u16, timestamp: u32) -> RtpSender {
        RtpSender { ssrc, sequence, timestamp, spurt: true }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    fn builder<'a>(&self, payload_type: u8, marked: bool, timestamp: u32, payload: &'a [u8]) -> RtpPacketBuilder<'a> {
        RtpPacketBuilder::new()
            .payload_type(payload_type & 0x7f)
            .ssrc(self.ssrc)
            .sequence(Seq::from(self.sequence))
            .timestamp(timestamp)
            .marked(marked)
            .payload(payload)
    }

    fn build(&mut self, payload_type: u8, marked: bool, timestamp: u32, payload: &[u8]) -> Vec<u8> {
        let packet = self
            .builder(payload_type, marked, timestamp, payload)
            .build()
            .expect("a 7-bit payload type and an in-memory payload always build");
        self.sequence = self.sequence.wrapping_add(1);
        packet
    }

    /// An audio packet of `samples` samples; the timestamp then moves on by as many.
    pub fn audio(&mut self, payload_type: u8, payload: &[u8], samples: u32) -> Vec<u8> {
        let mut packet = vec![0; 12 + payload.len()];
        let len = self.audio_into(payload_type, payload, samples, &mut packet).expect("sized for the packet");
        packet.truncate(len);
        packet
    }

    /// As `audio`, written into `out` (the media path's reused buffer: no allocation per
    /// frame); `None`, and nothing sent or counted, when `out` is too small.
    pub fn audio_into(&mut self, payload_type: u8, payload: &[u8], samples: u32, out: &mut [u8]) -> Option<usize> {
        let len = self.builder(payload_type, self.spurt, self.timestamp, payload).build_into(out).ok()?;
        self.spurt = false;
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(samples);
        Some(len)
    }

    /// Time passes without audio (we send nothing during silence): the timestamp advances,
    /// and the next audio packet starts a new talk spurt.
    pub fn skip(&mut self, samples: u32) {
        self.timestamp = self.timestamp.wrapping_add(samples);
        self.spurt = true;
    }

    /// The packets of a key press (`sip::dtmf::key_press_packets`), all stamped with the
    /// event's start; the audio clock moves on by the press's length.
    pub fn key_press(&mut self, payload_type: u8, packets: &[(bool, [u8; 4])], samples: u32) -> Vec<Vec<u8>> {
        let start = self.timestamp;
        let out =
            packets.iter().map(|(marker, payload)| self.build(payload_type & 0x7f, *marker, start, payload)).collect();
        self.timestamp = self.timestamp.wrapping_add(samples);
        out
    }
}

/// Symmetric RTP: where to send, and which sources to hear. Until the first packet arrives we
/// send to the address the SDP gave; then to wherever that packet came from (a NAT's
/// public mapping), and packets from anywhere else are dropped, so a stranger cannot inject
/// audio or steal the stream. A re-INVITE with new media starts over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latch {
    signalled: SocketAddr,
    latched: Option<SocketAddr>,
    /// Packets dropped for coming from another address after latching.
    pub strangers: u64,
}

impl Latch {
    pub fn new(signalled: SocketAddr) -> Latch {
        Latch { signalled, latched: None, strangers: 0 }
    }

    /// Whether a packet from `from` belongs to the call (latching on the first).
    pub fn accept(&mut self, from: SocketAddr) -> bool {
        match self.latched {
            None => {
                self.latched = Some(from);
                true
            }
            Some(latched) if latched == from => true,
            Some(_) => {
                self.strangers += 1;
                false
            }
        }
    }

    pub fn target(&self) -> SocketAddr {
        self.latched.unwrap_or(self.signalled)
    }

    /// New media from a re-INVITE: send to `signalled` until packets show where it really is.
    pub fn renegotiated(&mut self, signalled: SocketAddr) {
        *self = Latch { strangers: self.strangers, ..Latch::new(signalled) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TYPES: PayloadTypes = PayloadTypes { audio: 0, events: Some(101), comfort_noise: Some(13) };

    #[test]
    fn what_we_send_is_read_back_as_audio_with_our_stamps() {
        let mut sender = RtpSender::new(0xdead_beef, 65535, 1000);
        let first = sender.audio(0, &[0xff; 160], 160);
        let second = sender.audio(0, &[0x7f; 160], 160);
        let (Incoming::Audio(a), Incoming::Audio(b)) =
            (classify(&first, TYPES).unwrap(), classify(&second, TYPES).unwrap())
        else {
            panic!("audio expected");
        };
        assert_eq!((a.ssrc, a.sequence, a.timestamp, a.payload.len()), (0xdead_beef, 65535, 1000, 160));
        assert_eq!((b.sequence, b.timestamp), (0, 1160), "the sequence wraps, the clock follows the samples");
        assert!(RtpReader::new(&first).unwrap().mark(), "the first packet starts a talk spurt");
        assert!(!RtpReader::new(&second).unwrap().mark());
        sender.skip(800);
        let after_pause = sender.audio(0, &[0; 160], 160);
        let reader = RtpReader::new(&after_pause).unwrap();
        assert!(reader.mark());
        assert_eq!(reader.timestamp(), 1160 + 160 + 800);
    }

    #[test]
    fn events_comfort_noise_rtcp_and_garbage_are_told_apart() {
        let mut sender = RtpSender::new(1, 0, 0);
        let packets = sender.key_press(101, &crate::telephony::sip::dtmf::key_press_packets('7', 60, 20, 8000), 480);
        assert_eq!(packets.len(), 6);
        for packet in &packets {
            let Incoming::Event { timestamp, payload, ssrc, .. } = classify(packet, TYPES).unwrap() else {
                panic!("event")
            };
            assert_eq!((timestamp, payload[0], ssrc), (0, 7, 1));
        }
        assert!(matches!(
            classify(&sender.audio(13, &[40], 160), TYPES).unwrap(),
            Incoming::ComfortNoise { sequence: 6, .. }
        ));
        assert_eq!(classify(&sender.audio(8, &[0; 160], 160), TYPES).unwrap(), Incoming::Unknown(8));
        // An RTCP receiver report (PT 201) multiplexed onto the port.
        let rtcp = [0x81, 201, 0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(classify(&rtcp, TYPES), Err(RtpError::Rtcp));
        assert!(matches!(classify(&[0x80, 0, 1], TYPES), Err(RtpError::Malformed(_))));
        assert!(matches!(classify(b"INVITE sip:a@b SIP/2.0\r\n", TYPES), Err(RtpError::Malformed(_))));
    }

    #[test]
    fn the_latch_follows_the_first_source_and_refuses_strangers() {
        let signalled: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        let nat: SocketAddr = "203.0.113.9:61000".parse().unwrap();
        let stranger: SocketAddr = "198.51.100.1:5000".parse().unwrap();
        let mut latch = Latch::new(signalled);
        assert_eq!(latch.target(), signalled);
        assert!(latch.accept(nat));
        assert_eq!(latch.target(), nat);
        assert!(!latch.accept(stranger));
        assert!(latch.accept(nat));
        assert_eq!((latch.target(), latch.strangers), (nat, 1));
        let moved: SocketAddr = "10.0.0.6:4002".parse().unwrap();
        latch.renegotiated(moved);
        assert_eq!(latch.target(), moved);
        assert!(latch.accept(stranger), "after a re-INVITE the first source latches again");
    }
}
