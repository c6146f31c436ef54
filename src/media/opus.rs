//! Opus (RFC 6716) for one mono stream, over the system libopus through `audiopus`.
//!
//! `OpusEncoder` takes one frame of PCM16 (20 ms in the media path; any of Opus' 2.5 to 60 ms
//! frame sizes is accepted) and writes one packet. `OpusDecoder` decodes any legal packet (up to
//! 120 ms, mono or stereo, any bandwidth) to mono PCM16 at its own rate, conceals a lost packet
//! (`conceal_into`, libopus' PLC) and recovers one from the in-band FEC copy the next packet
//! carries (`decode_fec_into`).
//!
//! Every call writes into a buffer the caller sized up front (or, for `encode`, one allocated in
//! `new()`), so a frame costs no allocation on our side; libopus itself works on the stack.
//!
//! Everything that comes from the network is checked before libopus sees it: an empty packet,
//! a packet whose table of contents describes more than 120 ms or an impossible frame layout,
//! an output buffer too small for the packet, or a frame length Opus has no mode for is an
//! `OpusError`, never a panic or an out-of-bounds write.
//!
//! Delay: the encoder looks ahead `lookahead()` samples (6.5 ms for VoIP: 2.5 ms of CELT overlap
//! plus 4 ms of SILK look-ahead), so a decoded stream is the input shifted by that many samples
//! (measured: exactly at 8 and 16 kHz, 3 samples less at 48 kHz).

use audiopus::coder::{Decoder, Encoder, GenericCtl};
use audiopus::packet::Packet;
use audiopus::{Application, Bitrate, Channels, ErrorCode, MutSignals, SampleRate, Signal};

/// Rates libopus encodes and decodes at. Calls use 8 kHz (narrowband), 16 kHz (wideband) and
/// 48 kHz (WebRTC); 12 and 24 kHz are accepted because libopus is.
pub const SUPPORTED_RATES: [u32; 5] = [8000, 12000, 16000, 24000, 48000];

/// Encoder output buffer: the size the libopus documentation recommends, enough for any
/// frame up to 60 ms at the 510 kb/s maximum bitrate (3 825 bytes).
pub const MAX_PACKET_BYTES: usize = 4000;

/// Frame durations an encoder accepts, in 2.5 ms units: 2.5, 5, 10, 20, 40, 60 ms.
const ENCODE_FRAME_UNITS: [usize; 6] = [1, 2, 4, 8, 16, 24];

/// The longest packet Opus defines is 120 ms (48 units of 2.5 ms).
const MAX_DECODE_UNITS: usize = 48;

/// Samples in 2.5 ms, Opus' smallest frame, at `sample_rate`.
const fn unit_len(sample_rate: u32) -> usize {
    sample_rate as usize / 400
}

/// Samples in one 20 ms frame at `sample_rate`.
pub const fn frame_len_20ms(sample_rate: u32) -> usize {
    sample_rate as usize / 50
}

/// Samples in the longest packet Opus defines (120 ms) at `sample_rate`: a decode buffer this
/// long accepts any legal packet.
pub const fn max_frame_len(sample_rate: u32) -> usize {
    unit_len(sample_rate) * MAX_DECODE_UNITS
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpusError {
    #[error("unsupported Opus sample rate {0} Hz (supported: 8000, 12000, 16000, 24000, 48000)")]
    UnsupportedRate(u32),
    #[error("Opus bitrate {0} b/s outside 6000..=510000")]
    Bitrate(u32),
    #[error("Opus complexity {0} outside 0..=10")]
    Complexity(u8),
    #[error("expected packet loss {0}% outside 0..=100")]
    LossPercent(u8),
    #[error("{len} samples is not an Opus frame length at {sample_rate} Hz")]
    FrameLength { len: usize, sample_rate: u32 },
    /// An empty payload is not a packet; a lost packet is concealed with `conceal_into`.
    #[error("empty Opus packet")]
    EmptyPacket,
    #[error("malformed Opus packet")]
    InvalidPacket,
    #[error("output buffer holds {capacity} samples, the packet decodes to {needed}")]
    OutputTooSmall { needed: usize, capacity: usize },
    #[error("packet buffer of {0} bytes is too small for the encoded frame")]
    PacketBufferTooSmall(usize),
    /// libopus refused a call the checks above let through; an error rather than a panic so a
    /// call's media task can end cleanly.
    #[error("libopus: {0}")]
    Codec(audiopus::Error),
}

impl From<audiopus::Error> for OpusError {
    fn from(e: audiopus::Error) -> Self {
        match e {
            audiopus::Error::EmptyPacket => OpusError::EmptyPacket,
            audiopus::Error::Opus(ErrorCode::InvalidPacket) => OpusError::InvalidPacket,
            other => OpusError::Codec(other),
        }
    }
}

fn opus_rate(sample_rate: u32) -> Result<SampleRate, OpusError> {
    Ok(match sample_rate {
        8000 => SampleRate::Hz8000,
        12000 => SampleRate::Hz12000,
        16000 => SampleRate::Hz16000,
        24000 => SampleRate::Hz24000,
        48000 => SampleRate::Hz48000,
        other => return Err(OpusError::UnsupportedRate(other)),
    })
}

/// Encoder settings. `voip(rate)` gives the ones the media path uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusEncoderConfig {
    pub sample_rate: u32,
    /// Target bits per second (VBR), 6 000 to 510 000.
    pub bitrate: u32,
    /// 0 (cheapest) to 10 (best quality per bit).
    pub complexity: u8,
    /// Each packet also carries a coarse copy of the previous frame, which the receiver uses
    /// when that frame's own packet is lost. Only emitted when `expected_loss_percent > 0`.
    pub inband_fec: bool,
    /// Loss the encoder should prepare for (0 to 100): more FEC bits, less prediction.
    pub expected_loss_percent: u8,
}

impl OpusEncoderConfig {
    /// VoIP application, voice signal, FEC for 10% loss, complexity 5 (a server encodes
    /// many calls; the bench in docs/BENCHMARKS.md has the cost), and a bitrate that gives the
    /// rate's full audio band: 16 kb/s narrowband, 24 kb/s wideband, 32 kb/s above.
    pub fn voip(sample_rate: u32) -> Self {
        let bitrate = match sample_rate {
            0..=8000 => 16_000,
            8001..=16000 => 24_000,
            _ => 32_000,
        };
        OpusEncoderConfig { sample_rate, bitrate, complexity: 5, inband_fec: true, expected_loss_percent: 10 }
    }
}

/// One mono Opus encoder (VoIP application).
#[derive(Debug)]
pub struct OpusEncoder {
    encoder: Encoder,
    sample_rate: u32,
    lookahead: usize,
    packet: Box<[u8]>,
}

impl OpusEncoder {
    pub fn new(config: OpusEncoderConfig) -> Result<Self, OpusError> {
        let rate = opus_rate(config.sample_rate)?;
        if !(6_000..=510_000).contains(&config.bitrate) {
            return Err(OpusError::Bitrate(config.bitrate));
        }
        if config.complexity > 10 {
            return Err(OpusError::Complexity(config.complexity));
        }
        if config.expected_loss_percent > 100 {
            return Err(OpusError::LossPercent(config.expected_loss_percent));
        }
        let mut encoder = Encoder::new(rate, Channels::Mono, Application::Voip)?;
        // The range check above keeps the bitrate well inside i32.
        encoder.set_bitrate(Bitrate::BitsPerSecond(config.bitrate as i32))?;
        encoder.set_complexity(config.complexity)?;
        encoder.set_signal(Signal::Voice)?;
        encoder.set_inband_fec(config.inband_fec)?;
        encoder.set_packet_loss_perc(config.expected_loss_percent)?;
        let lookahead = encoder.lookahead()? as usize;
        Ok(OpusEncoder {
            encoder,
            sample_rate: config.sample_rate,
            lookahead,
            packet: vec![0; MAX_PACKET_BYTES].into_boxed_slice(),
        })
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Samples in the 20 ms frame the media path feeds.
    pub fn frame_len(&self) -> usize {
        frame_len_20ms(self.sample_rate)
    }

    /// Samples by which the decoded stream lags the input.
    pub fn lookahead(&self) -> usize {
        self.lookahead
    }

    /// Encodes one frame into the encoder's own buffer and returns the packet, valid until the
    /// next call.
    pub fn encode(&mut self, pcm: &[i16]) -> Result<&[u8], OpusError> {
        let len = encode_frame(&self.encoder, self.sample_rate, pcm, &mut self.packet)?;
        Ok(&self.packet[..len])
    }

    /// Encodes one frame into `packet` and returns the packet's length in bytes.
    /// `MAX_PACKET_BYTES` always suffices; a smaller buffer also caps the frame's size.
    pub fn encode_into(&mut self, pcm: &[i16], packet: &mut [u8]) -> Result<usize, OpusError> {
        encode_frame(&self.encoder, self.sample_rate, pcm, packet)
    }

    /// Forgets the stream so far, as for a new call.
    pub fn reset(&mut self) -> Result<(), OpusError> {
        Ok(self.encoder.reset_state()?)
    }
}

fn encode_frame(encoder: &Encoder, sample_rate: u32, pcm: &[i16], packet: &mut [u8]) -> Result<usize, OpusError> {
    let unit = unit_len(sample_rate);
    if pcm.is_empty() || !pcm.len().is_multiple_of(unit) || !ENCODE_FRAME_UNITS.contains(&(pcm.len() / unit)) {
        return Err(OpusError::FrameLength { len: pcm.len(), sample_rate });
    }
    if packet.is_empty() {
        return Err(OpusError::PacketBufferTooSmall(0));
    }
    // audiopus passes the length to libopus as an i32; more than MAX_PACKET_BYTES is never used.
    let capacity = packet.len().min(MAX_PACKET_BYTES);
    match encoder.encode(pcm, &mut packet[..capacity]) {
        Ok(len) => Ok(len),
        Err(audiopus::Error::Opus(ErrorCode::BufferTooSmall)) => Err(OpusError::PacketBufferTooSmall(capacity)),
        Err(e) => Err(e.into()),
    }
}

/// One Opus decoder producing mono PCM16 at its sample rate.
#[derive(Debug)]
pub struct OpusDecoder {
    decoder: Decoder,
    sample_rate: u32,
}

impl OpusDecoder {
    pub fn new(sample_rate: u32) -> Result<Self, OpusError> {
        let decoder = Decoder::new(opus_rate(sample_rate)?, Channels::Mono)?;
        Ok(OpusDecoder { decoder, sample_rate })
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Samples in the longest legal packet (120 ms): an output buffer this long takes any packet.
    pub fn max_frame_len(&self) -> usize {
        max_frame_len(self.sample_rate)
    }

    /// Samples `packet` decodes to at this decoder's rate, read from its table of contents.
    pub fn packet_samples(&self, packet: &[u8]) -> Result<usize, OpusError> {
        let packet = Packet::try_from(packet)?;
        Ok(self.decoder.nb_samples(packet)?)
    }

    /// Decodes one packet into `out` and returns how many samples it wrote.
    pub fn decode_into(&mut self, packet: &[u8], out: &mut [i16]) -> Result<usize, OpusError> {
        let needed = self.packet_samples(packet)?;
        if needed == 0 || needed > self.max_frame_len() {
            return Err(OpusError::InvalidPacket);
        }
        if needed > out.len() {
            return Err(OpusError::OutputTooSmall { needed, capacity: out.len() });
        }
        self.decode_raw(Some(packet), &mut out[..needed], false)
    }

    /// Conceals one lost packet: writes `out.len()` samples (a multiple of 2.5 ms, at most
    /// 120 ms; normally the lost frame's 20 ms) extrapolated from the audio decoded so far.
    pub fn conceal_into(&mut self, out: &mut [i16]) -> Result<usize, OpusError> {
        self.check_loss_len(out.len())?;
        self.decode_raw(None, out, false)
    }

    /// Recovers a lost packet from the FEC copy inside `next_packet`, the packet that followed
    /// it; `out.len()` is the lost frame's length, as for `conceal_into`. When `next_packet`
    /// carries no FEC copy, libopus conceals instead. Decode `next_packet` itself afterwards.
    pub fn decode_fec_into(&mut self, next_packet: &[u8], out: &mut [i16]) -> Result<usize, OpusError> {
        self.check_loss_len(out.len())?;
        // Validates the packet's structure before libopus reads its FEC layer.
        self.packet_samples(next_packet)?;
        self.decode_raw(Some(next_packet), out, true)
    }

    /// Forgets the stream so far, as for a new call.
    pub fn reset(&mut self) -> Result<(), OpusError> {
        Ok(self.decoder.reset_state()?)
    }

    fn check_loss_len(&self, len: usize) -> Result<(), OpusError> {
        if len == 0 || len > self.max_frame_len() || !len.is_multiple_of(unit_len(self.sample_rate)) {
            return Err(OpusError::FrameLength { len, sample_rate: self.sample_rate });
        }
        Ok(())
    }

    /// `out` is exactly the frame size libopus is asked for (it is at most 120 ms here, so
    /// the i32 conversions inside audiopus cannot overflow).
    fn decode_raw(&mut self, packet: Option<&[u8]>, out: &mut [i16], fec: bool) -> Result<usize, OpusError> {
        let packet = packet.map(Packet::try_from).transpose()?;
        let signals = MutSignals::try_from(&mut *out)?;
        let written = self.decoder.decode(packet, signals, fec)?;
        // libopus never writes more than it was given room for; guard the slice math anyway.
        if written > out.len() {
            return Err(OpusError::Codec(audiopus::Error::Opus(ErrorCode::InternalError)));
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    use crate::media::decode::decode_file;
    use crate::media::pcm::f32_to_i16;
    use crate::media::resample::StreamResampler;
    use crate::speech::ModelPaths;

    fn tone(freq: f64, rate: u32, amp: f64, len: usize) -> Vec<i16> {
        (0..len).map(|n| (amp * (2.0 * PI * freq * n as f64 / rate as f64).sin()).round() as i16).collect()
    }

    /// Encodes `pcm` 20 ms at a time (dropping a partial last frame) and decodes every packet.
    fn round_trip(config: OpusEncoderConfig, pcm: &[i16]) -> (OpusEncoder, Vec<i16>, Vec<usize>) {
        let mut encoder = OpusEncoder::new(config).unwrap();
        let mut decoder = OpusDecoder::new(config.sample_rate).unwrap();
        let mut out = vec![0i16; decoder.max_frame_len()];
        let mut decoded = Vec::with_capacity(pcm.len());
        let mut sizes = Vec::new();
        for frame in pcm.chunks_exact(encoder.frame_len()) {
            let packet = encoder.encode(frame).unwrap();
            sizes.push(packet.len());
            let n = decoder.decode_into(packet, &mut out).unwrap();
            assert_eq!(n, frame.len());
            decoded.extend_from_slice(&out[..n]);
        }
        (encoder, decoded, sizes)
    }

    /// Normalised cross-correlation of `x` and `y` delayed by `lag` samples, over the
    /// overlapping part starting at `skip`.
    fn correlation(x: &[i16], y: &[i16], lag: usize, skip: usize) -> f64 {
        let n = x.len().min(y.len().saturating_sub(lag));
        let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
        for i in skip..n {
            let (a, b) = (x[i] as f64, y[i + lag] as f64);
            xy += a * b;
            xx += a * a;
            yy += b * b;
        }
        xy / (xx * yy).sqrt()
    }

    fn best_lag(x: &[i16], y: &[i16], lags: std::ops::RangeInclusive<usize>, skip: usize) -> (usize, f64) {
        lags.map(|lag| (lag, correlation(x, y, lag, skip))).max_by(|a, b| a.1.total_cmp(&b.1)).unwrap()
    }

    /// SNR in dB of `y` delayed by `lag` against the reference `x`, after `skip` samples.
    fn snr_db(x: &[i16], y: &[i16], lag: usize, skip: usize) -> f64 {
        let n = x.len().min(y.len().saturating_sub(lag));
        let (mut signal, mut noise) = (0.0, 0.0);
        for i in skip..n {
            let (a, b) = (x[i] as f64, y[i + lag] as f64);
            signal += a * a;
            noise += (a - b) * (a - b);
        }
        10.0 * (signal / noise).log10()
    }

    /// Frequency from upward zero crossings (the tone's period count over the window).
    fn zero_crossing_freq(x: &[i16], rate: u32) -> f64 {
        let ups: Vec<usize> = (1..x.len()).filter(|&i| x[i - 1] < 0 && x[i] >= 0).collect();
        let (first, last) = (ups[0], ups[ups.len() - 1]);
        (ups.len() - 1) as f64 * rate as f64 / (last - first) as f64
    }

    /// jfk.wav (16 kHz mono) as PCM16.
    fn jfk_16k() -> Vec<i16> {
        let models = match std::env::var_os("CALLCENTER_MODELS_DIR") {
            Some(dir) if !dir.is_empty() => ModelPaths::new(dir),
            _ => ModelPaths::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models")),
        };
        let path = models.fixture("jfk.wav");
        let audio = decode_file(&path).unwrap_or_else(|e| panic!("{}: {e} (run models/fetch.sh)", path.display()));
        assert_eq!((audio.sample_rate, audio.channels), (16000, 1));
        let mut pcm = vec![0i16; audio.samples.len()];
        f32_to_i16(&audio.samples, &mut pcm);
        pcm
    }

    /// `pcm` at `to` Hz through the media path's own resampler (its delay does not matter: the
    /// codec's input and output are both compared against its output).
    fn resampled(pcm: &[i16], from: u32, to: u32) -> Vec<i16> {
        if from == to {
            return pcm.to_vec();
        }
        let mut resampler = StreamResampler::new(from, to).unwrap();
        let mut frame = vec![0i16; resampler.output_len()];
        let mut out = Vec::new();
        for chunk in pcm.chunks_exact(resampler.input_len()) {
            resampler.process_i16(chunk, &mut frame).unwrap();
            out.extend_from_slice(&frame);
        }
        out
    }

    #[test]
    fn tone_round_trip_keeps_frequency_and_waveform() {
        for rate in [8000, 16000, 48000] {
            let input = tone(1000.0, rate, 8000.0, rate as usize); // 1 s
            let (encoder, output, _) = round_trip(OpusEncoderConfig::voip(rate), &input);
            let skip = frame_len_20ms(rate) * 5; // encoder start-up
            // A tone's correlation peaks once per period: search within half a period of the
            // look-ahead (the speech test searches the whole frame).
            let half_period = rate as usize / 2000;
            let lookahead = encoder.lookahead();
            let (lag, corr) = best_lag(&input, &output, lookahead - half_period + 1..=lookahead + half_period, skip);
            let snr = snr_db(&input, &output, lag, skip);
            let freq = zero_crossing_freq(&output[skip..], rate);
            eprintln!(
                "1 kHz at {rate} Hz: lag {lag} (lookahead {lookahead}), correlation {corr:.4}, SNR {snr:.1} dB, {freq:.2} Hz"
            );
            assert!(lag.abs_diff(lookahead) <= 3, "rate {rate}: lag {lag}");
            // Measured: correlation 0.993 to 0.999, SNR 18.4 to 28.2 dB.
            assert!(corr > 0.99, "rate {rate}: correlation {corr}");
            assert!(snr > 15.0, "rate {rate}: SNR {snr:.1} dB");
            assert!((freq - 1000.0).abs() < 0.5, "rate {rate}: {freq} Hz");
        }
    }

    #[test]
    fn speech_round_trip_at_8_16_and_48_khz() {
        let speech16 = jfk_16k();
        for rate in [8000, 16000, 48000] {
            let input = resampled(&speech16, 16000, rate);
            let (encoder, output, sizes) = round_trip(OpusEncoderConfig::voip(rate), &input);
            let skip = frame_len_20ms(rate) * 5;
            let (lag, corr) = best_lag(&input, &output, 0..=frame_len_20ms(rate), skip);
            let snr = snr_db(&input, &output, lag, skip);
            let mean_bytes = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
            eprintln!(
                "rate {rate}: lag {lag} (lookahead {}), correlation {corr:.3}, SNR {snr:.1} dB, {mean_bytes:.0} B/frame",
                encoder.lookahead()
            );
            assert!(lag.abs_diff(encoder.lookahead()) <= 3, "rate {rate}: lag {lag}");
            // Measured: correlation 0.968 to 0.977, SNR 12.0 to 13.4 dB (Opus is not a waveform
            // coder at these rates, so SNR is modest while speech stays intelligible).
            assert!(corr > 0.95, "rate {rate}: correlation {corr}");
            assert!(snr > 10.0, "rate {rate}: SNR {snr:.1} dB");
            // VBR around the configured bitrate: 20 ms at `bitrate` b/s is bitrate / 400 bytes.
            let target = OpusEncoderConfig::voip(rate).bitrate as f64 / 400.0;
            assert!(mean_bytes > 0.8 * target && mean_bytes < 1.2 * target, "rate {rate}: {mean_bytes} B/frame");
        }
    }
    #[test]
    fn every_opus_frame_size_round_trips_and_others_are_refused() {
        let rate = 16000;
        let mut encoder = OpusEncoder::new(OpusEncoderConfig::voip(rate)).unwrap();
        let mut decoder = OpusDecoder::new(rate).unwrap();
        let mut out = vec![0i16; decoder.max_frame_len()];
        // 2.5, 5, 10, 20, 40, 60 ms
        for len in [40, 80, 160, 320, 640, 960] {
            let packet = encoder.encode(&tone(440.0, rate, 5000.0, len)).unwrap().to_vec();
            assert_eq!(decoder.packet_samples(&packet), Ok(len));
            assert_eq!(decoder.decode_into(&packet, &mut out), Ok(len));
        }
        for len in [0, 1, 39, 41, 319, 321, 1280, 1920] {
            let err = encoder.encode(&vec![0; len]).unwrap_err();
            assert_eq!(err, OpusError::FrameLength { len, sample_rate: rate });
        }
        assert_eq!(encoder.encode_into(&[0; 320], &mut []), Err(OpusError::PacketBufferTooSmall(0)));
    }

    #[test]
    fn configuration_is_validated() {
        let ok = OpusEncoderConfig::voip(8000);
        for (config, err) in [
            (OpusEncoderConfig { sample_rate: 44100, ..ok }, OpusError::UnsupportedRate(44100)),
            (OpusEncoderConfig { bitrate: 5999, ..ok }, OpusError::Bitrate(5999)),
            (OpusEncoderConfig { bitrate: 510_001, ..ok }, OpusError::Bitrate(510_001)),
            (OpusEncoderConfig { complexity: 11, ..ok }, OpusError::Complexity(11)),
            (OpusEncoderConfig { expected_loss_percent: 101, ..ok }, OpusError::LossPercent(101)),
        ] {
            assert_eq!(OpusEncoder::new(config).unwrap_err(), err);
        }
        assert_eq!(OpusDecoder::new(22050).unwrap_err(), OpusError::UnsupportedRate(22050));
    }

    #[test]
    fn malformed_packets_and_short_buffers_are_errors() {
        let mut decoder = OpusDecoder::new(8000).unwrap();
        let mut out = vec![0i16; decoder.max_frame_len()];
        assert_eq!(decoder.decode_into(&[], &mut out), Err(OpusError::EmptyPacket));
        // TOC code 3 (arbitrary frame count) with no frame-count byte.
        assert_eq!(decoder.decode_into(&[0x03], &mut out), Err(OpusError::InvalidPacket));
        // Code 3, 20 ms SILK frames, 63 of them: 1.26 s, over Opus' 120 ms limit.
        assert_eq!(decoder.decode_into(&[0x0B, 63, 0, 0, 0], &mut out), Err(OpusError::InvalidPacket));
        // Code 1 (two equal frames) with an odd payload length cannot be split in two.
        assert_eq!(decoder.decode_into(&[0x09, 1, 2, 3], &mut out), Err(OpusError::InvalidPacket));
        // A real 20 ms packet needs 160 samples of room at 8 kHz.
        let mut encoder = OpusEncoder::new(OpusEncoderConfig::voip(8000)).unwrap();
        let packet = encoder.encode(&tone(1000.0, 8000, 4000.0, 160)).unwrap().to_vec();
        assert_eq!(
            decoder.decode_into(&packet, &mut out[..100]),
            Err(OpusError::OutputTooSmall { needed: 160, capacity: 100 })
        );
        assert_eq!(decoder.decode_into(&packet, &mut out[..160]), Ok(160));
        // FEC from a malformed next packet is refused; from a real one it fills the lost frame.
        assert_eq!(decoder.decode_fec_into(&[0x03], &mut out[..160]), Err(OpusError::InvalidPacket));
        assert_eq!(decoder.decode_fec_into(&[], &mut out[..160]), Err(OpusError::EmptyPacket));
        assert_eq!(decoder.decode_fec_into(&packet, &mut out[..160]), Ok(160));
    }

    #[test]
    fn a_stereo_fullband_packet_decodes_to_mono_at_any_rate() {
        let stereo = Encoder::new(SampleRate::Hz48000, Channels::Stereo, Application::Audio).unwrap();
        let pcm: Vec<i16> = tone(1000.0, 48000, 6000.0, 960).iter().flat_map(|&s| [s, s]).collect();
        let mut packet = [0u8; MAX_PACKET_BYTES];
        let len = stereo.encode(&pcm, &mut packet).unwrap();
        for rate in [8000, 16000, 48000] {
            let mut decoder = OpusDecoder::new(rate).unwrap();
            let mut out = vec![0i16; decoder.max_frame_len()];
            assert_eq!(decoder.decode_into(&packet[..len], &mut out), Ok(frame_len_20ms(rate)));
        }
    }

    #[test]
    fn concealment_fills_a_lost_frame_with_the_continuing_tone() {
        let rate = 16000;
        let frame = frame_len_20ms(rate);
        let input = tone(1000.0, rate, 8000.0, frame * 30);
        let mut encoder = OpusEncoder::new(OpusEncoderConfig::voip(rate)).unwrap();
        let mut decoder = OpusDecoder::new(rate).unwrap();
        let mut out = vec![0i16; decoder.max_frame_len()];
        for chunk in input.chunks_exact(frame).take(25) {
            let packet = encoder.encode(chunk).unwrap();
            decoder.decode_into(packet, &mut out).unwrap();
        }
        // Frame 25 is lost. What it should have been: the input, delayed by the look-ahead.
        let start = 25 * frame - encoder.lookahead();
        let expected = &input[start..start + frame];
        let mut concealed = vec![0i16; frame];
        assert_eq!(decoder.conceal_into(&mut concealed), Ok(frame));
        let corr = correlation(expected, &concealed, 0, 0);
        let rms = (concealed.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / frame as f64).sqrt();
        eprintln!("PLC of a 1 kHz tone: correlation {corr:.3}, rms {rms:.0} (input rms {:.0})", 8000.0 / 2f64.sqrt());
        // Measured: correlation 0.69, rms 3028 of 5657 (PLC fades the extrapolated pitch).
        assert!(corr > 0.5, "correlation {corr}");
        assert!(rms > 0.3 * 5657.0 && rms < 1.2 * 5657.0, "rms {rms}");
        // Other lengths: any multiple of 2.5 ms up to 120 ms; nothing else.
        assert_eq!(decoder.conceal_into(&mut out[..40]), Ok(40));
        assert_eq!(decoder.conceal_into(&mut out[..1920]), Ok(1920));
        for len in [0, 39, 321] {
            assert_eq!(decoder.conceal_into(&mut out[..len]), Err(OpusError::FrameLength { len, sample_rate: rate }));
        }
        let mut too_long = vec![0i16; 1960];
        assert_eq!(decoder.conceal_into(&mut too_long), Err(OpusError::FrameLength { len: 1960, sample_rate: rate }));
    }

    /// Squared error against `reference` of the stream decoded with every `period`-th packet
    /// lost and replaced by FEC from the next packet (`fec`) or by concealment.
    fn loss_error(packets: &[Vec<u8>], reference: &[i16], rate: u32, period: usize, fec: bool) -> f64 {
        let frame = frame_len_20ms(rate);
        let mut decoder = OpusDecoder::new(rate).unwrap();
        let mut out = vec![0i16; frame];
        let mut error = 0.0;
        for (i, packet) in packets.iter().enumerate() {
            let lost = i % period == period - 1 && i + 1 < packets.len();
            let n = match (lost, fec) {
                (false, _) => decoder.decode_into(packet, &mut out),
                (true, true) => decoder.decode_fec_into(&packets[i + 1], &mut out),
                (true, false) => decoder.conceal_into(&mut out),
            }
            .unwrap();
            assert_eq!(n, frame);
            let expected = &reference[i * frame..(i + 1) * frame];
            error += expected.iter().zip(&out).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum::<f64>();
        }
        error
    }

    #[test]
    fn fec_recovers_lost_speech_better_than_concealment() {
        let rate = 16000;
        let input = jfk_16k();
        let mut encoder = OpusEncoder::new(OpusEncoderConfig::voip(rate)).unwrap();
        let packets: Vec<Vec<u8>> =
            input.chunks_exact(frame_len_20ms(rate)).map(|f| encoder.encode(f).unwrap().to_vec()).collect();
        // The loss-free decode is the reference: what FEC and PLC should get back to.
        let reference: Vec<i16> = {
            let mut decoder = OpusDecoder::new(rate).unwrap();
            let mut out = vec![0i16; frame_len_20ms(rate)];
            let mut reference = Vec::with_capacity(input.len());
            for packet in &packets {
                let n = decoder.decode_into(packet, &mut out).unwrap();
                reference.extend_from_slice(&out[..n]);
            }
            reference
        };
        let with_fec = loss_error(&packets, &reference, rate, 10, true);
        let with_plc = loss_error(&packets, &reference, rate, 10, false);
        let energy: f64 = reference.iter().map(|&s| (s as f64).powi(2)).sum();
        eprintln!(
            "10% loss on jfk.wav: error/energy with FEC {:.4}, with PLC {:.4}",
            with_fec / energy,
            with_plc / energy
        );
        // Measured: 0.020 with FEC, 0.131 with PLC.
        assert!(with_fec < with_plc / 3.0, "FEC {with_fec} vs PLC {with_plc}");
    }
}
