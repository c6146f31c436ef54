//! A SIP call's RTP as a call's media transport: the adapter between one UDP socket and the
//! session's [`TransportEvent`]s. Inbound packets are latched (symmetric RTP), sorted
//! (`rtp::classify`), put in order by the jitter buffer and decoded one per 20 ms playout
//! tick (G.711 losses repeated and faded, Opus losses concealed by libopus); RFC 4733 events
//! become key presses. Outbound frames are encoded and sent at once: RTP has no playback
//! report, so a mark is answered when its line's last frame has been sent.
//!
//! The signalling (INVITE, BYE) is not here: `close` only stops the media; the SIP dialog
//! sends the BYE.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::dtmf::DtmfReceiver;
use super::rtp::{Incoming, Latch, PayloadTypes, RtpSender, classify};
use super::sdp::{Codec, Negotiated};
use crate::dialogue::LineId;
use crate::media::g711::Law;
use crate::media::jitter::{JitterBuffer, JitterConfig, PcmConcealer, Playout, RtpAudio};
use crate::media::opus::{OpusDecoder, OpusEncoder, OpusEncoderConfig, OpusError};
use crate::session::core::{FRAME, Frame};
use crate::session::transport::{MediaTransport, TransportClosed, TransportEvent, TransportStats};

/// Largest datagram read; RTP for 20 ms of voice is far smaller.
const MAX_DATAGRAM: usize = 1500;
/// Opus always counts RTP time at 48 kHz (RFC 7587).
const OPUS_TICKS_PER_FRAME: u32 = 960;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpMediaConfig {
    /// No RTP at all for this long ends the call as lost (the peer is gone without a BYE).
    pub rtp_timeout: Duration,
    pub jitter: JitterConfig,
}

impl Default for RtpMediaConfig {
    fn default() -> Self {
        RtpMediaConfig { rtp_timeout: Duration::from_secs(30), jitter: JitterConfig::default() }
    }
}

/// The codec state of the call: G.711 is stateless; Opus runs at 8 kHz inside libopus.
enum Voice {
    G711(Law),
    Opus { encoder: Box<OpusEncoder>, decoder: Box<OpusDecoder> },
}

impl Voice {
    fn new(codec: Codec) -> Result<Voice, OpusError> {
        Ok(match codec {
            Codec::Pcmu => Voice::G711(Law::Ulaw),
            Codec::Pcma => Voice::G711(Law::Alaw),
            Codec::Opus => Voice::Opus {
                encoder: Box::new(OpusEncoder::new(OpusEncoderConfig::voip(8000))?),
                decoder: Box::new(OpusDecoder::new(8000)?),
            },
        })
    }

    /// RTP timestamp units per 20 ms frame.
    fn ticks_per_frame(&self) -> u32 {
        match self {
            Voice::G711(_) => FRAME as u32,
            Voice::Opus { .. } => OPUS_TICKS_PER_FRAME,
        }
    }

    /// Decodes a packet (any length: 20 ms is asked for, 30 ms is common) onto `out`;
    /// `false` when it cannot be read. A packet without audio (an event's place) adds nothing.
    fn decode(&mut self, payload: &[u8], out: &mut VecDeque<i16>) -> bool {
        if payload.is_empty() {
            return true;
        }
        // 120 ms at 8 kHz, the longest Opus packet; G.711 packets past it are cut.
        let mut pcm = [0i16; 960];
        let n = match self {
            Voice::G711(law) => law.decode(&payload[..payload.len().min(pcm.len())], &mut pcm),
            Voice::Opus { decoder, .. } => match decoder.decode_into(payload, &mut pcm) {
                Ok(n) => n,
                Err(_) => return false,
            },
        };
        out.extend(&pcm[..n]);
        true
    }

    fn conceal(&mut self, concealer: &mut PcmConcealer, out: &mut Frame) {
        // Stand-in for one lost 20 ms.
        if let Voice::Opus { decoder, .. } = self
            && decoder.conceal_into(out).is_ok()
        {
            return;
        }
        concealer.conceal(out);
    }

    fn encode<'a>(&mut self, frame: &Frame, buffer: &'a mut [u8; MAX_DATAGRAM]) -> Option<&'a [u8]> {
        match self {
            Voice::G711(law) => {
                let n = law.encode(frame, &mut buffer[..FRAME]);
                Some(&buffer[..n])
            }
            Voice::Opus { encoder, .. } => encoder.encode_into(frame, buffer).ok().map(|n| &buffer[..n]),
        }
    }
}

/// One call's RTP: implements [`MediaTransport`] over a bound UDP socket.
pub struct RtpMedia {
    socket: Arc<UdpSocket>,
    types: PayloadTypes,
    sends: bool,
    voice: Voice,
    latch: Latch,
    jitter: JitterBuffer,
    dtmf: DtmfReceiver,
    sender: RtpSender,
    concealer: PcmConcealer,
    /// Decoded samples not yet played: packets need not be 20 ms long.
    samples: VecDeque<i16>,
    playout: Interval,
    last_packet: Instant,
    config: RtpMediaConfig,
    pending: VecDeque<TransportEvent>,
    receive_buffer: Box<[u8; MAX_DATAGRAM]>,
    send_buffer: Box<[u8; MAX_DATAGRAM]>,
    packet_buffer: Box<[u8; MAX_DATAGRAM]>,
    closed: bool,
    dialog: Option<DialogLink>,
}

/// The media's tie to its SIP dialog: the far end's BYE ends the media, and closing the media
/// asks the dialog to send ours.
pub struct DialogLink {
    /// Notified when the dialog ends from the far side.
    pub far_end_gone: Arc<tokio::sync::Notify>,
    /// Sent once when the call ends from our side.
    pub hang_up: Option<tokio::sync::oneshot::Sender<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum RtpMediaError {
    #[error("the codec cannot start: {0}")]
    Codec(#[from] OpusError),
}

impl RtpMedia {
    /// Media for a negotiated call on `socket` (bound to the port our SDP gave). Until the
    /// peer's first packet arrives, audio goes to the address its SDP named.
    pub fn new(
        socket: Arc<UdpSocket>,
        negotiated: &Negotiated,
        config: RtpMediaConfig,
    ) -> Result<RtpMedia, RtpMediaError> {
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 9));
        let mut playout = tokio::time::interval(Duration::from_millis(20));
        playout.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let jitter = JitterConfig { clock_rate: negotiated.codec.clock_rate(), ..config.jitter };
        Ok(RtpMedia {
            socket,
            types: PayloadTypes {
                audio: negotiated.audio_pt,
                events: negotiated.events_pt,
                comfort_noise: negotiated.comfort_noise_pt,
            },
            sends: negotiated.sends(),
            voice: Voice::new(negotiated.codec)?,
            latch: Latch::new(negotiated.remote.unwrap_or(unspecified)),
            jitter: JitterBuffer::new(jitter),
            dtmf: DtmfReceiver::default(),
            sender: RtpSender::new(rand::random(), rand::random(), rand::random()),
            concealer: PcmConcealer::new(FRAME),
            samples: VecDeque::with_capacity(4 * FRAME),
            playout,
            last_packet: Instant::now(),
            config,
            pending: VecDeque::new(),
            receive_buffer: Box::new([0; MAX_DATAGRAM]),
            send_buffer: Box::new([0; MAX_DATAGRAM]),
            packet_buffer: Box::new([0; MAX_DATAGRAM]),
            closed: false,
            dialog: None,
        })
    }

    /// Ties the media to its SIP dialog (see [`DialogLink`]).
    pub fn with_dialog(mut self, link: DialogLink) -> RtpMedia {
        self.dialog = Some(link);
        self
    }

    /// A re-INVITE changed the media: new address, direction or payload types.
    pub fn renegotiate(&mut self, negotiated: &Negotiated) {
        self.sends = negotiated.sends();
        self.types.events = negotiated.events_pt;
        self.types.comfort_noise = negotiated.comfort_noise_pt;
        if let Some(remote) = negotiated.remote {
            self.latch.renegotiated(remote);
        }
    }

    /// Packets from strangers dropped by the latch.
    pub fn strangers(&self) -> u64 {
        self.latch.strangers
    }

    fn take_datagram(&mut self, len: usize, from: SocketAddr) {
        let datagram = &self.receive_buffer[..len];
        let Ok(incoming) = classify(datagram, self.types) else { return };
        if !self.latch.accept(from) {
            return;
        }
        self.last_packet = Instant::now();
        let arrival = std::time::Instant::now();
        // Events and comfort noise hold their place in the sequence as packets without audio.
        let placeholder = |sequence, timestamp, ssrc| RtpAudio { sequence, timestamp, ssrc, payload: Vec::new() };
        match incoming {
            Incoming::Audio(packet) => self.jitter.push(packet, arrival),
            Incoming::Event { sequence, timestamp, ssrc, payload } => {
                self.jitter.push(placeholder(sequence, timestamp, ssrc), arrival);
                for key in self.dtmf.push(timestamp, &payload) {
                    self.pending.push_back(TransportEvent::Dtmf(key));
                }
            }
            Incoming::ComfortNoise { sequence, timestamp, ssrc } => {
                self.jitter.push(placeholder(sequence, timestamp, ssrc), arrival)
            }
            Incoming::Unknown(_) => {}
        }
    }

    /// One playout tick: the next frame, concealed if lost, silence while nothing comes (the
    /// call core counts on a frame every 20 ms).
    fn play_out(&mut self) {
        if self.last_packet.elapsed() > self.config.rtp_timeout {
            let secs = self.config.rtp_timeout.as_secs();
            self.pending.push_back(TransportEvent::Lost(format!("no RTP from the caller for {secs} s")));
            return;
        }
        let mut frame: Frame = [0; FRAME];
        // Whole packets are decoded until a frame's worth is waiting.
        let mut concealed = false;
        while self.samples.len() < FRAME {
            match self.jitter.pop() {
                Playout::Packet(packet) => {
                    if !self.voice.decode(&packet.payload, &mut self.samples) {
                        self.conceal_frame();
                        concealed = true;
                    }
                }
                Playout::Lost => {
                    self.conceal_frame();
                    concealed = true;
                }
                Playout::Idle => break,
            }
        }
        if self.samples.len() >= FRAME {
            for (out, sample) in frame.iter_mut().zip(self.samples.drain(..FRAME)) {
                *out = sample;
            }
            // Only real audio is a model for the next loss; a concealed frame fades on.
            if !concealed {
                self.concealer.good(&frame);
            }
        }
        self.pending.push_back(TransportEvent::Audio(frame));
    }
}

impl RtpMedia {
    /// Appends 20 ms standing in for a lost packet.
    fn conceal_frame(&mut self) {
        let mut frame: Frame = [0; FRAME];
        self.voice.conceal(&mut self.concealer, &mut frame);
        self.samples.extend(frame);
    }
}

impl MediaTransport for RtpMedia {
    async fn next_event(&mut self) -> TransportEvent {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return event;
            }
            if self.closed {
                return TransportEvent::Ended;
            }
            let gone = self.dialog.as_ref().map(|d| d.far_end_gone.clone());
            let far_end_gone = async {
                match gone {
                    Some(gone) => gone.notified().await,
                    None => std::future::pending().await,
                }
            };
            // All branches are cancel-safe: a dropped receive loses no datagram, a dropped
            // tick fires again, a stored notification waits for the next call.
            tokio::select! {
                _ = far_end_gone => {
                    self.closed = true;
                    return TransportEvent::Ended;
                }
                received = self.socket.recv_from(&mut self.receive_buffer[..]) => {
                    // An error (ICMP port unreachable and the like) is not the end: the peer
                    // may come back, and the RTP timeout decides.
                    if let Ok((len, from)) = received {
                        self.take_datagram(len, from);
                    }
                }
                _ = self.playout.tick() => self.play_out(),
            }
        }
    }

    async fn play(&mut self, frame: &Frame) -> Result<(), TransportClosed> {
        let ticks = self.voice.ticks_per_frame();
        if !self.sends {
            self.sender.skip(ticks);
            return Ok(());
        }
        let Some(payload) = self.voice.encode(frame, &mut self.send_buffer) else {
            self.sender.skip(ticks);
            return Ok(());
        };
        let Some(len) = self.sender.audio_into(self.types.audio, payload, ticks, &mut self.packet_buffer[..]) else {
            self.sender.skip(ticks);
            return Ok(());
        };
        // A send error (no route yet, ICMP) is not the end of a call over UDP.
        let _ = self.socket.send_to(&self.packet_buffer[..len], self.latch.target()).await;
        Ok(())
    }

    async fn mark(&mut self, line: LineId) -> Result<(), TransportClosed> {
        self.pending.push_back(TransportEvent::Played(line));
        Ok(())
    }

    async fn clear(&mut self) -> Result<(), TransportClosed> {
        // Nothing waits on the far side: frames leave as they are played.
        Ok(())
    }

    async fn close(&mut self) {
        self.closed = true;
        if let Some(hang_up) = self.dialog.as_mut().and_then(|d| d.hang_up.take()) {
            let _ = hang_up.send(());
        }
    }

    fn stats(&self) -> TransportStats {
        let stats = self.jitter.stats();
        TransportStats { frames_lost: stats.lost, frames_late: stats.late + stats.duplicates }
    }
}
