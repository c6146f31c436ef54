//! Speech to text on phone speech from callers whose voices are not the bot's: word error rate
//! and latency per whisper model, with and without the question as whisper's prompt.
//!
//! `cargo bench --bench stt_phone`                      every model present in models/
//! `cargo bench --bench stt_phone -- tiny.en base-q5_1`  only these (`--stt-model` names)
//! `STT_BENCH_VERBOSE=1 cargo bench --bench stt_phone`   also every wrong transcript
//! `cargo bench --bench stt_phone -- --clean tiny.en`    the same voices on a clean line (-20 dBFS,
//!     no hiss, no loss; still G.711 at 8 kHz): what the line costs, apart from the voices
//!
//! The set: 62 short call-center answers, each after the question it answers, said by three of
//! the ten voices of `tests/common/voices.rs` (espeak-ng variants and the four flite voices;
//! 186 clips; 9 of the answers have a 300-800 ms pause mid-sentence), each through its own phone
//! line (`Channel::random`: -35..-15 dBFS, hiss at 15-25 dB SNR, 1-2 % lost packets, G.711
//! µ-law at 8 kHz), with 200 ms of line before the speech and 300 ms after it as the
//! endpointer cuts a turn, then resampled to 16 kHz. Every model hears the same clips, one at a
//! time (one call's turns), on the pool the gateway uses on 2 cores (`SttConfig::for_cores(2)`:
//! 2 workers x 1 thread). A noise set (hiss and clicks, no speech) checks that the prompt is
//! not written out when there is nothing to hear. Needs `bash models/fetch.sh` (`--base` for
//! the base models), `espeak-ng` and `flite`.

#[path = "../tests/common/voices.rs"]
mod voices;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use callcenter::speech::stt::{SttConfig, SttPool, normalize_words};
use callcenter::speech::{ModelPaths, SttModel};
use voices::{Channel, heard_at_16k, say_parts, through_phone};

/// (the question just asked, answers to it; "|" is a pause mid-sentence).
const SET: [(&str, &[&str]); 6] = [
    (
        "Hi, this is Alex from Acme. Is now a good time to talk?",
        &[
            "Yes, sure,|go ahead.",
            "Not right now, no.",
            "Ring me back in an hour.",
            "Yep, I have got time.",
            "Sorry, I am busy at the moment.",
            "Yes, I have a few minutes.",
            "No, I am driving right now.",
            "Well,|I guess so.",
            "Can you call me tomorrow morning?",
            "Call me back after five.",
            "Now is fine.",
            "Not really, I am at work.",
        ],
    ),
    (
        "Am I speaking with John Smith?",
        &[
            "Yes, speaking.",
            "Yes, this is John.",
            "No, you have the wrong number.",
            "Who is calling, please?",
            "He is not here right now.",
            "That is me.",
            "No,|this is his wife.",
            "Speaking.",
        ],
    ),
    (
        "Would you like to hear about our new premium plan?",
        &[
            "Sure, why not.",
            "Go for it.",
            "Of course,|tell me more.",
            "I'll pass.",
            "Thanks, but no thanks.",
            "Absolutely not.",
            "I don't want it.",
            "No, not today,|thanks.",
            "Maybe,|how much does it cost?",
            "I am not interested.",
            "Yes, I would like that.",
            "Please take me off your list.",
            "Stop calling me.",
            "Do not call this number again.",
            "I already have a plan.",
            "What is the price?",
        ],
    ),
    (
        "So you would like to upgrade to the premium plan. Is that correct?",
        &[
            "Yes, that is correct.",
            "That's right.",
            "No, that is wrong.",
            "Yes,|please go ahead.",
            "Hold on,|let me think.",
            "I need to talk to my wife first.",
            "Can you repeat that?",
            "Sorry, what did you say?",
            "I did not catch that.",
            "Could you say that again, please?",
        ],
    ),
    (
        "When would be a better time to call you back?",
        &[
            "Tomorrow at three in the afternoon.",
            "Next Monday morning.",
            "Any time after six.",
            "Call me on Friday.",
            "In about two hours.",
            "Try again next week.",
            "I am free this evening.",
            "Around lunch time tomorrow.",
        ],
    ),
    (
        "Thank you for your time. Is there anything else I can help you with?",
        &[
            "No, that is all.|Thank you.",
            "Thank you for your time. Goodbye.",
            "No thanks, bye.",
            "Yes, I have a question about my bill.",
            "I would like to speak to a person.",
            "Can I talk to a manager?",
            "That's everything, thanks.",
            "Have a nice day.",
        ],
    ),
];

/// Voices per answer: each answer is said by this many of the ten, in turn.
const VOICES_PER_ANSWER: usize = 3;

/// One recording: who said what after which question, and what the gateway's STT gets.
struct Clip {
    voice: String,
    question: &'static str,
    said: String,
    audio_16k: Vec<f32>,
}

/// A phone turn as the endpointer hands it over: line before and after the speech.
fn phone_turn(speech: &[i16], channel: &Channel) -> Vec<f32> {
    let (before, after) = (1_600, 2_400); // 200 ms, 300 ms at 8 kHz
    let mut padded = vec![0i16; before];
    padded.extend_from_slice(speech);
    padded.resize(padded.len() + after, 0);
    heard_at_16k(&through_phone(&padded, channel))
}

fn clips(clean: bool) -> Vec<Clip> {
    let voices = voices::voices();
    let mut clips = Vec::new();
    let answers = SET.iter().flat_map(|(question, answers)| answers.iter().map(move |a| (*question, *a)));
    for (index, (question, answer)) in answers.enumerate() {
        let parts: Vec<&str> = answer.split('|').collect();
        for k in 0..VOICES_PER_ANSWER {
            let voice = &voices[(index + k * 3 + k / 2) % voices.len()];
            let seed = (index * VOICES_PER_ANSWER + k) as u64;
            // A pause of 300-800 ms, different for each clip.
            let pause = Duration::from_millis(300 + seed * 137 % 501);
            let speech = say_parts(voice, &parts, &vec![pause; parts.len() - 1])
                .unwrap_or_else(|e| panic!("{}: {e:#}", voice.name));
            clips.push(Clip {
                voice: voice.name.clone(),
                question,
                said: parts.join(" "),
                audio_16k: phone_turn(
                    &speech,
                    &if clean { Channel { seed, ..Channel::clean() } } else { Channel::random(seed) },
                ),
            });
        }
    }
    clips
}

/// Line noise and clicks with no speech in them, above the pool's -50 dBFS silence gate.
fn noise_clips() -> Vec<Vec<f32>> {
    let mut clips = Vec::new();
    for (i, noise_dbfs) in [-45.0f32, -40.0, -35.0, -30.0].into_iter().enumerate() {
        for (j, secs) in [0.6f64, 1.2, 2.0].into_iter().enumerate() {
            let mut line = vec![0i16; (secs * 8_000.0) as usize];
            // A click or a breath in every other clip: 40 ms of a loud decaying pulse train.
            if j % 2 == 1 {
                let at = line.len() / 3;
                for (n, s) in line[at..at + 320].iter_mut().enumerate() {
                    *s = if n % 40 == 0 { (12_000.0 * (-(n as f32) / 120.0).exp()) as i16 } else { 0 };
                }
            }
            let seed = 1_000 + (i * 3 + j) as u64;
            // A silent clip's level is its noise's: the speech level minus the SNR.
            let channel = Channel { level_dbfs: noise_dbfs + 20.0, snr_db: Some(20.0), loss: 0.01, seed };
            clips.push(heard_at_16k(&through_phone(&line, &channel)));
        }
    }
    clips
}

/// Words compared after spelling out digits and contractions the same way on both sides
/// (whisper writes "3" or "three", "I'll" or "I will").
fn words(text: &str) -> Vec<String> {
    const SAME: [(&str, &str); 16] = [
        ("i'll", "i will"),
        ("don't", "do not"),
        ("i'm", "i am"),
        ("that's", "that is"),
        ("it's", "it is"),
        ("he's", "he is"),
        ("i've", "i have"),
        ("what's", "what is"),
        ("okay", "ok"),
        ("2", "two"),
        ("3", "three"),
        ("5", "five"),
        ("6", "six"),
        ("3pm", "three pm"),
        ("lunchtime", "lunch time"),
        ("anytime", "any time"),
    ];
    normalize_words(text)
        .into_iter()
        .flat_map(|w| {
            let spelled = SAME.iter().find(|(from, _)| *from == w).map_or(w.as_str(), |(_, to)| to);
            spelled.split(' ').map(str::to_owned).collect::<Vec<_>>()
        })
        .collect()
}

/// Word edits (substitutions, deletions, insertions) from `reference` to `hypothesis`.
fn edits(reference: &[String], hypothesis: &[String]) -> usize {
    let mut previous: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut current = vec![i + 1; hypothesis.len() + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            current[j + 1] = (previous[j] + usize::from(r != h)).min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[hypothesis.len()]
}

/// Errors and timings of one configuration, overall and per voice.
#[derive(Default)]
struct Tally {
    edits: usize,
    words: usize,
    wrong_clips: usize,
    clips: usize,
    millis: Vec<f64>,
}

impl Tally {
    fn add(&mut self, edits: usize, words: usize, millis: f64) {
        self.edits += edits;
        self.words += words;
        self.wrong_clips += usize::from(edits > 0);
        self.clips += 1;
        self.millis.push(millis);
    }

    fn wer(&self) -> f64 {
        self.edits as f64 / self.words.max(1) as f64
    }

    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.millis.clone();
        sorted.sort_by(f64::total_cmp);
        sorted.get(((sorted.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0)
    }
}

struct Run {
    overall: Tally,
    per_voice: BTreeMap<String, Tally>,
    /// Noise clips that came back with text, and those whose text shares a word with the prompt.
    noise_with_text: usize,
    noise_echoing: usize,
    cpu_ms_per_clip: f64,
}

/// CPU time of the whole process so far (all threads), from /proc/self/stat.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks: u64 = fields.get(11..13).map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

fn run(stt: &SttPool, clips: &[Clip], noise: &[Vec<f32>], prompted: bool, verbose: bool) -> Run {
    let prompt = |question: &str| prompted.then(|| question.to_owned());
    let (mut overall, mut per_voice) = (Tally::default(), BTreeMap::<String, Tally>::new());
    let cpu_start = process_cpu();
    for clip in clips {
        let start = Instant::now();
        let heard = stt.transcribe_blocking_with_prompt(clip.audio_16k.clone(), prompt(clip.question)).unwrap();
        let millis = start.elapsed().as_secs_f64() * 1000.0;
        let (reference, hypothesis) = (words(&clip.said), words(&heard.text));
        let wrong = edits(&reference, &hypothesis);
        if verbose && wrong > 0 {
            println!("    {}: {:?} -> {:?}", clip.voice, clip.said, heard.text);
        }
        overall.add(wrong, reference.len(), millis);
        per_voice.entry(clip.voice.clone()).or_default().add(wrong, reference.len(), millis);
    }
    let cpu_ms_per_clip = (process_cpu() - cpu_start).as_secs_f64() * 1000.0 / clips.len() as f64;
    let (mut noise_with_text, mut noise_echoing) = (0, 0);
    for (i, audio) in noise.iter().enumerate() {
        let question = SET[i % SET.len()].0;
        let heard = stt.transcribe_blocking_with_prompt(audio.clone(), prompt(question)).unwrap();
        let said = words(&heard.text);
        if !said.is_empty() {
            noise_with_text += 1;
            let asked = words(question);
            noise_echoing += usize::from(said.iter().any(|w| w.len() > 3 && asked.contains(w)));
            if verbose {
                println!("    noise {i}: {:?}", heard.text);
            }
        }
    }
    Run { overall, per_voice, noise_with_text, noise_echoing, cpu_ms_per_clip }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let wanted: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let verbose = std::env::var_os("STT_BENCH_VERBOSE").is_some();
    let paths = match std::env::var_os("CALLCENTER_MODELS_DIR") {
        Some(dir) if !dir.is_empty() => ModelPaths::new(dir),
        _ => ModelPaths::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models")),
    };
    let models: Vec<SttModel> = if wanted.is_empty() {
        SttModel::all().iter().copied().filter(|m| m.require(&paths).is_ok()).collect()
    } else {
        wanted.iter().map(|name| SttModel::named(name).expect("a known model")).collect()
    };
    let started = Instant::now();
    let clean = args.iter().any(|a| a == "--clean");
    let clips = clips(clean);
    let noise = noise_clips();
    let per_voice_count = clips.iter().filter(|c| c.voice == clips[0].voice).count();
    println!(
        "{} clips ({} answers x {VOICES_PER_ANSWER} voices, ~{per_voice_count} per voice, {} line), {} noise clips; synthesized in {:.1} s",
        clips.len(),
        clips.len() / VOICES_PER_ANSWER,
        if clean { "clean" } else { "noisy" },
        noise.len(),
        started.elapsed().as_secs_f64()
    );
    let mut runs: Vec<(String, Run)> = Vec::new();
    for model in &models {
        let path = model.require(&paths).unwrap_or_else(|e| panic!("{e}"));
        let stt = SttPool::new(&path, SttConfig::for_cores(2)).expect("the model loads");
        // One untimed pass warms the caches and the allocator.
        let _ = stt.transcribe_blocking(clips[0].audio_16k.clone());
        for prompted in [false, true] {
            let label = format!("{model}{}", if prompted { " + prompt" } else { "" });
            if verbose {
                println!("  {label}:");
            }
            let run = run(&stt, &clips, &noise, prompted, verbose);
            eprintln!("{label}: WER {:.3}, p50 {:.0} ms", run.overall.wer(), run.overall.percentile(0.5));
            runs.push((label, run));
        }
    }
    print_tables(&runs, noise.len());
}

fn print_tables(runs: &[(String, Run)], noise: usize) {
    println!(
        "\n| model | WER | clips with an error | p50 | p95 | max | CPU per clip | noise clips with text | ... echoing the prompt |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (label, run) in runs {
        let t = &run.overall;
        println!(
            "| {label} | {:.3} | {} / {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {} / {noise} | {} |",
            t.wer(),
            t.wrong_clips,
            t.clips,
            t.percentile(0.5),
            t.percentile(0.95),
            t.percentile(1.0),
            run.cpu_ms_per_clip,
            run.noise_with_text,
            run.noise_echoing
        );
    }
    let Some((_, first)) = runs.first() else { return };
    println!("\nWER per voice:\n");
    println!("| voice | {} |", runs.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>().join(" | "));
    println!("|---|{}", "---|".repeat(runs.len()));
    for voice in first.per_voice.keys() {
        let cells: Vec<String> = runs.iter().map(|(_, r)| format!("{:.3}", r.per_voice[voice].wer())).collect();
        println!("| {voice} | {} |", cells.join(" | "));
    }
}
