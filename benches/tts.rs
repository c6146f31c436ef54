//! TTS costs with the real Piper voice (en_US-joe-medium) and the real espeak-ng:
//! time to the first audio chunk, a whole ~20-word reply and its real-time factor, a cache
//! hit, espeak-ng phonemization (long-lived process vs. one per sentence), and RSS.
//!
//! `cargo bench --bench tts`  (needs `bash models/fetch.sh` and espeak-ng)

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use callcenter::speech::ModelPaths;
use callcenter::speech::models::DEFAULT_VOICE;
use callcenter::speech::onnx;
use callcenter::speech::tts::phonemize::assemble;
use callcenter::speech::tts::text::sentences;
use callcenter::speech::tts::{Espeak, EspeakMode, SessionOptions, TtsConfig, TtsPool, VoiceConfig, VoiceSession};
use criterion::{Criterion, criterion_group, criterion_main};

const SHORT: &str = "How can I help you today?";
/// 23 words, three sentences.
const REPLY: &str = "I found your order from last Tuesday. It shipped this morning and should arrive \
                     on Friday. Is there anything else I can do?";

fn paths() -> ModelPaths {
    match std::env::var_os("CALLCENTER_MODELS_DIR") {
        Some(dir) if !dir.is_empty() => ModelPaths::new(dir),
        _ => ModelPaths::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models")),
    }
}

fn rss_mb() -> f64 {
    callcenter::process::resident_kib().unwrap_or(0) as f64 / 1024.0
}

/// The machine's 1-minute load average (other jobs share these 2 cores).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().next().unwrap_or("?").to_owned()
}

/// CPU time this thread has run, from the scheduler (ns resolution, unlike rusage ticks).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    Duration::from_nanos(stat.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// A pool without a cache (every request is synthesized) and `threads` intra-op threads.
fn uncached_pool(threads: usize) -> TtsPool {
    let config = TtsConfig { workers: 1, threads_per_worker: threads, cache_bytes: 0, ..TtsConfig::for_cores(2) };
    TtsPool::new(&paths(), config).expect("TTS pool (bash models/fetch.sh; espeak-ng)")
}

/// Time from submitting `text` to its first chunk.
fn first_chunk(pool: &TtsPool, text: &str) -> Duration {
    let start = Instant::now();
    let mut stream = pool.synthesize_iter(None, text).unwrap();
    let chunk = stream.next().unwrap().unwrap();
    let elapsed = start.elapsed();
    black_box(chunk);
    // Let the rest finish so the next iteration starts on an idle worker.
    for chunk in stream {
        black_box(chunk.unwrap());
    }
    elapsed
}

fn first_audio(c: &mut Criterion) {
    let before = rss_mb();
    let pool = uncached_pool(2);
    let loaded = rss_mb();
    pool.synthesize_blocking(None, REPLY).unwrap();
    let after = rss_mb();
    println!(
        "tts rss: {before:.0} MB before the pool, {loaded:.0} MB with the voice loaded (1 worker), {after:.0} MB after a reply"
    );
    let short = pool.synthesize_blocking(None, SHORT).unwrap().duration();
    let first = pool.synthesize_iter(None, REPLY).unwrap().next().unwrap().unwrap().duration();
    println!(
        "tts audio: short sentence {:.2} s, the reply's first sentence {:.2} s; load average at start: {}",
        short.as_secs_f64(),
        first.as_secs_f64(),
        load_average()
    );

    let mut group = c.benchmark_group("tts");
    group.sample_size(20).warm_up_time(Duration::from_secs(2)).measurement_time(Duration::from_secs(8));
    group.bench_function("first chunk, short sentence (6 words), 2 threads", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| first_chunk(&pool, SHORT)).sum())
    });
    group.bench_function("first chunk, 23-word 3-sentence reply, 2 threads", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| first_chunk(&pool, REPLY)).sum())
    });
    group.bench_function("whole 23-word reply, 2 threads", |b| {
        b.iter(|| black_box(pool.synthesize_blocking(None, REPLY).unwrap()))
    });
    drop(pool);

    let single = uncached_pool(1);
    group.bench_function("first chunk, short sentence (6 words), 1 thread", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| first_chunk(&single, SHORT)).sum())
    });
    group.finish();
    drop(single);
}

/// Real-time factor: synthesis time over audio duration, median of 10 runs.
fn real_time_factor(_: &mut Criterion) {
    let pool = uncached_pool(2);
    let mut runs: Vec<(Duration, Duration)> = (0..10)
        .map(|_| {
            let start = Instant::now();
            let out = pool.synthesize_blocking(None, REPLY).unwrap();
            (start.elapsed(), out.duration())
        })
        .collect();
    runs.sort();
    let (took, audio) = runs[runs.len() / 2];
    println!(
        "tts rtf: 23-word reply, {:.2} s of audio in {:.0} ms (median of 10, 2 threads) = RTF {:.3} (load average {})",
        audio.as_secs_f64(),
        took.as_secs_f64() * 1000.0,
        took.as_secs_f64() / audio.as_secs_f64(),
        load_average()
    );
}

/// The short sentence's phonemization and inference on this thread (1 intra-op thread runs in
/// the caller): CPU time is what the sentence costs on an idle core, whatever else runs.
fn cpu_cost(_: &mut Criterion) {
    let paths = paths();
    let environment = onnx::ensure_loaded(&paths.onnxruntime()).unwrap();
    let (model, json) = paths.voice(DEFAULT_VOICE);
    let voice = std::sync::Arc::new(VoiceConfig::load(DEFAULT_VOICE, &json).unwrap());
    let options = SessionOptions { threads: 1, spinning: false };
    let mut session = VoiceSession::load(environment, &model, voice.clone(), options).unwrap();
    let mut espeak =
        Espeak::new(Path::new("espeak-ng"), "en-us", EspeakMode::Persistent, Duration::from_secs(5)).unwrap();
    let sentence = &sentences(SHORT)[0];
    let mut runs: Vec<(Duration, Duration)> = (0..21)
        .map(|_| {
            let (wall, cpu) = (Instant::now(), thread_cpu());
            let texts: Vec<&str> = sentence.clauses.iter().map(|c| c.text.as_str()).collect();
            let ipa = espeak.phonemize(&texts).unwrap();
            let clauses: Vec<(String, Option<char>)> =
                ipa.into_iter().zip(sentence.clauses.iter().map(|c| c.terminator)).collect();
            let ids = voice.phoneme_ids(&assemble(&clauses));
            black_box(session.infer(&ids.ids, 0).unwrap());
            (thread_cpu() - cpu, wall.elapsed())
        })
        .skip(1)
        .collect();
    runs.sort();
    let (cpu, wall) = runs[runs.len() / 2];
    println!(
        "tts cpu: short sentence (6 words), 1 thread: {:.0} ms CPU for ids + inference (espeak-ng's own process not counted), {:.0} ms wall with espeak-ng (median of 20; load average {})",
        cpu.as_secs_f64() * 1000.0,
        wall.as_secs_f64() * 1000.0,
        load_average()
    );
}

fn cache_hit(c: &mut Criterion) {
    let config = TtsConfig { workers: 1, ..TtsConfig::for_cores(2) };
    let pool = TtsPool::new(&paths(), config).unwrap();
    pool.synthesize_blocking(None, REPLY).unwrap();
    let mut group = c.benchmark_group("tts cache");
    group.bench_function("hit: first chunk of a cached 3-sentence reply", |b| {
        b.iter(|| black_box(pool.synthesize_iter(None, black_box(REPLY)).unwrap().next().unwrap().unwrap()))
    });
    group.bench_function("hit: whole cached 3-sentence reply (concatenated)", |b| {
        b.iter(|| black_box(pool.synthesize_blocking(None, black_box(REPLY)).unwrap()))
    });
    group.bench_function("AudioCache::get alone", |b| {
        b.iter(|| {
            black_box(
                pool.cache().get(DEFAULT_VOICE, black_box("It shipped this morning and should arrive on Friday.")),
            )
        })
    });
    group.finish();
}

fn phonemize(c: &mut Criterion) {
    let timeout = Duration::from_secs(5);
    let clauses = ["I found your order from last Tuesday"];
    let mut persistent = Espeak::new(Path::new("espeak-ng"), "en-us", EspeakMode::Persistent, timeout).unwrap();
    let mut per_call = Espeak::new(Path::new("espeak-ng"), "en-us", EspeakMode::PerCall, timeout).unwrap();
    let mut group = c.benchmark_group("espeak-ng");
    group.sample_size(30);
    group.bench_function("one 7-word clause, long-lived process", |b| {
        b.iter(|| black_box(persistent.phonemize(black_box(&clauses)).unwrap()))
    });
    group.bench_function("one 7-word clause, process per call", |b| {
        b.iter(|| black_box(per_call.phonemize(black_box(&clauses)).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, first_audio, real_time_factor, cpu_cost, cache_hit, phonemize);
criterion_main!(benches);
