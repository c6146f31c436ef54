//! Per-frame cost of the pure media stages (one 20 ms frame at 8 kHz = 160 samples).
//!
//! `cargo bench --bench media -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;
use std::io::Cursor;
use std::time::Instant;

use callcenter::media::decode::{decode_file, resample_clip};
use callcenter::media::g711::{decode_ulaw, encode_ulaw};
use callcenter::media::opus::{OpusDecoder, OpusEncoder, OpusEncoderConfig, frame_len_20ms};
use callcenter::media::pacer::{FRAME, Pacer, PacerConfig, Tick};
use callcenter::media::pcm::f32_to_i16;
use callcenter::media::recorder::Recorder;
use callcenter::media::resample::StreamResampler;
use callcenter::speech::ModelPaths;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const LEN: usize = 160;

fn speechlike() -> [i16; LEN] {
    std::array::from_fn(|i| ((i as f32 * 0.3).sin() * 12000.0) as i16)
}

fn g711(c: &mut Criterion) {
    let mut coded = [0u8; LEN];
    encode_ulaw(&speechlike(), &mut coded);
    let mut pcm = [0i16; LEN];
    let mut out = [0u8; LEN];
    c.bench_function("ulaw decode+encode 20 ms frame", |b| {
        b.iter(|| {
            decode_ulaw(black_box(&coded), &mut pcm);
            encode_ulaw(&pcm, &mut out);
            black_box(&out);
        })
    });
}

fn pacer(c: &mut Criterion) {
    let start = Instant::now();
    let mut pacer = Pacer::new(PacerConfig { frame_len: LEN, capacity: 64, max_catch_up: 2 }, start);
    let frame = speechlike();
    let mut out = [0i16; LEN];
    let mut now = start;
    // One push and the tick that releases it, on synthetic time one slot apart.
    c.bench_function("pacer push+tick 20 ms frame", |b| {
        b.iter(|| {
            pacer.push(black_box(&frame)).unwrap();
            let tick = pacer.tick(now, &mut out);
            debug_assert_eq!(tick, Tick::Frame);
            now += FRAME;
            black_box(&out);
        })
    });
}

fn recorder(c: &mut Criterion) {
    let (caller, bot) = (speechlike(), speechlike());
    let mut group = c.benchmark_group("recorder");
    // One second of a call (50 frames, one header update) per iteration, into a buffer sized
    // up front so the numbers are the recorder's, not the Vec's growth.
    group.throughput(Throughput::Elements(50));
    group.bench_function("write 50 stereo frames to a Vec cursor", |b| {
        b.iter_batched_ref(
            || Recorder::new(Cursor::new(Vec::with_capacity(44 + 50 * LEN * 4)), 8000, LEN, 50).unwrap(),
            |rec| {
                for _ in 0..50 {
                    rec.write_frame(Some(black_box(&caller)), Some(black_box(&bot))).unwrap();
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn resample(c: &mut Criterion) {
    let mut resampler = StreamResampler::new(8000, 16000).unwrap();
    let frame = speechlike();
    let mut out = [0i16; 2 * LEN];
    c.bench_function("resample 8 kHz -> 16 kHz 20 ms frame (i16)", |b| {
        b.iter(|| {
            resampler.process_i16(black_box(&frame), &mut out).unwrap();
            black_box(&out);
        })
    });
}

/// jfk.wav (11 s of speech) at `rate` as PCM16: Opus' cost depends on the signal, so it is
/// measured on speech rather than a tone.
fn speech_at(rate: u32) -> Vec<i16> {
    let path = ModelPaths::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models")).fixture("jfk.wav");
    let audio = decode_file(&path).unwrap_or_else(|e| panic!("{}: {e} (run models/fetch.sh)", path.display()));
    let samples = resample_clip(&audio.samples, audio.sample_rate, rate).unwrap();
    let mut pcm = vec![0i16; samples.len()];
    f32_to_i16(&samples, &mut pcm);
    pcm
}

fn opus(c: &mut Criterion) {
    let mut group = c.benchmark_group("opus");
    for (rate, complexity) in [(8000, 5), (48000, 5), (48000, 10)] {
        let config = OpusEncoderConfig { complexity, ..OpusEncoderConfig::voip(rate) };
        let label = format!("{} kHz, {} kb/s, complexity {complexity}", rate / 1000, config.bitrate / 1000);
        let speech = speech_at(rate);
        let frames: Vec<&[i16]> = speech.chunks_exact(frame_len_20ms(rate)).collect();
        let mut encoder = OpusEncoder::new(config).unwrap();
        // Each iteration encodes the next 20 ms of the clip, so the average covers speech and
        // the pauses between phrases; the encoder state runs on as in a call.
        let mut next = 0;
        group.bench_function(format!("encode 20 ms frame ({label})"), |b| {
            b.iter(|| {
                let packet = encoder.encode(black_box(frames[next])).unwrap();
                black_box(packet);
                next = (next + 1) % frames.len();
            })
        });
        if complexity != 5 {
            continue; // decoding cost does not depend on the encoder's complexity
        }
        let mut encoder = OpusEncoder::new(config).unwrap();
        let packets: Vec<Vec<u8>> = frames.iter().map(|f| encoder.encode(f).unwrap().to_vec()).collect();
        let mut decoder = OpusDecoder::new(rate).unwrap();
        let mut out = vec![0i16; frame_len_20ms(rate)];
        let mut next = 0;
        group.bench_function(format!("decode 20 ms frame ({label})"), |b| {
            b.iter(|| {
                decoder.decode_into(black_box(&packets[next]), &mut out).unwrap();
                black_box(&out);
                next = (next + 1) % packets.len();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, g711, pacer, recorder, resample, opus);
criterion_main!(benches);
