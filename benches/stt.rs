//! Speech to text with whisper tiny.en: latency per clip length with the shrunk and the full
//! audio context (criterion), the accuracy that shrinking costs, and how to split 2 cores
//! between workers (tables printed by two extra modes).
//!
//! `cargo bench --bench stt -- --warm-up-time 2 --measurement-time 8`   latency (criterion)
//! `cargo bench --bench stt -- accuracy`   word error rate per configuration
//! `cargo bench --bench stt -- sizing`     1 worker x 2 threads vs 2 x 1 under concurrent load
//!
//! Needs `bash models/fetch.sh` and the `espeak-ng` command.

#[path = "../tests/support/speech_audio.rs"]
mod speech_audio;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use callcenter::media::decode::resample_clip;
use callcenter::media::g711;
use callcenter::speech::stt::{SttConfig, SttPool, word_error_rate};
use callcenter::speech::tts::{TtsConfig, TtsPool};
use criterion::Criterion;
use speech_audio::{cut, espeak_16k, jfk, model_paths};

/// Cuts of jfk.wav around whole phrases (boundaries from whisper's word timestamps and the
/// clip's energy, with ~0.1 s of lead-in as an endpointer keeps) and what is said in them:
/// (label, from s, to s, words).
const JFK_CUTS: [(&str, f64, f64, &str); 5] = [
    ("1.1 s", 3.2, 4.3, "ask not"),
    ("2 s", 0.1, 2.1, "and so my fellow americans"),
    ("2.5 s", 5.3, 7.8, "what your country can do for you"),
    ("3 s", 8.0, 11.0, "ask what you can do for your country"),
    ("8 s", 0.0, 8.0, "and so my fellow americans ask not what your country can do for you"),
];

const JFK_TEXT: &str =
    "and so my fellow americans ask not what your country can do for you ask what you can do for your country";

/// Synthetic callers, phrased the way a call center hears them.
const SENTENCES: [&str; 10] = [
    "I would like to check my account balance.",
    "Please call me back tomorrow morning.",
    "I want to cancel my subscription.",
    "Can you tell me when my order will arrive?",
    "I have a question about my last payment.",
    "Yes, that is correct.",
    "No, I do not want to do that.",
    "I need to speak with a manager right now.",
    "What time does your office open on Monday?",
    "Thank you very much, have a nice day.",
];

/// What the gateway's own voice says, as a caller's phone carries it (tests/speech_roundtrip.rs).
const PIPER_SENTENCES: [&str; 8] = [
    "Yes, I would like to hear more about the premium plan.",
    "No, I am not interested, thank you.",
    "Please call me back tomorrow afternoon.",
    "Stop calling me and remove me from your list.",
    "Can you repeat that, please?",
    "My order number is on the email you sent.",
    "I would like to speak with a manager.",
    "The delivery arrived late on Monday.",
];

/// Piper's voice (22.05 kHz) through G.711 µ-law at 8 kHz and back up to 16 kHz.
fn piper_through_the_phone(tts: &TtsPool, sentence: &str) -> Vec<f32> {
    let speech = tts.synthesize_blocking(None, sentence).expect("synthesis");
    let floats: Vec<f32> = speech.samples.iter().map(|&s| f32::from(s) / 32768.0).collect();
    let at_8k = resample_clip(&floats, speech.sample_rate, 8000).expect("resample");
    let pcm: Vec<i16> = at_8k.iter().map(|&s| (s * 32767.0).clamp(-32768.0, 32767.0) as i16).collect();
    let mut ulaw = vec![0u8; pcm.len()];
    g711::encode_ulaw(&pcm, &mut ulaw);
    let mut decoded = vec![0i16; ulaw.len()];
    g711::decode_ulaw(&ulaw, &mut decoded);
    let back: Vec<f32> = decoded.iter().map(|&s| f32::from(s) / 32768.0).collect();
    resample_clip(&back, 8000, 16_000).expect("resample")
}

fn pool(config: SttConfig) -> SttPool {
    SttPool::new(&model_paths().whisper("tiny.en"), config).expect("tiny.en (run `bash models/fetch.sh`)")
}

fn one_worker(threads: usize, shrink: bool) -> SttConfig {
    SttConfig { workers: 1, threads_per_worker: threads, shrink_audio_ctx: shrink, ..SttConfig::for_cores(2) }
}

/// CPU time of the whole process so far (all threads), from /proc/self/stat.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks: u64 = fields.get(11..13).map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

fn latency(c: &mut Criterion) {
    let audio = jfk();
    for (threads, label, shrink) in [(2, "shrunk ctx", true), (2, "full ctx", false), (1, "shrunk ctx", true)] {
        let stt = pool(one_worker(threads, shrink));
        let mut group = c.benchmark_group(format!("stt tiny.en {threads} thread(s), {label}"));
        group.sample_size(10);
        for (clip_label, from, to, _) in JFK_CUTS.iter().filter(|c| c.0 != "2.5 s") {
            let clip = cut(&audio, *from, *to);
            group.bench_function(*clip_label, |b| b.iter(|| black_box(stt.transcribe_blocking(clip.clone()).unwrap())));
        }
        group.finish();
    }
}

/// What a clip costs and how well it is heard, for one configuration.
struct Score {
    /// Mean word error rate per set: jfk, jfk cuts, espeak-ng, Piper via µ-law.
    wer: [f64; 4],
    median_ms: f64,
    cpu_ms_per_clip: f64,
}

const SETS: [&str; 4] = ["jfk", "cuts", "espeak", "piper"];

fn score(config: SttConfig, clips: &[(Vec<f32>, &str, &str)]) -> Score {
    let stt = pool(config);
    // One untimed pass warms the caches and the allocator.
    let _ = stt.transcribe_blocking(clips[0].0.clone());
    let (mut wer, mut count) = ([0.0f64; 4], [0usize; 4]);
    let mut times = Vec::new();
    let cpu_start = process_cpu();
    for (clip, reference, set) in clips {
        let start = Instant::now();
        let transcript = stt.transcribe_blocking(clip.clone()).unwrap();
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        let w = word_error_rate(reference, &transcript.text);
        if w > 0.0 && std::env::var_os("STT_BENCH_VERBOSE").is_some() {
            println!("    {set}: {reference:?} -> {:?} (WER {w:.2})", transcript.text);
        }
        let index = SETS.iter().position(|s| s == set).unwrap_or(0);
        wer[index] += w;
        count[index] += 1;
    }
    let cpu = (process_cpu() - cpu_start).as_secs_f64() * 1000.0;
    times.sort_by(f64::total_cmp);
    Score {
        wer: std::array::from_fn(|i| wer[i] / count[i].max(1) as f64),
        median_ms: times[times.len() / 2],
        cpu_ms_per_clip: cpu / clips.len() as f64,
    }
}

fn accuracy() {
    let audio = jfk();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut clips: Vec<(Vec<f32>, &str, &str)> = vec![(audio.clone(), JFK_TEXT, "jfk")];
    clips.extend(JFK_CUTS.iter().map(|(_, from, to, words)| (cut(&audio, *from, *to), *words, "cuts")));
    clips.extend(SENTENCES.iter().map(|s| (espeak_16k(s, dir.path()), *s, "espeak")));
    // Piper samples durations and noise at random, so each sentence is said three times
    // (uncached); every configuration hears the same recordings.
    let tts = TtsPool::new(&model_paths(), TtsConfig { cache_bytes: 0, ..TtsConfig::default() }).expect("Piper voice");
    for _ in 0..3 {
        clips.extend(PIPER_SENTENCES.iter().map(|s| (piper_through_the_phone(&tts, s), *s, "piper")));
    }
    drop(tts);
    // One thread: the CPU time per clip is then the model's cost, whatever else runs.
    let base = one_worker(1, true);
    let margin = |m: u32| SttConfig { audio_ctx_margin: m, ..base.clone() };
    let lead_in = Duration::from_millis(200);
    let configs: Vec<(&str, SttConfig)> = vec![
        ("full ctx (1500)", SttConfig { shrink_audio_ctx: false, ..base.clone() }),
        ("full ctx + 200 ms lead-in", SttConfig { shrink_audio_ctx: false, lead_in, ..base.clone() }),
        ("shrunk, margin 64", margin(64)),
        ("shrunk, margin 128 (default)", margin(128)),
        ("shrunk, margin 192", margin(192)),
        ("shrunk, margin 256", margin(256)),
        ("default + 200 ms lead-in", SttConfig { lead_in, ..base.clone() }),
        ("default + temperature fallback", SttConfig { temperature_fallback: true, ..base.clone() }),
        ("default + timestamp tokens", SttConfig { segment_timestamps: true, ..base.clone() }),
        ("full ctx + timestamp tokens", SttConfig { segment_timestamps: true, shrink_audio_ctx: false, ..base }),
    ];
    println!(
        "| configuration | WER jfk (11 s) | WER jfk cuts (5) | WER espeak-ng (10) | WER Piper via µ-law (8 x 3) | median latency | CPU per clip |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (label, config) in configs {
        if std::env::var_os("STT_BENCH_VERBOSE").is_some() {
            println!("  {label}:");
        }
        let s = score(config, &clips);
        let [jfk, cuts, espeak, piper] = s.wer;
        println!(
            "| {label} | {jfk:.3} | {cuts:.3} | {espeak:.3} | {piper:.3} | {:.0} ms | {:.0} ms |",
            s.median_ms, s.cpu_ms_per_clip
        );
    }
}

/// Two cores, two ways: one worker on 2 threads or two workers on 1 thread each. Each layout
/// gets the same burst of clips (2 s cuts) submitted at once; throughput and per-clip latency.
fn sizing() {
    let clip = cut(&jfk(), 0.1, 2.1);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    println!("| layout | lone 2 s clip (median of 5) | burst of 8: total | burst: mean latency | burst: max latency |");
    println!("|---|---|---|---|---|");
    for (workers, threads) in [(1usize, 2usize), (2, 1), (1, 1)] {
        let stt = Arc::new(pool(SttConfig {
            workers,
            threads_per_worker: threads,
            queue_depth: 8,
            ..SttConfig::for_cores(2)
        }));
        let mut lone: Vec<f64> = (0..6)
            .map(|_| {
                let start = Instant::now();
                stt.transcribe_blocking(clip.clone()).unwrap();
                start.elapsed().as_secs_f64() * 1000.0
            })
            .skip(1)
            .collect();
        lone.sort_by(f64::total_cmp);
        let start = Instant::now();
        let latencies: Vec<f64> = runtime.block_on(async {
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let (stt, clip) = (Arc::clone(&stt), clip.clone());
                    tokio::spawn(async move {
                        let t = Instant::now();
                        stt.transcribe(clip).await.unwrap();
                        t.elapsed().as_secs_f64() * 1000.0
                    })
                })
                .collect();
            futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect()
        });
        let total = start.elapsed().as_secs_f64() * 1000.0;
        let mean = latencies.iter().sum::<f64>() / latencies.len() as f64;
        let max = latencies.iter().copied().fold(0.0, f64::max);
        println!("| {workers} x {threads} threads | {:.0} ms | {total:.0} ms | {mean:.0} ms | {max:.0} ms |", lone[2]);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "accuracy") {
        accuracy();
    } else if args.iter().any(|a| a == "sizing") {
        sizing();
    } else {
        let mut criterion = Criterion::default().configure_from_args();
        latency(&mut criterion);
        criterion.final_summary();
    }
}
