//! Every decoder in `media` on input from the outside world (RTP payloads, uploaded files):
//! arbitrary bytes, arbitrary lengths, mangled real packets and truncated real files must come
//! back as `Ok` or a typed error, never a panic or an out-of-bounds write.
//!
//! The same inputs are under `fuzz/` as cargo-fuzz targets for longer, coverage-guided runs.

use std::sync::OnceLock;

use callcenter::media::decode::{DecodeError, decode_bytes};
use callcenter::media::g711::{Law, alaw_to_linear, ulaw_to_linear};
use callcenter::media::opus::{OpusDecoder, OpusEncoder, OpusEncoderConfig, OpusError, frame_len_20ms};
use callcenter::speech::ModelPaths;
use proptest::prelude::*;

const OPUS_RATES: [u32; 3] = [8000, 16000, 48000];

fn models() -> ModelPaths {
    match std::env::var_os("CALLCENTER_MODELS_DIR") {
        Some(dir) if !dir.is_empty() => ModelPaths::new(dir),
        _ => ModelPaths::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models")),
    }
}

fn jfk_wav() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let path = models().fixture("jfk.wav");
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run models/fetch.sh)", path.display()))
    })
}

/// Real Opus packets (one second of a rising tone at 16 kHz) to mangle: random bytes mostly
/// stop at the table of contents, mutated real packets reach the SILK/CELT bit readers.
fn real_opus_packets() -> &'static [Vec<u8>] {
    static PACKETS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    PACKETS.get_or_init(|| {
        let mut encoder = OpusEncoder::new(OpusEncoderConfig::voip(16000)).unwrap();
        let frame = frame_len_20ms(16000);
        (0..50)
            .map(|i| {
                let pcm: Vec<i16> = (0..frame)
                    .map(|n| {
                        let t = (i * frame + n) as f32 / 16000.0;
                        ((2.0 * std::f32::consts::PI * (300.0 + 500.0 * t) * t).sin() * 9000.0) as i16
                    })
                    .collect();
                encoder.encode(&pcm).unwrap().to_vec()
            })
            .collect()
    })
}

/// Checks a decode result's contract: `Ok(n)` never claims more samples than the buffer had.
fn check_opus(result: Result<usize, OpusError>, capacity: usize) {
    if let Ok(n) = result {
        assert!(n <= capacity, "decoded {n} samples into a buffer of {capacity}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn opus_decodes_arbitrary_packets_into_arbitrary_buffers(
        rate in prop::sample::select(OPUS_RATES.to_vec()),
        packets in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..1600), 1..8),
        out_len in 0usize..6000,
    ) {
        // One decoder across several packets, so state left by a bad packet meets the next one.
        let mut decoder = OpusDecoder::new(rate).unwrap();
        let mut out = vec![0i16; out_len];
        for packet in &packets {
            check_opus(decoder.decode_into(packet, &mut out), out_len);
            check_opus(decoder.decode_fec_into(packet, &mut out), out_len);
            check_opus(decoder.conceal_into(&mut out), out_len);
        }
        prop_assert_eq!(decoder.decode_into(&[], &mut out), Err(OpusError::EmptyPacket));
    }

    #[test]
    fn opus_decodes_mangled_real_packets(
        rate in prop::sample::select(OPUS_RATES.to_vec()),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut decoder = OpusDecoder::new(rate).unwrap();
        let mut out = vec![0i16; decoder.max_frame_len()];
        for (packet, byte, value) in edits {
            let mut packet = packet.get(real_opus_packets()).clone();
            let at = byte.index(packet.len());
            packet[at] = value;
            check_opus(decoder.decode_into(&packet, &mut out), out.len());
            // Truncated as well: a packet cut short by a broken transport.
            let truncated = &packet[..cut.index(packet.len())];
            check_opus(decoder.decode_into(truncated, &mut out), out.len());
            check_opus(decoder.decode_fec_into(truncated, &mut out[..frame_len_20ms(rate)]), frame_len_20ms(rate));
        }
    }

    #[test]
    fn g711_decodes_any_bytes_into_any_buffer(
        bytes in prop::collection::vec(any::<u8>(), 0..4000),
        out_len in 0usize..4000,
    ) {
        for (law, expand) in [(Law::Ulaw, ulaw_to_linear as fn(u8) -> i16), (Law::Alaw, alaw_to_linear)] {
            let mut out = vec![0i16; out_len];
            let n = law.decode(&bytes, &mut out);
            prop_assert_eq!(n, bytes.len().min(out_len));
            for (i, &code) in bytes.iter().take(n).enumerate() {
                prop_assert_eq!(out[i], expand(code));
            }
        }
    }

    #[test]
    fn file_decoding_survives_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..4000),
        hint in prop::sample::select(vec![None, Some("wav"), Some("mp3"), Some("ogg")]),
    ) {
        // Random bytes are never a clip worth keeping; reaching here without a panic is the test.
        let _ = decode_bytes(bytes, hint);
    }

    #[test]
    fn file_decoding_survives_arbitrary_wav_headers(
        format_tag in prop::sample::select(vec![0u16, 1, 3, 6, 7, 0xFFFE, 0xFFFF]),
        channels in prop::sample::select(vec![0u16, 1, 2, 3, 8, 255, 65535]),
        rate in prop::sample::select(vec![0u32, 1, 8000, 44100, 0x7FFF_FFFF, u32::MAX]),
        bits in prop::sample::select(vec![0u16, 1, 8, 12, 16, 24, 32, 64, 65535]),
        block_align in any::<u16>(),
        fmt_extra in prop::collection::vec(any::<u8>(), 0..40),
        data_len in prop::sample::select(vec![0u32, 1, 2, 3, 100, 4096, u32::MAX]),
        data in prop::collection::vec(any::<u8>(), 0..4096),
    ) {
        // A well-formed RIFF layout carrying nonsense values, so the fmt chunk's checks (not
        // the RIFF parser's) are what runs.
        let fmt_len = 16 + fmt_extra.len() as u32;
        let mut wav = Vec::new();
        wav.extend_from_slice(b"RIFF");
        wav.extend_from_slice(&(4 + 8 + fmt_len + 8 + data.len() as u32).to_le_bytes());
        wav.extend_from_slice(b"WAVEfmt ");
        wav.extend_from_slice(&fmt_len.to_le_bytes());
        wav.extend_from_slice(&format_tag.to_le_bytes());
        wav.extend_from_slice(&channels.to_le_bytes());
        wav.extend_from_slice(&rate.to_le_bytes());
        wav.extend_from_slice(&rate.wrapping_mul(u32::from(block_align)).to_le_bytes());
        wav.extend_from_slice(&block_align.to_le_bytes());
        wav.extend_from_slice(&bits.to_le_bytes());
        wav.extend_from_slice(&fmt_extra);
        wav.extend_from_slice(b"data");
        wav.extend_from_slice(&data_len.to_le_bytes());
        wav.extend_from_slice(&data);
        if let Ok(audio) = decode_bytes(wav, Some("wav")) {
            prop_assert!(audio.sample_rate > 0 && audio.channels > 0 && !audio.samples.is_empty());
        }
    }

    #[test]
    fn a_truncated_wav_is_an_error(cut in any::<prop::sample::Index>()) {
        // jfk.wav ends with its data chunk, so every strict prefix lacks declared samples.
        let wav = jfk_wav();
        let prefix = wav[..cut.index(wav.len())].to_vec();
        let len = prefix.len();
        prop_assert!(decode_bytes(prefix, Some("wav")).is_err(), "prefix of {} of {} bytes decoded", len, wav.len());
    }

    #[test]
    fn a_mangled_wav_decodes_or_errs(
        edits in prop::collection::vec((0usize..80, any::<u8>()), 1..6),
    ) {
        // Bytes changed inside the RIFF/fmt/LIST headers and the start of the data chunk.
        let mut wav = jfk_wav().to_vec();
        for (at, value) in edits {
            wav[at] = value;
        }
        let _ = decode_bytes(wav, Some("wav"));
    }
}

#[test]
fn the_whole_fixture_decodes_and_cut_points_are_truncation_errors() {
    let wav = jfk_wav();
    let audio = decode_bytes(wav.to_vec(), Some("wav")).unwrap();
    assert_eq!((audio.sample_rate, audio.channels, audio.samples.len()), (16000, 1, 176_000));
    // Inside the data chunk (after the 78-byte header), the error says what happened.
    for cut in [79, 1000, wav.len() / 2, wav.len() - 2, wav.len() - 1] {
        let result = decode_bytes(wav[..cut].to_vec(), Some("wav"));
        assert!(matches!(result, Err(DecodeError::Truncated(_))), "cut at {cut}: {result:?}");
    }
}

#[test]
fn a_wav_declaring_65535_channels_is_malformed_not_a_panic() {
    // symphonia-format-riff 0.6.1 computes the block align as `channels * bytes_per_sample` in
    // u16 and overflows here (a panic in builds with overflow checks); decode_bytes contains it.
    let mut wav = jfk_wav()[..200].to_vec();
    wav[22..24].copy_from_slice(&65535u16.to_le_bytes());
    let result = decode_bytes(wav, Some("wav"));
    assert!(matches!(result, Err(DecodeError::Malformed(_))), "{result:?}");
}
