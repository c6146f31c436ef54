//! Calls under load, measured by synthetic callers over the real Twilio doors: a server runs
//! in this process (port 0, SQLite, real models); the callers run in a child process (this
//! binary again, mode `callers`) that rings our number through the signed `/twilio/voice`
//! webhook and opens the Media Stream its TwiML asks for, as Twilio would (`TwilioSide::ring`).
//!
//! `cargo bench --bench calls -- voice [LEVELS]`  voice-to-voice latency at each number of
//!     concurrent AI calls (default 1,5,10,20,50): each call is a template of six questions;
//!     after each line the caller waits 300 ms and answers with a short sentence said by the
//!     real TTS voice (silence trimmed, so its last frame is voiced). A sample is the time from
//!     the caller's last voiced frame going out (`PeerEvent::DoneSpeaking`) to the first
//!     audible frame of our reply it plays (`PeerEvent::Heard`).
//! `cargo bench --bench calls -- media [LEVELS]`  media-only calls (default 10,50,100,200): a
//!     template of one ~35 s information line, silent callers (µ-law digital silence, which the
//!     VAD's energy gate skips, so no STT runs); counts late frames at the caller and the
//!     server's RSS per call.
//!
//! LEVELS is a comma list (`voice 1,5`). Progress and results go to stderr/stdout as lines.
//! Needs the models (`bash models/fetch.sh`, or `CALLCENTER_MODELS_DIR`).

#[path = "../tests/common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use callcenter::config::TwilioConfig;
use callcenter::media::decode::resample_clip;
use callcenter::media::g711;
use callcenter::telephony::simulator::peer::{PeerCommand, PeerEvent};
use callcenter::telephony::simulator::twilio_side::TwilioSide;
use common::{Backend, TestApp, models_dir, start_app};
use serde_json::{Value, json};
use tokio::time::Instant;

const AUTH_TOKEN: &str = "bench-auth-token";
const ACCOUNT_SID: &str = "AC0000bench";
const PUBLIC_URL: &str = "https://gw.example.com";
const VOICE_NUMBER: &str = "+14155550101";
const MEDIA_NUMBER: &str = "+14155550102";
const CALLER: &str = "+14155550100";

/// The voice template's questions, each with what the caller answers. The dialogue moves on
/// after a yes or a no (anything else is re-prompted), so every question asks for one. Half
/// the answers are short (under 0.8 s of speech: after a yes/no question the endpointer ends
/// them after 200 ms of silence), half long (400 ms). No commas: the voice pauses at a comma,
/// and a pause of 200 ms after a short "Yes," would end the turn there.
const QUESTIONS: [(&str, &str); 6] = [
    ("Hello, this is Acme support. Are you calling about an order?", "Yes I am."),
    ("Would you like us to deliver it to your home address?", "Yes I would like that very much."),
    ("Shall I send you a text message when it leaves our warehouse?", "Yes please."),
    ("Do you want the same delivery slot as last time?", "Yes the same slot would be perfect."),
    ("Can we charge the card on your account?", "Yes go ahead."),
    ("Would you like a confirmation by email as well?", "Yes an email would be great thank you."),
];
/// Answers with at most this much audio count as short (the endpointer's `short_turn_ms`).
const SHORT_ANSWER: Duration = Duration::from_millis(800);
const CLOSING: &str = "Thank you for calling Acme. Goodbye.";

/// The media template's one line: about 35 s of speech.
const INFORMATION: &str = "Thank you for calling Acme. This is a recorded message about our delivery \
service. Orders placed before noon on a working day leave our warehouse the same afternoon, and most \
of them arrive within two working days. You can follow every parcel on our website with the number \
in your confirmation email. If a parcel is late, please wait one more working day before you contact \
us, because most late parcels arrive on the next round. Returns are free for thirty days: print the \
label from your account, pack the item in its original box, and drop it at any post office. Refunds \
reach your account within five working days of the return arriving at our warehouse. Thank you for \
listening, and have a good day.";

/// The caller's pause between the end of the bot's line and its answer (not part of the latency).
const PAUSE_BEFORE_ANSWER: Duration = Duration::from_millis(300);
/// Calls of one level start spread over this long, as independent callers would.
const STAGGER: Duration = Duration::from_secs(5);
/// A synthetic call never lasts longer than this.
const MAX_CALL: Duration = Duration::from_secs(180);
/// Voice samples wanted at least per level; at low levels callers make several calls in a row.
const MIN_VOICE_SAMPLES: usize = 24;
/// A gap between two of the gateway's `media` messages longer than this means at least one
/// frame missed its 20 ms slot.
const LATE_GAP: Duration = Duration::from_millis(40);

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match args.first().map(String::as_str) {
        Some("voice") => runtime.block_on(server(Mode::Voice, levels(args.get(1), &[1, 5, 10, 20, 50])?)),
        Some("media") => runtime.block_on(server(Mode::Media, levels(args.get(1), &[10, 50, 100, 200])?)),
        Some("callers") => runtime.block_on(callers(&args[1..])),
        Some(other) => bail!("unknown mode {other:?}; usage: cargo bench --bench calls -- voice|media [N,N,...]"),
        // `cargo test --all-targets` runs bench binaries without arguments: say how to run it.
        None => {
            eprintln!("usage: cargo bench --bench calls -- voice|media [N,N,...]");
            Ok(())
        }
    }
}

fn levels(arg: Option<&String>, default: &[usize]) -> anyhow::Result<Vec<usize>> {
    match arg {
        None => Ok(default.to_vec()),
        Some(list) => list.split(',').map(|n| n.trim().parse::<usize>().context("levels: N,N,...")).collect(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Voice,
    Media,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Voice => "voice",
            Mode::Media => "media",
        }
    }
}

fn rss_kib() -> u64 {
    callcenter::process::resident_kib().unwrap_or(0)
}

fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Samples the RSS every 100 ms until stopped; keeps the peak.
struct RssPeak {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssPeak {
    fn start() -> RssPeak {
        let peak = Arc::new(AtomicU64::new(rss_kib()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_kib(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        RssPeak { peak, stop }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.peak.load(Ordering::Relaxed).max(rss_kib())
    }
}

/// A counter or a summary's `_sum`/`_count` from the Prometheus text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name))
        .filter_map(|rest| rest.strip_prefix(' '))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum()
}

#[derive(Clone, Copy, Debug, Default)]
struct SpeechMetrics {
    stt_seconds: f64,
    stt_clips: f64,
    stt_rejected: f64,
    tts_misses: f64,
}

impl SpeechMetrics {
    fn read(app: &TestApp) -> SpeechMetrics {
        let text = app.state.metrics.render();
        SpeechMetrics {
            stt_seconds: metric(&text, "stt_latency_seconds_sum"),
            stt_clips: metric(&text, "stt_latency_seconds_count"),
            stt_rejected: metric(&text, "stt_rejected_total"),
            tts_misses: metric(&text, "tts_cache_misses_total"),
        }
    }

    fn since(self, before: SpeechMetrics) -> SpeechMetrics {
        SpeechMetrics {
            stt_seconds: self.stt_seconds - before.stt_seconds,
            stt_clips: self.stt_clips - before.stt_clips,
            stt_rejected: self.stt_rejected - before.stt_rejected,
            tts_misses: self.tts_misses - before.tts_misses,
        }
    }
}

async fn post(app: &TestApp, path: &str, body: Value) -> anyhow::Result<Value> {
    let response = app.client.post(format!("{}{path}", app.base)).bearer_auth(&app.key).json(&body).send().await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("POST {path}: {status} {body}");
    }
    Ok(body)
}

/// The server side: starts the app, prepares the template, runs each level's callers in a
/// child process, and prints what it measured.
async fn server(mode: Mode, levels: Vec<usize>) -> anyhow::Result<()> {
    eprintln!("calls bench ({}): levels {levels:?}; load average {}", mode.name(), load_average());
    let rss_before_app = rss_kib();
    // Registering the Twilio number asks IncomingPhoneNumbers: a local fake of Twilio's API.
    let account = common::fake_twilio::FakeAccount {
        sid: ACCOUNT_SID,
        token: AUTH_TOKEN,
        numbers: vec![VOICE_NUMBER.into(), MEDIA_NUMBER.into()],
        caller_ids: vec![],
    };
    let (api_base, _) = common::fake_twilio::fake_twilio_with(vec![account]).await;
    let app = start_app(Backend::Sqlite, |config| {
        config.rate_limit_per_minute = 1_000_000;
        config.telephony.models_dir = models_dir();
        config.telephony.public_url = Some(PUBLIC_URL.into());
        config.telephony.max_concurrent_calls = 10_000;
        config.telephony.twilio = Some(TwilioConfig {
            account_sid: ACCOUNT_SID.into(),
            auth_token: AUTH_TOKEN.into(),
            caller_id: None,
            api_base,
        });
    })
    .await;
    let engine = app.state.calls.speech().await.context("loading the models")?;
    eprintln!("models loaded: RSS {} -> {} KiB", rss_before_app, rss_kib());

    let files = tempfile::tempdir()?;
    let (number, steps) = match mode {
        Mode::Voice => {
            let mut steps: Vec<Value> =
                QUESTIONS.iter().map(|(q, _)| json!({"type": "question", "content": q})).collect();
            steps.push(json!({"type": "closing", "content": CLOSING}));
            (VOICE_NUMBER, steps)
        }
        Mode::Media => (MEDIA_NUMBER, vec![json!({"type": "information", "content": INFORMATION})]),
    };
    let template =
        post(&app, "/v1/templates", json!({"name": format!("bench {}", mode.name()), "steps": steps})).await?;
    let body = json!({"phone": number, "templateId": template["id"], "variables": {}, "carrier": "twilio"});
    post(&app, "/v1/phone-numbers", body).await?;

    match mode {
        Mode::Voice => {
            // The caller's answers, said once by the TTS voice and sent by every call.
            for (i, (_, answer)) in QUESTIONS.iter().enumerate() {
                let synthesis = engine.tts.synthesize(None, answer).await?;
                let pcm = to_8k(&synthesis.samples, synthesis.sample_rate)?;
                let voiced = trim_silence(&pcm);
                let mut ulaw = vec![0u8; voiced.len()];
                g711::encode_ulaw(voiced, &mut ulaw);
                std::fs::write(files.path().join(format!("answer-{i}.ulaw")), &ulaw)?;
                // What whisper makes of it on an idle pool, and how long that takes.
                let floats: Vec<f32> = voiced.iter().map(|&s| f32::from(s) / 32768.0).collect();
                let at_16k = resample_clip(&floats, 8000, 16_000)?;
                let started = std::time::Instant::now();
                let heard = engine.stt.transcribe(at_16k).await?;
                eprintln!(
                    "answer {i}: {answer:?} {:.2} s voiced; whisper alone: {:?} in {} ms",
                    voiced.len() as f64 / 8000.0,
                    heard.text,
                    started.elapsed().as_millis()
                );
            }
        }
        Mode::Media => {
            let started = std::time::Instant::now();
            let synthesis = engine.tts.synthesize(None, INFORMATION).await?;
            eprintln!(
                "information line: {:.1} s of audio, synthesized (and cached) in {:.1} s",
                synthesis.samples.len() as f64 / f64::from(synthesis.sample_rate),
                started.elapsed().as_secs_f64()
            );
        }
    }

    // One unmeasured call: the bot's lines reach the TTS cache, ONNX Runtime and whisper warm up.
    eprintln!("warm-up call...");
    run_level(&app, mode, files.path(), 1, 1).await?;
    let baseline = rss_kib();
    eprintln!("baseline RSS (models loaded, one call done): {baseline} KiB");

    let mut voice_p95: Vec<(usize, f64)> = Vec::new();
    for &n in &levels {
        let rounds = match mode {
            Mode::Voice => MIN_VOICE_SAMPLES.div_ceil(n * QUESTIONS.len()).max(1),
            Mode::Media => 1,
        };
        let load_before = load_average();
        let metrics_before = SpeechMetrics::read(&app);
        let rss = RssPeak::start();
        let started = std::time::Instant::now();
        let results = run_level(&app, mode, files.path(), n, rounds).await?;
        let peak = rss.finish();
        let seconds = started.elapsed().as_secs_f64();
        let speech = SpeechMetrics::read(&app).since(metrics_before);
        let load_after = load_average();
        let load = format!("load average before [{load_before}] after [{load_after}]");
        match mode {
            Mode::Voice => {
                let p95 = report_voice(&app, n, rounds, &results.calls, speech, seconds, &load).await;
                if let Some(p95) = p95 {
                    voice_p95.push((n, p95));
                }
            }
            Mode::Media => report_media(n, &results, baseline, peak, &load),
        }
    }
    if mode == Mode::Voice {
        // The largest level up to which every measured level kept its p95 within 1 s.
        let mut largest = None;
        for (n, p95) in &voice_p95 {
            if *p95 > 1000.0 {
                break;
            }
            largest = Some(*n);
        }
        match largest {
            Some(n) => println!("largest measured concurrency with p95 <= 1 s (all levels up to it too): {n}"),
            None => println!("no measured concurrency kept p95 <= 1 s"),
        }
    }
    Ok(())
}

/// What one level's child process reported.
struct LevelResults {
    calls: Vec<Value>,
    callers_rss_baseline_kib: u64,
    callers_rss_peak_kib: u64,
}

/// Runs `n` concurrent callers (each making `rounds` calls in a row) in a child process and
/// waits until the server has finished all their calls.
async fn run_level(app: &TestApp, mode: Mode, files: &Path, n: usize, rounds: usize) -> anyhow::Result<LevelResults> {
    eprintln!("{} level: {n} concurrent call(s) x {rounds} round(s)...", mode.name());
    let output = tokio::process::Command::new(std::env::current_exe()?)
        .args(["callers", mode.name(), &app.base, &n.to_string(), &rounds.to_string(), &files.display().to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .output()
        .await?;
    if !output.status.success() {
        bail!("the callers' process failed: {}", output.status);
    }
    let mut results = LevelResults { calls: Vec::new(), callers_rss_baseline_kib: 0, callers_rss_peak_kib: 0 };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(value) = serde_json::from_str::<Value>(line) else { continue };
        if let Some(peak) = value["rss_peak_kib"].as_u64() {
            results.callers_rss_peak_kib = peak;
            results.callers_rss_baseline_kib = value["rss_baseline_kib"].as_u64().unwrap_or(0);
        } else {
            results.calls.push(value);
        }
    }
    // The calls' records are written after their streams close.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while app.state.calls.active() > 0 {
        if std::time::Instant::now() > deadline {
            bail!("{} call(s) still running 120 s after the callers hung up", app.state.calls.active());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(results)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Prints one voice level's numbers; returns its p95 in ms.
async fn report_voice(
    app: &TestApp,
    n: usize,
    rounds: usize,
    calls: &[Value],
    speech: SpeechMetrics,
    seconds: f64,
    load: &str,
) -> Option<f64> {
    let mut all = Vec::new();
    let mut by_kind: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let (mut overlaps, mut errors, mut reprompts, mut unanswered) = (0, 0, 0, 0);
    for call in calls {
        if call["error"].is_string() {
            errors += 1;
            eprintln!("  call error: {}", call["error"]);
        }
        overlaps += call["overlaps"].as_u64().unwrap_or(0);
        unanswered += call["unanswered"].as_u64().unwrap_or(0);
        for sample in call["samples"].as_array().into_iter().flatten() {
            let ms = sample[1].as_f64().unwrap_or(f64::NAN);
            all.push(ms);
            let kind = if sample[0] == "short" { "short answers" } else { "long answers" };
            by_kind.entry(kind).or_default().push(ms);
        }
        // The bot's own re-prompts: it did not get (or did not understand) an answer in time.
        if let Some(id) = call["call_id"].as_str()
            && let Ok(response) =
                app.client.get(format!("{}/v1/calls/{id}/transcript", app.base)).bearer_auth(&app.key).send().await
            && let Ok(text) = response.text().await
        {
            if std::env::var_os("CALLS_BENCH_VERBOSE").is_some() {
                eprintln!("  {call}\n  transcript: {text}");
            }
            reprompts += text.matches("didn't catch that").count() + text.matches("Are you still there").count();
        }
    }
    all.sort_by(f64::total_cmp);
    let summary = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        format!("p50 {:.0} ms (n={})", percentile(v, 0.5), v.len())
    };
    let kinds: Vec<String> = by_kind.iter_mut().map(|(k, v)| format!("{k} {}", summary(v))).collect();
    let mean = all.iter().sum::<f64>() / all.len().max(1) as f64;
    let stt_mean_ms = if speech.stt_clips > 0.0 { speech.stt_seconds / speech.stt_clips * 1000.0 } else { f64::NAN };
    println!(
        "voice N={n} calls={} ({rounds} round(s), {seconds:.0} s) turns={} | latency p50 {:.0} ms p95 {:.0} ms max {:.0} ms mean {mean:.0} ms | {} | STT per turn (queue + whisper, server metric) mean {stt_mean_ms:.0} ms over {} clips, {} refused | bot re-prompts {reprompts}, answers never replied {unanswered}, answers the bot talked over {overlaps}, TTS cache misses {} | errors {errors} | {load}",
        calls.len(),
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.95),
        all.last().copied().unwrap_or(f64::NAN),
        kinds.join(", "),
        speech.stt_clips,
        speech.stt_rejected,
        speech.tts_misses,
    );
    if n == 1 {
        let (p50, p95) = (percentile(&all, 0.5), percentile(&all, 0.95));
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        println!(
            "target at 1 call: p50 <= 500 ms {} ({p50:.0} ms), p95 <= 800 ms {} ({p95:.0} ms)",
            verdict(p50 <= 500.0),
            verdict(p95 <= 800.0)
        );
    }
    (!all.is_empty()).then(|| percentile(&all, 0.95))
}

fn report_media(n: usize, results: &LevelResults, baseline: u64, peak: u64, load: &str) {
    let calls = &results.calls;
    let sum = |field: &str| calls.iter().map(|c| c[field].as_u64().unwrap_or(0)).sum::<u64>();
    let with = |field: &str| calls.iter().filter(|c| c[field].as_u64().unwrap_or(0) > 0).count();
    let errors = calls.iter().filter(|c| c["error"].is_string()).count();
    for call in calls.iter().filter(|c| c["error"].is_string()).take(3) {
        eprintln!("  call error: {}", call["error"]);
    }
    let max_gap = calls.iter().filter_map(|c| c["max_gap_ms"].as_f64()).fold(0.0, f64::max);
    // Late arrivals while calls were still being rung (the first STAGGER + 1 s) or after.
    let ramp = STAGGER.as_secs_f64() + 1.0;
    let late_at: Vec<f64> = calls
        .iter()
        .flat_map(|c| c["late_at"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_f64())
        .collect();
    let during_ramp = late_at.iter().filter(|&&t| t < ramp).count();
    // Late arrivals of many calls in the same tenth of a second are one stall of the process.
    let mut stalls: BTreeMap<i64, usize> = BTreeMap::new();
    for t in &late_at {
        *stalls.entry((t * 10.0).round() as i64).or_default() += 1;
    }
    let stalls: Vec<String> = stalls.iter().map(|(t, count)| format!("{:.1}s x{count}", *t as f64 / 10.0)).collect();
    if !stalls.is_empty() {
        eprintln!("  late arrivals by time since the first ring: {}", stalls.join(", "));
    }
    let lost = calls.iter().filter(|c| c["received"].as_u64() != c["played"].as_u64()).count();
    let server_per_call = peak.saturating_sub(baseline) as f64 / n as f64;
    let callers_per_call =
        results.callers_rss_peak_kib.saturating_sub(results.callers_rss_baseline_kib) as f64 / n as f64;
    println!(
        "media N={n} calls={} errors={errors} | frames played {} | underruns {} (in {} calls) | media gaps > 40 ms {} (in {} calls; {during_ramp} of them in the first {ramp:.0} s, while calls were still starting), max gap {max_gap:.0} ms | calls whose arrival count differs from frames played {lost} | server RSS baseline {baseline} KiB peak {peak} KiB -> {server_per_call:.0} KiB per call | callers' process {} -> {} KiB -> {callers_per_call:.0} KiB per call | {load}",
        calls.len(),
        sum("played"),
        sum("underruns"),
        with("underruns"),
        sum("late"),
        with("late"),
        results.callers_rss_baseline_kib,
        results.callers_rss_peak_kib,
    );
}

fn to_8k(samples: &[i16], rate: u32) -> anyhow::Result<Vec<i16>> {
    let floats: Vec<f32> = samples.iter().map(|&s| f32::from(s) / 32768.0).collect();
    let at_8k = resample_clip(&floats, rate, 8000)?;
    Ok(at_8k.iter().map(|&s| (s * 32767.0).clamp(-32768.0, 32767.0) as i16).collect())
}

/// The voiced part of a clip: from 10 ms before the first sample above -40 dBFS to the last
/// one, so the last frame the caller sends holds speech.
fn trim_silence(pcm: &[i16]) -> &[i16] {
    const LOUD: i16 = 328; // -40 dBFS
    let first = pcm.iter().position(|s| s.unsigned_abs() > LOUD as u16).unwrap_or(0);
    let last = pcm.iter().rposition(|s| s.unsigned_abs() > LOUD as u16).unwrap_or(pcm.len().saturating_sub(1));
    &pcm[first.saturating_sub(80)..=last]
}

// ---- the callers' process ----

/// `callers MODE BASE N ROUNDS DIR`: N callers, each making ROUNDS calls in a row; prints one
/// JSON line per call, then one with this process's RSS.
async fn callers(args: &[String]) -> anyhow::Result<()> {
    let [mode, base, n, rounds, dir] = args else { bail!("callers MODE BASE N ROUNDS DIR") };
    let mode = if mode == "voice" { Mode::Voice } else { Mode::Media };
    let n: usize = n.parse()?;
    let rounds: usize = rounds.parse()?;
    let side = TwilioSide {
        listen_base: base.clone(),
        public_url: PUBLIC_URL.into(),
        account_sid: ACCOUNT_SID.into(),
        auth_token: AUTH_TOKEN.into(),
    };
    let answers: Arc<Vec<Vec<u8>>> = Arc::new(match mode {
        Mode::Voice => (0..QUESTIONS.len())
            .map(|i| std::fs::read(Path::new(dir).join(format!("answer-{i}.ulaw"))))
            .collect::<Result<_, _>>()?,
        Mode::Media => Vec::new(),
    });
    let client = reqwest::Client::new();
    let rss_baseline = rss_kib();
    let rss = RssPeak::start();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let level_start = Instant::now();
    for caller in 0..n {
        let (side, client, answers, tx) = (side.clone(), client.clone(), answers.clone(), tx.clone());
        tokio::spawn(async move {
            tokio::time::sleep(STAGGER.mul_f64(caller as f64 / n as f64)).await;
            for round in 0..rounds {
                let call_sid = format!("CA{:08x}{caller:06}{round:04}", std::process::id());
                let result = match mode {
                    Mode::Voice => voice_call(&side, &client, &call_sid, &answers).await,
                    Mode::Media => media_call(&side, &client, &call_sid, level_start).await,
                };
                let _ = tx.send(result);
            }
        });
    }
    drop(tx);
    let mut done = 0;
    while let Some(result) = rx.recv().await {
        println!("{result}");
        done += 1;
        if done % 10 == 0 || done == n * rounds {
            eprintln!("  {done}/{} calls done", n * rounds);
        }
    }
    let peak = rss.finish();
    println!("{}", json!({"rss_baseline_kib": rss_baseline, "rss_peak_kib": peak}));
    Ok(())
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One call of the voice test: answer each line, time each reply.
async fn voice_call(side: &TwilioSide, client: &reqwest::Client, call_sid: &str, answers: &[Vec<u8>]) -> Value {
    let mut call = match side.ring(client, CALLER, VOICE_NUMBER, call_sid).await {
        Ok(call) => call,
        Err(error) => return json!({"error": error.to_string()}),
    };
    let mut samples: Vec<Value> = Vec::new();
    let mut next_answer = 0;
    let mut answer_at: Option<Instant> = None;
    // The answer being said, then the answer said and when its last voiced frame went out.
    let mut speaking: Option<usize> = None;
    let mut awaiting: Option<(usize, Instant)> = None;
    let mut mark_tick: Option<Instant> = None;
    let mut overlapped = false;
    let (mut overlaps, mut unanswered) = (0u64, 0u64);
    let deadline = Instant::now() + MAX_CALL;
    let mut error = Value::Null;
    loop {
        tokio::select! {
            event = call.peer.events.recv() => match event {
                // The peer reports a tick's marks before its frame: the frame of the tick that
                // returned the mark is the line's last, not a new line.
                Some(PeerEvent::Heard { audible: true, at, .. }) if Some(at) != mark_tick => {
                    // The bot is talking: no answer until this line's mark.
                    answer_at = None;
                    match awaiting {
                        Some((answer, said_at)) if at > said_at => {
                            let short = answers[answer].len() as f64 / 8000.0 <= SHORT_ANSWER.as_secs_f64();
                            let kind = if short { "short" } else { "long" };
                            samples.push(json!([kind, (at - said_at).as_secs_f64() * 1000.0]));
                            awaiting = None;
                        }
                        // Bot audio before the caller finished: the bot replied to part of it.
                        _ if (speaking.is_some() || awaiting.is_some()) && !overlapped => {
                            overlaps += 1;
                            overlapped = true;
                        }
                        _ => {}
                    }
                }
                Some(PeerEvent::Mark { at, .. }) => {
                    mark_tick = Some(at);
                    if speaking.is_none() && awaiting.is_none() {
                        answer_at = Some(at + PAUSE_BEFORE_ANSWER);
                    }
                }
                Some(PeerEvent::DoneSpeaking { at }) => {
                    if let Some(answer) = speaking.take() {
                        awaiting = Some((answer, at));
                    }
                }
                Some(PeerEvent::Closed) | None => break,
                Some(_) => {}
            },
            _ = sleep_until_opt(answer_at) => {
                answer_at = None;
                if let Some(audio) = answers.get(next_answer) {
                    speaking = Some(next_answer);
                    overlapped = false;
                    next_answer += 1;
                    let _ = call.peer.commands.send(PeerCommand::Speak(audio.clone())).await;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                error = json!("the call outlasted the bench's limit");
                let _ = call.peer.commands.send(PeerCommand::HangUp).await;
                break;
            }
        }
    }
    if awaiting.is_some() {
        unanswered += 1;
    }
    json!({"call_id": call.call_id, "samples": samples, "overlaps": overlaps, "unanswered": unanswered,
           "answers_said": next_answer, "error": error})
}

/// One call of the media test: a silent caller listens to the line and counts late frames.
async fn media_call(side: &TwilioSide, client: &reqwest::Client, call_sid: &str, level_start: Instant) -> Value {
    let mut call = match side.ring(client, CALLER, MEDIA_NUMBER, call_sid).await {
        Ok(call) => call,
        Err(error) => return json!({"error": error.to_string()}),
    };
    let mut line_started = false;
    let mut line_done = false;
    let mut mark_seen = false;
    let (mut played, mut underruns, mut received, mut late) = (0u64, 0u64, 0u64, 0u64);
    let mut last_arrival: Option<Instant> = None;
    let mut max_gap = Duration::ZERO;
    // When each late arrival came, in seconds since the first call of the level was rung.
    let mut late_at: Vec<f64> = Vec::new();
    let deadline = Instant::now() + MAX_CALL;
    let mut error = Value::Null;
    loop {
        tokio::select! {
            event = call.peer.events.recv() => match event {
                Some(PeerEvent::MediaReceived { at }) if !line_done => {
                    received += 1;
                    if let Some(previous) = last_arrival {
                        let gap = at - previous;
                        max_gap = max_gap.max(gap);
                        if gap > LATE_GAP {
                            late += 1;
                            late_at.push((at - level_start).as_secs_f64());
                        }
                    }
                    last_arrival = Some(at);
                }
                Some(PeerEvent::Heard { audible, .. }) if !line_done => {
                    if audible {
                        line_started = true;
                        played += 1;
                    } else if line_started && !mark_seen {
                        underruns += 1;
                    }
                    // The peer reports a tick's marks before its frame: the frame after the
                    // mark is the line's last (or the first silence after it).
                    line_done = mark_seen;
                }
                Some(PeerEvent::Mark { .. }) => mark_seen = true,
                Some(PeerEvent::Closed) | None => break,
                Some(_) => {}
            },
            _ = tokio::time::sleep_until(deadline) => {
                error = json!("the call outlasted the bench's limit");
                let _ = call.peer.commands.send(PeerCommand::HangUp).await;
                break;
            }
        }
    }
    if !mark_seen && error.is_null() {
        error = json!("the stream closed before the line's mark");
    }
    json!({"call_id": call.call_id, "played": played, "underruns": underruns, "received": received,
           "late": late, "late_at": late_at, "max_gap_ms": max_gap.as_secs_f64() * 1000.0, "error": error})
}
