//! A call's media path per 20 ms frame, without STT: G.711 µ-law decode, resample 8 -> 16 kHz,
//! Silero VAD, endpointer (inbound), and resample 16 -> 8 kHz, µ-law encode (outbound); how
//! many calls fit on the machine's cores; allocations per frame; memory per call.
//!
//! `cargo bench --bench media_pipeline` runs the criterion benches, then prints:
//! - `capacity`: every core busy with its share of N calls, all speech and a speech/silence
//!   mix, in real time (each tick is one 20 ms frame of every call, processed back to back);
//! - `allocations`: Rust heap allocations per frame, counted by this binary's global allocator;
//! - `memory`: RSS with the model loaded and per extra call.
//!
//! `MEDIA_PIPELINE_FRAMES=N cargo bench --bench media_pipeline` only runs N speech frames of one
//! call and exits, for `heaptrack`, which also sees ONNX Runtime's C++ allocations.
//!
//! Audio: jfk.wav (speech) through µ-law at 8 kHz inbound, the same speech at 16 kHz as the
//! bot's outbound audio; silence is µ-law's digital silence (0xFF).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use callcenter::media::decode::{decode_file, resample_clip};
use callcenter::media::endpointer::{Endpointer, EndpointerConfig, Event};
use callcenter::media::g711::{decode_ulaw, encode_ulaw};
use callcenter::media::pcm::f32_to_i16;
use callcenter::media::resample::StreamResampler;
use callcenter::speech::ModelPaths;
use callcenter::speech::vad::{VadConfig, VadModel, VadRate, VadStream};
use criterion::Criterion;

/// Counts heap allocations made through Rust (ONNX Runtime's C++ `new`/`malloc` bypass it).
struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const IN_LEN: usize = 160; // 20 ms at 8 kHz
const WIDE_LEN: usize = 320; // 20 ms at 16 kHz
const ULAW_SILENCE: u8 = 0xFF;

fn paths() -> ModelPaths {
    match std::env::var_os("CALLCENTER_MODELS_DIR") {
        Some(dir) if !dir.is_empty() => ModelPaths::new(dir),
        _ => ModelPaths::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")),
    }
}

/// jfk.wav as µ-law frames at 8 kHz (inbound) and PCM16 frames at 16 kHz (outbound).
struct Audio {
    inbound: Vec<[u8; IN_LEN]>,
    outbound: Vec<[i16; WIDE_LEN]>,
}

fn audio() -> Audio {
    let clip = decode_file(&paths().fixture("jfk.wav")).expect("jfk.wav (run `bash models/fetch.sh`)");
    let narrow = resample_clip(&clip.samples, clip.sample_rate, 8_000).expect("resample");
    let mut pcm = vec![0i16; narrow.len()];
    f32_to_i16(&narrow, &mut pcm);
    let inbound = pcm
        .chunks_exact(IN_LEN)
        .map(|frame| {
            let mut coded = [0u8; IN_LEN];
            encode_ulaw(frame, &mut coded);
            coded
        })
        .collect();
    let mut wide = vec![0i16; clip.samples.len()];
    f32_to_i16(&clip.samples, &mut wide);
    let outbound = wide.chunks_exact(WIDE_LEN).map(|frame| frame.try_into().unwrap()).collect();
    Audio { inbound, outbound }
}

/// Everything one call owns on the media path.
struct CallMedia {
    up: StreamResampler,
    down: StreamResampler,
    vad: VadStream,
    endpointer: Endpointer,
    narrow: [i16; IN_LEN],
    wide: [i16; WIDE_LEN],
    out_narrow: [i16; IN_LEN],
    turns: u64,
}

impl CallMedia {
    /// VAD on the upsampled 16 kHz audio, as the pipeline has it.
    fn new(model: &Arc<VadModel>) -> Self {
        Self::with_vad_rate(model, VadRate::Hz16000)
    }

    /// `Hz8000`: VAD straight on the decoded G.711 audio, before upsampling.
    fn with_vad_rate(model: &Arc<VadModel>, vad_rate: VadRate) -> Self {
        Self {
            up: StreamResampler::new(8_000, 16_000).unwrap(),
            down: StreamResampler::new(16_000, 8_000).unwrap(),
            vad: VadStream::new(model.clone(), vad_rate).unwrap(),
            endpointer: Endpointer::new(&EndpointerConfig::default()).unwrap(),
            narrow: [0; IN_LEN],
            wide: [0; WIDE_LEN],
            out_narrow: [0; IN_LEN],
            turns: 0,
        }
    }

    /// One 20 ms frame in each direction.
    fn frame(&mut self, inbound: &[u8; IN_LEN], outbound: &[i16; WIDE_LEN], encoded: &mut [u8; IN_LEN]) {
        decode_ulaw(inbound, &mut self.narrow);
        let narrow_probability = match self.vad.rate() {
            VadRate::Hz8000 => Some(self.vad.push_i16(&self.narrow).unwrap()),
            VadRate::Hz16000 => None,
        };
        self.up.process_i16(&self.narrow, &mut self.wide).unwrap();
        let probability = match narrow_probability {
            Some(probability) => probability,
            None => self.vad.push_i16(&self.wide).unwrap(),
        };
        for event in self.endpointer.push_frame(probability, &self.wide) {
            if let Event::SpeechEnded { audio, .. } = event {
                // Here the turn would go to STT.
                black_box(audio);
                self.turns += 1;
            }
        }
        self.down.process_i16(outbound, &mut self.out_narrow).unwrap();
        encode_ulaw(&self.out_narrow, encoded);
    }
}

/// Inbound frame `i` of a call: all speech, or 2 s of speech in every 5 s and digital
/// silence otherwise (a caller who talks 40% of the time on a line that sends silence as
/// silence; on a line with audible room tone every frame costs what speech costs).
fn inbound<'a>(audio: &'a Audio, i: usize, mix: bool, silence: &'a [u8; IN_LEN]) -> &'a [u8; IN_LEN] {
    if mix && i % 250 >= 100 { silence } else { &audio.inbound[i % audio.inbound.len()] }
}

fn criterion_benches(c: &mut Criterion, model: &Arc<VadModel>, audio: &Audio) {
    let silence = [ULAW_SILENCE; IN_LEN];
    for (rate, name) in
        [(VadRate::Hz16000, "vad 16 kHz: one 32 ms chunk"), (VadRate::Hz8000, "vad 8 kHz: one 32 ms chunk")]
    {
        let clip = decode_file(&paths().fixture("jfk.wav")).unwrap();
        let samples = resample_clip(&clip.samples, clip.sample_rate, rate.hz()).unwrap();
        let chunks: Vec<&[f32]> = samples.chunks_exact(rate.chunk_len()).collect();
        let mut vad = VadStream::new(model.clone(), rate).unwrap();
        let mut i = 0;
        c.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                black_box(vad.push_f32(chunks[i % chunks.len()]).unwrap())
            })
        });
    }
    for (mix, name) in
        [(false, "pipeline frame, all speech"), (true, "pipeline frame, 40% speech / 60% digital silence")]
    {
        let mut call = CallMedia::new(model);
        let mut encoded = [0u8; IN_LEN];
        let mut i = 0;
        c.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                call.frame(inbound(audio, i, mix, &silence), &audio.outbound[i % audio.outbound.len()], &mut encoded);
                black_box(&encoded);
            })
        });
    }
}

/// What [`run_calls`] measured.
struct CallsRun {
    /// Wall time per tick of one thread's share of the calls: p50, p99, max.
    tick: [Duration; 3],
    /// Frames per wall-clock second, all threads together.
    frames_per_s: f64,
    /// CPU time the worker threads spent per frame (from the scheduler's own accounting, so
    /// time spent waiting for a core another process holds is not counted).
    cpu_per_frame: Duration,
}

/// This thread's CPU time so far (`/proc/thread-self/schedstat`, first field, ns).
fn thread_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    Duration::from_nanos(stat.split_whitespace().next().and_then(|ns| ns.parse().ok()).unwrap_or(0))
}

/// Runs `calls` calls split over `threads` threads for `seconds` of call time, every thread
/// processing its calls' frames tick after tick without sleeping.
fn run_calls(
    model: &Arc<VadModel>,
    audio: &Arc<Audio>,
    calls: usize,
    threads: usize,
    seconds: usize,
    mix: bool,
    vad_rate: VadRate,
) -> CallsRun {
    let ticks = seconds * 50;
    let barrier = Arc::new(std::sync::Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (model, audio, barrier) = (model.clone(), audio.clone(), barrier.clone());
            let share = calls / threads + usize::from(t < calls % threads);
            std::thread::spawn(move || {
                let mut media: Vec<CallMedia> =
                    (0..share).map(|_| CallMedia::with_vad_rate(&model, vad_rate)).collect();
                let silence = [ULAW_SILENCE; IN_LEN];
                let mut encoded = [0u8; IN_LEN];
                let mut tick_times = Vec::with_capacity(ticks);
                barrier.wait();
                let cpu_start = thread_cpu_time();
                for tick in 0..ticks {
                    let started = Instant::now();
                    for (k, call) in media.iter_mut().enumerate() {
                        // Calls are offset so their speech and silence do not line up.
                        let i = tick + k * 37;
                        call.frame(
                            inbound(&audio, i, mix, &silence),
                            &audio.outbound[i % audio.outbound.len()],
                            &mut encoded,
                        );
                    }
                    tick_times.push(started.elapsed());
                }
                (tick_times, thread_cpu_time() - cpu_start)
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut all = Vec::new();
    let mut cpu = Duration::ZERO;
    for handle in handles {
        let (ticks, thread_cpu) = handle.join().unwrap();
        all.extend(ticks);
        cpu += thread_cpu;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    let at = |q: f64| all[((all.len() - 1) as f64 * q) as usize];
    let frames = (calls * ticks) as u32;
    CallsRun {
        tick: [at(0.5), at(0.99), *all.last().unwrap()],
        frames_per_s: f64::from(frames) / elapsed,
        cpu_per_frame: cpu / frames,
    }
}

fn capacity(model: &Arc<VadModel>, audio: &Arc<Audio>) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for (mix, vad_rate, label) in [
        (false, VadRate::Hz16000, "all speech"),
        (true, VadRate::Hz16000, "40% speech / 60% digital silence"),
        (false, VadRate::Hz8000, "all speech, VAD at 8 kHz"),
    ] {
        // Throughput with every core busy gives the capacity; a second run at 80% of it shows
        // how the 20 ms tick holds up.
        let run = run_calls(model, audio, 100 * threads, threads, 4, mix, vad_rate);
        let calls = (run.frames_per_s / 50.0) as usize;
        let cpu_calls = threads as f64 * 0.020 / run.cpu_per_frame.as_secs_f64();
        println!(
            "capacity {label}: {threads} threads, {:.0} frames/s = {calls} calls in real time; CPU {:.1} us per frame = {cpu_calls:.0} calls on {threads} idle cores",
            run.frames_per_s,
            run.cpu_per_frame.as_secs_f64() * 1e6,
        );
        let at_load = calls * 8 / 10;
        let run = run_calls(model, audio, at_load, threads, 10, mix, vad_rate);
        println!(
            "capacity {label}: {at_load} calls (80%): tick p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (budget 20 ms)",
            ms(run.tick[0]),
            ms(run.tick[1]),
            ms(run.tick[2])
        );
    }
    // Contention: the same load on one session shared by every thread, alternating with the
    // pool so that load from elsewhere on the machine hits both alike.
    let single = VadModel::load(&paths(), &VadConfig { sessions: Some(1), ..VadConfig::default() }).unwrap();
    for round in 1..=3 {
        let before = model.contended_runs();
        let pooled = run_calls(model, audio, 100 * threads, threads, 4, false, VadRate::Hz16000);
        let pooled_waits = model.contended_runs() - before;
        let before = single.contended_runs();
        let shared = run_calls(&single, audio, 100 * threads, threads, 4, false, VadRate::Hz16000);
        println!(
            "contention round {round}: {threads} threads; {} sessions: {:.0} frames/s, {:.1} us CPU per frame, {pooled_waits} chunks waited; 1 session: {:.0} frames/s, {:.1} us CPU per frame, {} of {} chunks waited",
            model.sessions(),
            pooled.frames_per_s,
            pooled.cpu_per_frame.as_secs_f64() * 1e6,
            shared.frames_per_s,
            shared.cpu_per_frame.as_secs_f64() * 1e6,
            single.contended_runs() - before,
            100 * threads * 200 * 5 / 8
        );
    }
}

/// Silero on a batch of calls' chunks in one run (`input [B, 64+512]`, `state [2, B, 128]`),
/// straight through `ort`: what scoring every call's chunk of a tick at once would cost.
fn batch_sweep() {
    let paths = paths();
    let environment = callcenter::speech::onnx::ensure_loaded(&paths.onnxruntime()).unwrap();
    // Built as `VadModel` builds its sessions.
    let mut session = ort::session::Session::builder(environment)
        .unwrap()
        .with_intra_threads(1)
        .unwrap()
        .with_inter_threads(1)
        .unwrap()
        .with_optimization_level(ort::session::builder::GraphOptimizationLevel::Level3)
        .unwrap()
        .commit_from_file(paths.silero_vad())
        .unwrap();
    let clip = decode_file(&paths.fixture("jfk.wav")).unwrap();
    for rate in [VadRate::Hz16000, VadRate::Hz8000] {
        let samples = resample_clip(&clip.samples, clip.sample_rate, rate.hz()).unwrap();
        let width = rate.context_len() + rate.chunk_len();
        let mut line = format!("vad batch {} Hz, us per chunk:", rate.hz());
        for batch in [1usize, 4, 16, 64] {
            // Each row a different stretch of speech.
            let data: Vec<f32> = (0..batch)
                .flat_map(|b| samples[(b * 2_777) % (samples.len() - width)..][..width].iter().copied())
                .collect();
            let input = ort::value::Tensor::from_array(([batch, width], data)).unwrap();
            let state = ort::value::Tensor::from_array(([2, batch, 128], vec![0f32; 2 * batch * 128])).unwrap();
            let sr = ort::value::Tensor::from_array(([0usize; 0], vec![i64::from(rate.hz())])).unwrap();
            let runs = 4_000 / batch;
            for _ in 0..runs / 10 {
                black_box(session.run(ort::inputs![&input, &state, &sr]).unwrap());
            }
            let started = Instant::now();
            for _ in 0..runs {
                black_box(session.run(ort::inputs![&input, &state, &sr]).unwrap());
            }
            let per_chunk = started.elapsed().as_secs_f64() * 1e6 / (runs * batch) as f64;
            line += &format!(" B={batch}: {per_chunk:.0}");
        }
        println!("{line}");
    }
}

fn allocations(model: &Arc<VadModel>, audio: &Audio) {
    let silence = [ULAW_SILENCE; IN_LEN];
    let mut encoded = [0u8; IN_LEN];
    for mix in [false, true] {
        let mut call = CallMedia::new(model);
        // Warm-up: ONNX Runtime and the resamplers size their buffers on first use.
        for i in 0..500 {
            call.frame(inbound(audio, i, mix, &silence), &audio.outbound[i % audio.outbound.len()], &mut encoded);
        }
        let frames = 5_000;
        let (turns_before, allocations_before) = (call.turns, ALLOCATIONS.load(Ordering::Relaxed));
        for i in 500..500 + frames {
            call.frame(inbound(audio, i, mix, &silence), &audio.outbound[i % audio.outbound.len()], &mut encoded);
        }
        let allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations_before;
        let turns = call.turns - turns_before;
        println!(
            "allocations {}: {allocations} Rust allocations in {frames} frames ({:.3} per frame), {turns} finished turns (one Vec each)",
            if mix { "40% speech" } else { "all speech" },
            allocations as f64 / frames as f64
        );
    }
}

fn rss_kib() -> u64 {
    callcenter::process::resident_kib().unwrap_or(0)
}

/// Memory, measured in a fresh process before anything else runs (RSS never shrinks much).
fn memory(audio: &Audio) -> Arc<VadModel> {
    let start = rss_kib();
    callcenter::speech::onnx::ensure_loaded(&paths().onnxruntime()).unwrap();
    let runtime = rss_kib();
    let model = VadModel::load(&paths(), &VadConfig::default()).unwrap();
    let loaded = rss_kib();
    // One call's first frames touch ONNX Runtime's arena; count that with the model.
    let silence = [ULAW_SILENCE; IN_LEN];
    let mut encoded = [0u8; IN_LEN];
    let mut first = CallMedia::new(&model);
    for i in 0..250 {
        first.frame(inbound(audio, i, false, &silence), &audio.outbound[i % audio.outbound.len()], &mut encoded);
    }
    let warmed = rss_kib();
    let n = 1_000;
    let streams: Vec<VadStream> = (0..n).map(|_| VadStream::new(model.clone(), VadRate::Hz16000).unwrap()).collect();
    let with_streams = rss_kib();
    // Whole calls, each having run 5 s of speech so its buffers are touched.
    let mut calls: Vec<CallMedia> = (0..n).map(|_| CallMedia::new(&model)).collect();
    for i in 0..250 {
        for call in &mut calls {
            call.frame(inbound(audio, i, false, &silence), &audio.outbound[i % audio.outbound.len()], &mut encoded);
        }
    }
    let with_calls = rss_kib();
    println!(
        "memory: process {start} KiB; + ONNX Runtime {} KiB; + Silero, {} sessions {} KiB; + first call's run {} KiB",
        runtime - start,
        model.sessions(),
        loaded - runtime,
        warmed - loaded
    );
    println!(
        "memory: {n} extra VadStreams {} KiB ({:.1} KiB each); {n} whole calls after 5 s of speech {} KiB ({:.1} KiB each)",
        with_streams - warmed,
        (with_streams - warmed) as f64 / n as f64,
        with_calls - with_streams,
        (with_calls - with_streams) as f64 / n as f64
    );
    drop((streams, calls, first));
    model
}

fn main() {
    let audio = Arc::new(audio());
    if let Some(frames) = std::env::var("MEDIA_PIPELINE_FRAMES").ok().and_then(|v| v.parse::<usize>().ok()) {
        let model = VadModel::load(&paths(), &VadConfig::default()).unwrap();
        let mut call = CallMedia::new(&model);
        let mut encoded = [0u8; IN_LEN];
        let silence = [ULAW_SILENCE; IN_LEN];
        for i in 0..frames {
            call.frame(inbound(&audio, i, false, &silence), &audio.outbound[i % audio.outbound.len()], &mut encoded);
        }
        println!("ran {frames} frames");
        return;
    }
    let model = memory(&audio);
    let mut criterion = Criterion::default().configure_from_args();
    criterion_benches(&mut criterion, &model, &audio);
    criterion.final_summary();
    allocations(&model, &audio);
    batch_sweep();
    capacity(&model, &audio);
}
