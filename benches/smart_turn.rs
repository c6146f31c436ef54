//! Smart Turn v3.2: time per prediction split into the log-mel features and the model (p50/p95
//! on one thread), the same with two intra-op threads and with two workers busy at once, and
//! the resident memory the model adds to the process.
//!
//! `cargo bench --bench smart_turn`               100 predictions per configuration
//! `cargo bench --bench smart_turn -- --runs 300`
//! `cargo bench --bench smart_turn -- memory`     only the memory lines
//!
//! Needs `bash models/fetch.sh`. Prints a table; docs/BENCHMARKS.md ("Smart Turn v3.2") keeps
//! the numbers.

#[path = "../tests/support/speech_audio.rs"]
mod speech_audio;

use std::sync::Arc;
use std::time::{Duration, Instant};

use callcenter::speech::onnx;
use callcenter::speech::turn::{TurnConfig, TurnPool, TurnPrediction};
use speech_audio::{jfk, model_paths};

/// jfk.wav cuts of 1, 3 and 11 s: the model always sees 8 s, so the cost should not depend on
/// the turn's length; rotating through them shows it does not.
const CUTS: [(usize, usize); 3] = [(51_200, 68_800), (128_000, 176_000), (0, 176_000)];

fn rss_mb() -> f64 {
    callcenter::process::resident_kib().unwrap_or(0) as f64 / 1024.0
}

/// The machine's 1-minute load average (other jobs share these cores).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().next().unwrap_or("?").to_owned()
}

fn pool(workers: usize, threads_per_worker: usize) -> TurnPool {
    let config = TurnConfig { workers, threads_per_worker, queue_depth: 2 * workers, threshold: 0.5 };
    TurnPool::new(&model_paths(), config).expect("Smart Turn pool (run `bash models/fetch.sh`)")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// p50 and p95 of `values`, in ms.
fn percentiles(mut values: Vec<Duration>) -> (f64, f64) {
    values.sort();
    let at = |q: f64| ms(values[((values.len() - 1) as f64 * q).round() as usize]);
    (at(0.5), at(0.95))
}

/// What one configuration measured.
#[derive(Default)]
struct Samples {
    features: Vec<Duration>,
    inference: Vec<Duration>,
    /// From the call to the answer: queue hand-off, features and model.
    total: Vec<Duration>,
}

impl Samples {
    fn push(&mut self, prediction: TurnPrediction, total: Duration) {
        self.features.push(prediction.features);
        self.inference.push(prediction.inference);
        self.total.push(total);
    }

    fn print(self, label: &str) {
        let n = self.total.len();
        let (f50, f95) = percentiles(self.features);
        let (i50, i95) = percentiles(self.inference);
        let (t50, t95) = percentiles(self.total);
        println!("| {label} | {n} | {f50:.1} / {f95:.1} | {i50:.1} / {i95:.1} | {t50:.1} / {t95:.1} |");
    }
}

/// `runs` predictions one after another.
fn sequential(pool: &TurnPool, audio: &[f32], runs: usize) -> Samples {
    let mut samples = Samples::default();
    for run in 0..runs {
        let (from, to) = CUTS[run % CUTS.len()];
        let start = Instant::now();
        let prediction = pool.predict_blocking(&audio[from..to]).expect("prediction");
        samples.push(prediction, start.elapsed());
    }
    samples
}

/// `threads` threads each asking `runs / threads` predictions back to back.
fn concurrent(pool: Arc<TurnPool>, audio: Arc<Vec<f32>>, runs: usize, threads: usize) -> (Samples, Duration) {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (pool, audio) = (Arc::clone(&pool), Arc::clone(&audio));
            std::thread::spawn(move || sequential(&pool, &audio, runs / threads))
        })
        .collect();
    let mut all = Samples::default();
    for handle in handles {
        let samples = handle.join().expect("bench thread");
        all.features.extend(samples.features);
        all.inference.extend(samples.inference);
        all.total.extend(samples.total);
    }
    (all, start.elapsed())
}

fn warm_up(pool: &TurnPool, audio: &[f32]) {
    for (from, to) in CUTS {
        pool.predict_blocking(&audio[from..to]).expect("prediction");
    }
}

/// Runs this bench again as `-- memory-child WORKERS`, so each pool is measured in a fresh
/// process (memory a dropped pool gave back to the allocator would blur the next reading).
fn memory_in_a_child(workers: usize) {
    let output = std::process::Command::new(std::env::current_exe().expect("bench executable"))
        .args(["memory-child", &workers.to_string()])
        .output()
        .expect("running the memory child");
    print!("{}", String::from_utf8_lossy(&output.stdout));
    assert!(output.status.success(), "memory child: {}", String::from_utf8_lossy(&output.stderr));
}

/// The child: RSS before and after ONNX Runtime, after loading a pool of `workers`, and after
/// every worker has run (ONNX Runtime sizes its buffers on the first runs).
fn memory_child(workers: usize) {
    let audio = Arc::new(jfk());
    let start = rss_mb();
    // ONNX Runtime itself is loaded first: VAD and TTS load it anyway, so it is not the model's.
    onnx::ensure_loaded(&model_paths().onnxruntime()).expect("ONNX Runtime (run `bash models/fetch.sh`)");
    let runtime = rss_mb();
    let pool = Arc::new(pool(workers, 1));
    let loaded = rss_mb();
    // As many threads as workers, each asking several times: every worker runs.
    let (samples, _) = concurrent(Arc::clone(&pool), audio, 4 * workers, workers);
    assert_eq!(samples.total.len(), 4 * workers);
    let ran = rss_mb();
    println!(
        "rss, {workers} worker(s): {start:.0} MB at start, {runtime:.0} MB with ONNX Runtime; the pool adds \
         {:.1} MB loaded, {:.1} MB after running",
        loaded - runtime,
        ran - runtime
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "memory-child") {
        let workers = args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(1);
        memory_child(workers);
        return;
    }
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(100usize);
    let audio = jfk();
    println!(
        "smart turn bench: {runs} predictions per row, {} cores, load average at start {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average()
    );

    for workers in [1, 2] {
        memory_in_a_child(workers);
    }
    if args.iter().any(|a| a == "memory") {
        return;
    }
    let one = pool(1, 1);
    warm_up(&one, &audio);

    println!("| configuration | predictions | features p50 / p95 ms | model p50 / p95 ms | total p50 / p95 ms |");
    println!("|---|---|---|---|---|");
    sequential(&one, &audio, runs).print("1 worker x 1 thread, one at a time");
    drop(one);

    let two_threads = pool(1, 2);
    warm_up(&two_threads, &audio);
    sequential(&two_threads, &audio, runs).print("1 worker x 2 threads, one at a time");
    drop(two_threads);

    let two_workers = Arc::new(pool(2, 1));
    warm_up(&two_workers, &audio);
    let (samples, wall) = concurrent(Arc::clone(&two_workers), Arc::new(audio), runs, 2);
    let served = samples.total.len();
    samples.print("2 workers x 1 thread, two at a time");
    println!("2 workers x 1 thread, two at a time: {:.1} predictions/s", served as f64 / wall.as_secs_f64());
    println!("load average at end {}", load_average());
}
