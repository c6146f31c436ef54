//! Conversations with callers we did not write (issue 11), measured on the caller's side over
//! the real Twilio doors, as `benches/calls.rs` does: a server runs in this process (port 0,
//! SQLite, the real models, Twilio configured with a fake auth token); the callers run in a
//! child process (this binary again, mode `callers`) that rings our number through the signed
//! `/twilio/voice` webhook and opens the Media Stream its TwiML asks for (`TwilioSide::ring`).
//!
//! `cargo bench --bench conversation -- 1`        the whole test set, one call at a time
//! `cargo bench --bench conversation -- 5,10,20`  a share of it (the first `max(N, 10)` calls
//!     of the set) at 5, 10 and 20 calls at once
//! `CONVERSATION_BENCH_VERBOSE=1` also prints every call's transcript;
//! `CONVERSATION_BENCH_CALLS=N` runs only the first N calls of each level (a quick look).
//!
//! The test set is written here (`test_set`) and is not tuned to what the gateway gets right:
//! 160 answers to yes/no offer questions (yes, no, opt-out, callback with and without a time,
//! "repeat that", unclear, silence), a third of the spoken ones with a pause of 300-800 ms
//! inside, said by every voice of `tests/common/voices.rs` (espeak-ng and flite, never the
//! bot's Piper voice) through `through_phone` (level, hiss, µ-law, lost packets; one line per
//! call, seeded). The line's hiss goes on between utterances too, as on a real line. A call
//! opens with a long statement that some callers interrupt, with a backchannel ("uh-huh") or
//! an objection ("Sorry, who is this?", "I'm not interested"), and then asks up to six
//! questions; a yes or a no moves on to the next, an opt-out or a callback ends the call.
//!
//! The caller follows the conversation by reading the live transcript (`GET
//! /v1/calls/{id}/transcript`) after each of the bot's lines, as a person understands what
//! they hear: a new question gets the next answer of the set, the same question asked again
//! (after "repeat that", an unclear answer or silence) or "was that a yes?" gets a plain
//! follow-up ("Yes, please." / "No, thank you."), "when should we call?" gets a time.
//! Follow-ups are not scored.
//!
//! Scored per answer, on the caller's clock (its 20 ms ticks):
//! - talk-over: the first audible frame of the bot heard after the answer's first voiced frame
//!   went out comes no later than its last voiced frame (pauses inside the answer included);
//! - intent: the bot's next line in the final transcript (and the call's outcome for opt-outs
//!   and callbacks) is what the intent requires (`judge_answer`);
//! - voice-to-voice: last voiced frame sent -> first audible reply frame heard, for spoken
//!   answers the bot did not talk over;
//! - pauses: whether the reply came inside the pause or after it but before the answer ended;
//! - false barge-ins: the statement cleared (`clear`) or stored `interrupted` when the caller
//!   only backchanneled, and any `clear` while the caller had made no sound for 1.5 s;
//! - STT and end-of-turn time per turn: the server's `/metrics` histograms, before and after.
//!
//! Needs the models (`bash models/fetch.sh`) and `espeak-ng` and `flite` (`scripts/setup.sh`).

#[path = "../tests/common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use callcenter::config::TwilioConfig;
use callcenter::dialogue::Phrases;
use callcenter::speech::engine::SpeechEngine;
use callcenter::telephony::simulator::peer::{PeerCommand, PeerEvent};
use callcenter::telephony::simulator::twilio_side::{InboundCall, TwilioSide};
use common::voices::{Channel, heard_at_16k, say, through_phone, voices};
use common::{Backend, TestApp, models_dir, start_app};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

const USAGE: &str = "usage: cargo bench --bench conversation -- N[,N...]   (1: the whole set, one call at a time; \
5,10,20: the first max(N, 10) calls of the set, N at once)";

const AUTH_TOKEN: &str = "bench-auth-token";
const ACCOUNT_SID: &str = "AC0000conversation";
const PUBLIC_URL: &str = "https://gw.example.com";
const NUMBER: &str = "+14155550111";
const CALLER: &str = "+14155550100";

// ---- the template ----

/// Said first, long enough (about 10 s) for a caller to interrupt it.
const STATEMENT: &str = "Hello, this is Nora from Brightside Energy. We are calling our customers because next \
winter's prices have just been announced, and we have a few ways to bring your bill down.";
/// The offers, asked in order; each comes in three versions, by how the one before was answered.
const QUESTIONS: [&str; 6] = [
    "Would you like to hear about our fixed-price plan?",
    "Shall we send you a quote by email?",
    "Can we book a free home energy check for you?",
    "Would you like to switch to paperless billing?",
    "Shall I add you to our smart thermostat trial?",
    "Would you like a reminder before your contract renews?",
];

/// Which way the dialogue went after a question; the next line says it, so the transcript shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Branch {
    Yes,
    No,
    /// Still unclear after the re-prompt.
    Unclear,
}

impl Branch {
    const ALL: [Branch; 3] = [Branch::Yes, Branch::No, Branch::Unclear];

    fn key(self) -> &'static str {
        match self {
            Branch::Yes => "yes",
            Branch::No => "no",
            Branch::Unclear => "unclear",
        }
    }

    fn lead_in(self) -> &'static str {
        match self {
            Branch::Yes => "Great.",
            Branch::No => "No problem.",
            Branch::Unclear => "Let's move on.",
        }
    }

    fn closing(self) -> &'static str {
        match self {
            Branch::Yes => "Great. We'll email you the details today. Thank you for your time, goodbye.",
            Branch::No => "No problem. Thank you for your time, goodbye.",
            Branch::Unclear => "Thank you for your time, goodbye.",
        }
    }
}

/// The line that follows question `k` answered `branch`: the next question, or a closing.
fn line_after(k: usize, branch: Branch) -> String {
    match QUESTIONS.get(k + 1) {
        Some(question) => format!("{} {question}", branch.lead_in()),
        None => branch.closing().to_owned(),
    }
}

fn step_id(k: usize, branch: Branch) -> String {
    if k == 0 { "q0".into() } else { format!("q{k}-{}", branch.key()) }
}

/// The statement, then question 0, then each later question in three versions (reached by
/// yes, no, unclear), then three closings. "I'm not interested" over the statement goes to the
/// "no" closing.
fn template_steps() -> Vec<Value> {
    let mut steps = vec![json!({"id": "statement", "type": "information", "content": STATEMENT,
                                "next": {"no": "close-no"}})];
    for (k, question) in QUESTIONS.iter().enumerate() {
        let target = |b: Branch| if k + 1 < QUESTIONS.len() { step_id(k + 1, b) } else { format!("close-{}", b.key()) };
        let next = json!({"yes": target(Branch::Yes), "no": target(Branch::No), "unclear": target(Branch::Unclear)});
        let versions: &[Branch] = if k == 0 { &[Branch::Yes] } else { &Branch::ALL };
        for &b in versions {
            let content = if k == 0 { (*question).to_owned() } else { format!("{} {question}", b.lead_in()) };
            steps.push(json!({"id": step_id(k, b), "type": "question", "content": content, "next": next}));
        }
    }
    for b in Branch::ALL {
        steps.push(json!({"id": format!("close-{}", b.key()), "type": "closing", "content": b.closing()}));
    }
    steps
}

// ---- the test set ----

/// What an answer means, as its speaker means it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Intent {
    Yes,
    No,
    OptOut,
    CallbackAt,
    CallbackLater,
    Repeat,
    Unclear,
    Silence,
}

/// One way to say an answer: its parts are said with a pause between them. `hedged`: a
/// lukewarm answer ("I guess so") that the bot may rightly confirm before taking it.
struct Phrase {
    parts: &'static [&'static str],
    hedged: bool,
}

const fn plain(parts: &'static [&'static str]) -> Phrase {
    Phrase { parts, hedged: false }
}

const fn hedged(parts: &'static [&'static str]) -> Phrase {
    Phrase { parts, hedged: true }
}

const YES: &[Phrase] = &[
    plain(&["Yes, please."]),
    plain(&["Yeah, that sounds good."]),
    plain(&["Sure, why not."]),
    plain(&["Yes, I'd like that."]),
    plain(&["Absolutely."]),
    plain(&["Okay, let's do it."]),
    plain(&["Yep, go ahead."]),
    plain(&["That would be great, yes."]),
    plain(&["Of course."]),
    plain(&["Go for it."]),
    plain(&["Definitely."]),
    plain(&["Yes, that works for me."]),
    plain(&["Yes, sure,", "go ahead."]),
    hedged(&["Well...", "I guess so."]),
    plain(&["Yeah,", "that would actually help."]),
    plain(&["Um,", "yes please."]),
    plain(&["Okay,", "let's do that."]),
    plain(&["Oh,", "that sounds nice, yes."]),
    hedged(&["Hmm...", "I suppose that's fine."]),
    plain(&["Let me think...", "yes, why not."]),
];

const NO: &[Phrase] = &[
    plain(&["No, thank you."]),
    plain(&["No thanks, I'm happy with what I have."]),
    plain(&["Not really, no."]),
    plain(&["Nope."]),
    plain(&["I'll pass, thanks."]),
    plain(&["No, I don't need that."]),
    plain(&["Thanks, but no thanks."]),
    plain(&["No, that's not for me."]),
    plain(&["I don't think so."]),
    plain(&["Absolutely not."]),
    plain(&["No, I'm fine."]),
    plain(&["I don't want it."]),
    plain(&["No, not today,", "thanks."]),
    plain(&["Um...", "no, I don't think so."]),
    plain(&["Actually,", "no, I'll skip that."]),
    plain(&["Not right now,", "no."]),
    plain(&["No,", "we already have one."]),
    plain(&["Let me see...", "no, not for me."]),
    hedged(&["Hmm,", "probably not."]),
    plain(&["Sorry,", "I'm going to say no."]),
];

const OPT_OUT: &[Phrase] = &[
    plain(&["Please stop calling me."]),
    plain(&["Take me off your list."]),
    plain(&["Don't call this number again."]),
    plain(&["Remove my number, please."]),
    plain(&["Put me on your do not call list."]),
    plain(&["Never call me again."]),
    plain(&["I don't want any more calls from you."]),
    plain(&["Look,", "just stop calling me."]),
    plain(&["Please,", "take me off your calling list."]),
    plain(&["I've told you before...", "don't call me again."]),
];

const CALLBACK_AT: &[Phrase] = &[
    plain(&["Can you call me back tomorrow at ten?"]),
    plain(&["Call me back in an hour."]),
    plain(&["Try me again on Monday morning."]),
    plain(&["Could you ring back this evening?"]),
    plain(&["Give me a call in thirty minutes."]),
    plain(&["I'm driving right now,", "call me back at five."]),
    plain(&["Sorry, I'm at work,", "can you call tomorrow morning?"]),
    plain(&["I'm busy,", "try again on Friday afternoon."]),
];

const CALLBACK_LATER: &[Phrase] = &[
    plain(&["Can you call me back later?"]),
    plain(&["This isn't a good time."]),
    plain(&["Could you call back some other time?"]),
    plain(&["Can we do this another day?"]),
    plain(&["Now's not a good time, sorry."]),
    plain(&["Sorry,", "I can't talk right now."]),
    plain(&["I'm in a meeting,", "call me back."]),
    plain(&["Oh, I'm just heading out,", "can you try later?"]),
];

const REPEAT: &[Phrase] = &[
    plain(&["Sorry, can you repeat that?"]),
    plain(&["What was that?"]),
    plain(&["Could you say that again?"]),
    plain(&["Pardon?"]),
    plain(&["Come again?"]),
    plain(&["Sorry, I didn't hear you."]),
    plain(&["Sorry,", "could you repeat the question?"]),
    plain(&["Hang on...", "what did you say?"]),
];

const UNCLEAR: &[Phrase] = &[
    plain(&["How much does it cost?"]),
    plain(&["My husband handles all of that."]),
    plain(&["It depends."]),
    plain(&["I have no idea."]),
    plain(&["Is this about my bill?"]),
    plain(&["The kids are making a lot of noise here."]),
    plain(&["Hmm,", "I'd have to think about it."]),
    plain(&["Well,", "it depends on the price."]),
    plain(&["I mean...", "I'm not sure."]),
    plain(&["Maybe,", "I don't know."]),
];

const SILENCE: &[Phrase] = &[plain(&[])];

/// Over the statement: sounds that only say "I'm listening".
const BACKCHANNELS: [&str; 6] = ["Uh-huh.", "Mm-hmm.", "Okay.", "Right.", "Yeah.", "I see."];
/// Over the statement: a question that stops it (the statement is then said again).
const WHO_IS_THIS: [&str; 3] = ["Sorry, who is this?", "Wait, who's calling?", "Hold on, what company is this?"];
/// Over the statement: a refusal that ends the call.
const NOT_INTERESTED: [&str; 4] =
    ["I'm not interested.", "Not interested, thanks.", "No thanks, I'm not interested.", "Sorry, I'm not interested."];

/// Pause lengths inside answers, dealt out in turn to the answers said in two parts; 700 ms,
/// the target's length, comes up twice as often as the others.
const PAUSES_MS: [u32; 7] = [300, 400, 500, 600, 700, 800, 700];
/// Shuffles the set and deals it to the voices.
const SET_SEED: u64 = 11;

impl Intent {
    const ALL: [Intent; 8] = [
        Intent::Yes,
        Intent::No,
        Intent::OptOut,
        Intent::CallbackAt,
        Intent::CallbackLater,
        Intent::Repeat,
        Intent::Unclear,
        Intent::Silence,
    ];

    fn name(self) -> &'static str {
        match self {
            Intent::Yes => "yes",
            Intent::No => "no",
            Intent::OptOut => "opt-out",
            Intent::CallbackAt => "callback at a time",
            Intent::CallbackLater => "callback, no time",
            Intent::Repeat => "repeat that",
            Intent::Unclear => "unclear",
            Intent::Silence => "silence",
        }
    }

    /// How many answers of this intent the set holds (160 in all).
    fn count(self) -> usize {
        match self {
            Intent::Yes => 44,
            Intent::No => 40,
            Intent::OptOut => 12,
            Intent::CallbackAt | Intent::CallbackLater => 9,
            Intent::Repeat => 14,
            Intent::Unclear | Intent::Silence => 16,
        }
    }

    fn phrases(self) -> &'static [Phrase] {
        match self {
            Intent::Yes => YES,
            Intent::No => NO,
            Intent::OptOut => OPT_OUT,
            Intent::CallbackAt => CALLBACK_AT,
            Intent::CallbackLater => CALLBACK_LATER,
            Intent::Repeat => REPEAT,
            Intent::Unclear => UNCLEAR,
            Intent::Silence => SILENCE,
        }
    }

    fn ends_call(self) -> bool {
        matches!(self, Intent::OptOut | Intent::CallbackAt | Intent::CallbackLater)
    }
}

/// One answer of the set: who says what, and the pause inside it (0: none).
struct Item {
    id: usize,
    intent: Intent,
    phrase: &'static Phrase,
    voice: usize,
    pause_ms: u32,
}

impl Item {
    /// The words as said, the pause written in: "Well... (700 ms) I guess so."
    fn text(&self) -> String {
        if self.phrase.parts.is_empty() {
            return "(silence)".into();
        }
        self.phrase.parts.join(&format!(" ({} ms) ", self.pause_ms))
    }
}

/// Every intent's phrases dealt out in turn up to its count, shuffled, then dealt to the voices
/// in turn, so each voice says 16 answers of mixed intents.
fn test_set() -> Vec<Item> {
    let mut drawn: Vec<(Intent, &'static Phrase)> = Intent::ALL
        .iter()
        .flat_map(|&intent| {
            let phrases = intent.phrases();
            (0..intent.count()).map(move |j| (intent, &phrases[j % phrases.len()]))
        })
        .collect();
    drawn.shuffle(&mut StdRng::seed_from_u64(SET_SEED));
    let voice_count = voices().len();
    let mut paused = 0;
    drawn
        .into_iter()
        .enumerate()
        .map(|(id, (intent, phrase))| {
            let pause_ms = if phrase.parts.len() > 1 {
                paused += 1;
                PAUSES_MS[(paused - 1) % PAUSES_MS.len()]
            } else {
                0
            };
            Item { id, intent, phrase, voice: id % voice_count, pause_ms }
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum InterruptKind {
    Backchannel,
    WhoIsThis,
    NotInterested,
}

impl InterruptKind {
    fn name(self) -> &'static str {
        match self {
            InterruptKind::Backchannel => "backchannel",
            InterruptKind::WhoIsThis => "objection: who is this?",
            InterruptKind::NotInterested => "objection: not interested",
        }
    }
}

/// Something said over the statement, `after_ms` after its first audible frame.
#[derive(Clone, Copy, Debug)]
struct Interrupt {
    kind: InterruptKind,
    text: &'static str,
    after_ms: u64,
}

/// One call of the set: a voice, the answers it gives in order (an opt-out or a callback
/// last), and what it says over the statement.
#[derive(Clone, Debug)]
struct CallPlan {
    index: usize,
    voice: usize,
    items: Vec<usize>,
    interrupt: Option<Interrupt>,
}

impl CallPlan {
    /// Seeds the call's phone line.
    fn seed(&self) -> u64 {
        1000 + self.index as u64
    }
}

/// A voice's answers split into calls: as few as hold them, each with at most one answer
/// that ends the call, put last.
fn calls_of_voice(set: &[Item], voice: usize) -> Vec<Vec<usize>> {
    let (ending, going_on): (Vec<&Item>, Vec<&Item>) =
        set.iter().filter(|i| i.voice == voice).partition(|i| i.intent.ends_call());
    let mut n = ending.len().max(1);
    // A call that ends with an opt-out or a callback has one question less for the others.
    while going_on.len() > QUESTIONS.len() * n - ending.len() {
        n += 1;
    }
    let mut calls = vec![Vec::new(); n];
    for (j, item) in going_on.iter().enumerate() {
        calls[j % n].push(item.id);
    }
    // Round robin fills the first calls most: the ending answers go to the last ones.
    for (j, item) in ending.iter().enumerate() {
        calls[n - ending.len() + j].push(item.id);
    }
    calls
}

/// The calls of the set, voices taken in turn (so any first share of them has every voice),
/// with four short "not interested" calls among them. Every other call backchannels over the
/// statement, every fourth asks who is calling.
fn plan_calls(set: &[Item]) -> Vec<CallPlan> {
    let voice_count = voices().len();
    let by_voice: Vec<Vec<Vec<usize>>> = (0..voice_count).map(|v| calls_of_voice(set, v)).collect();
    let rounds = by_voice.iter().map(Vec::len).max().unwrap_or(0);
    let mut calls: Vec<(usize, Vec<usize>, Option<&'static str>)> = Vec::new();
    for round in 0..rounds {
        for (voice, its_calls) in by_voice.iter().enumerate() {
            if let Some(items) = its_calls.get(round) {
                calls.push((voice, items.clone(), None));
            }
        }
    }
    for (k, text) in NOT_INTERESTED.iter().enumerate() {
        let at = (3 + 8 * k).min(calls.len());
        calls.insert(at, ((3 * k + 1) % voice_count, Vec::new(), Some(*text)));
    }
    calls
        .into_iter()
        .enumerate()
        .map(|(index, (voice, items, refusal))| {
            let after_ms = 2000 + (index as u64 * 613) % 2500;
            let interrupt = match refusal {
                Some(text) => Some(Interrupt { kind: InterruptKind::NotInterested, text, after_ms }),
                None if index.is_multiple_of(2) => Some(Interrupt {
                    kind: InterruptKind::Backchannel,
                    text: BACKCHANNELS[(index / 2) % BACKCHANNELS.len()],
                    after_ms,
                }),
                None if index % 4 == 1 => Some(Interrupt {
                    kind: InterruptKind::WhoIsThis,
                    text: WHO_IS_THIS[(index / 4) % WHO_IS_THIS.len()],
                    after_ms,
                }),
                None => None,
            };
            CallPlan { index, voice, items, interrupt }
        })
        .collect()
}

/// The plain answers a caller gives when asked again; not scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FollowUp {
    Yes,
    No,
    Time,
}

impl FollowUp {
    const ALL: [FollowUp; 3] = [FollowUp::Yes, FollowUp::No, FollowUp::Time];

    fn text(self) -> &'static str {
        match self {
            FollowUp::Yes => "Yes, please.",
            FollowUp::No => "No, thank you.",
            FollowUp::Time => "Tomorrow morning, please.",
        }
    }

    fn clip(self, voice: usize) -> String {
        format!("v{voice}-{self:?}")
    }

    /// What a caller says when asked again after answering `item`.
    fn after(item: &Item) -> FollowUp {
        match item.intent {
            Intent::Yes => FollowUp::Yes,
            Intent::Repeat | Intent::Unclear | Intent::Silence if item.id.is_multiple_of(2) => FollowUp::Yes,
            _ => FollowUp::No,
        }
    }
}

fn item_clip(item: usize, part: usize) -> String {
    format!("item-{item}-{part}")
}

fn interrupt_clip(call: usize) -> String {
    format!("interrupt-{call}")
}

/// Synthesizes every clip the calls need (8 kHz PCM, one file per part), two at a time.
fn prepare_clips(set: &[Item], plans: &[CallPlan], dir: &Path) -> anyhow::Result<()> {
    let voices = voices();
    let mut jobs: Vec<(String, usize, &str)> = Vec::new();
    for item in set {
        for (k, part) in item.phrase.parts.iter().enumerate() {
            jobs.push((item_clip(item.id, k), item.voice, part));
        }
    }
    for voice in 0..voices.len() {
        for follow_up in FollowUp::ALL {
            jobs.push((follow_up.clip(voice), voice, follow_up.text()));
        }
    }
    for plan in plans {
        if let Some(interrupt) = plan.interrupt {
            jobs.push((interrupt_clip(plan.index), plan.voice, interrupt.text));
        }
    }
    let next = AtomicUsize::new(0);
    let work = || -> anyhow::Result<()> {
        while let Some((name, voice, text)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
            let pcm = say(&voices[*voice], text)?;
            let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
            std::fs::write(dir.join(name), bytes)?;
        }
        Ok(())
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2).map(|_| scope.spawn(work)).collect();
        workers.into_iter().try_for_each(|w| w.join().map_err(|_| anyhow::anyhow!("a synthesis thread panicked"))?)
    })
}

fn read_pcm(path: &Path) -> anyhow::Result<Vec<i16>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect())
}

fn print_makeup(set: &[Item], plans: &[CallPlan]) {
    let spoken: Vec<&Item> = set.iter().filter(|i| i.intent != Intent::Silence).collect();
    let paused = spoken.iter().filter(|i| i.pause_ms > 0).count();
    println!("## Test set: {} answers in {} calls", set.len(), plans.len());
    for intent in Intent::ALL {
        let of: Vec<&Item> = set.iter().filter(|i| i.intent == intent).collect();
        let with_pause = of.iter().filter(|i| i.pause_ms > 0).count();
        println!(
            "- {}: {} answers ({} phrases, {with_pause} with a pause)",
            intent.name(),
            of.len(),
            intent.phrases().len()
        );
    }
    let mut lengths: BTreeMap<u32, usize> = BTreeMap::new();
    for item in set.iter().filter(|i| i.pause_ms > 0) {
        *lengths.entry(item.pause_ms).or_default() += 1;
    }
    let lengths: Vec<String> = lengths.iter().map(|(ms, n)| format!("{ms} ms x{n}")).collect();
    println!("- with a mid-sentence pause: {paused} of {} spoken answers ({})", spoken.len(), lengths.join(", "));
    let mut interrupts: BTreeMap<InterruptKind, usize> = BTreeMap::new();
    for plan in plans.iter().filter_map(|p| p.interrupt) {
        *interrupts.entry(plan.kind).or_default() += 1;
    }
    let interrupts: Vec<String> = interrupts.iter().map(|(k, n)| format!("{} x{n}", k.name())).collect();
    println!("- over the statement: {}", interrupts.join(", "));
    let names: Vec<String> = voices().into_iter().map(|v| v.name).collect();
    println!("- voices ({} answers each): {}", set.len() / names.len(), names.join("; "));
}

// ---- the server ----

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match args.first().map(String::as_str) {
        Some("callers") => runtime.block_on(callers(&args[1..])),
        Some(list) => {
            let levels: Vec<usize> = list
                .split(',')
                .map(|n| n.trim().parse::<usize>().ok().filter(|&n| n > 0))
                .collect::<Option<_>>()
                .with_context(|| format!("levels {list:?}: {USAGE}"))?;
            runtime.block_on(server(levels))
        }
        // `cargo test --all-targets` runs bench binaries without arguments: say how to run it.
        None => {
            eprintln!("{USAGE}");
            Ok(())
        }
    }
}

fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn one_minute_load() -> f64 {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().next().and_then(|l| l.parse().ok()).unwrap_or(f64::NAN)
}

/// The 1-minute load average every 10 s while a level runs: other engineers build on the
/// same two cores, and a level's numbers mean little without what else was running.
struct LoadSampler {
    samples: Arc<Mutex<Vec<f64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl LoadSampler {
    fn start() -> LoadSampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let into = samples.clone();
        let task = tokio::spawn(async move {
            loop {
                into.lock().expect("load samples").push(one_minute_load());
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
        });
        LoadSampler { samples, task }
    }

    /// "min / mean / max" of the samples.
    fn finish(self) -> String {
        self.task.abort();
        let samples = self.samples.lock().expect("load samples");
        let mean = samples.iter().sum::<f64>() / samples.len().max(1) as f64;
        let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
        let max = samples.iter().copied().fold(0.0, f64::max);
        format!("1-min load during the level min {min:.1} / mean {mean:.1} / max {max:.1}")
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

async fn get(app: &TestApp, path: &str) -> anyhow::Result<Value> {
    let response = app.client.get(format!("{}{path}", app.base)).bearer_auth(&app.key).send().await?;
    let status = response.status();
    if !status.is_success() {
        bail!("GET {path}: {status}");
    }
    Ok(response.json().await?)
}

async fn start_server() -> TestApp {
    // Registering the Twilio number asks IncomingPhoneNumbers: a local fake of Twilio's API.
    let account = common::fake_twilio::FakeAccount {
        sid: ACCOUNT_SID,
        token: AUTH_TOKEN,
        numbers: vec![NUMBER.into()],
        caller_ids: vec![],
    };
    let (api_base, _) = common::fake_twilio::fake_twilio_with(vec![account]).await;
    start_app(Backend::Sqlite, |config| {
        config.rate_limit_per_minute = 1_000_000;
        config.telephony.models_dir = models_dir();
        config.telephony.public_url = Some(PUBLIC_URL.into());
        config.telephony.max_concurrent_calls = 1000;
        config.telephony.twilio = Some(TwilioConfig {
            account_sid: ACCOUNT_SID.into(),
            auth_token: AUTH_TOKEN.into(),
            caller_id: None,
            api_base,
        });
    })
    .await
}

/// Starts the app, maps the number to the template, synthesizes the callers' clips, warms up
/// with one unmeasured call, then runs and reports each level.
async fn server(levels: Vec<usize>) -> anyhow::Result<()> {
    eprintln!("conversation bench: levels {levels:?}; load average {}", load_average());
    let app = start_server().await;
    let engine = app.state.calls.speech().await.context("loading the models")?;
    let template =
        post(&app, "/v1/templates", json!({"name": "conversation bench", "steps": template_steps()})).await?;
    let body = json!({"phone": NUMBER, "templateId": template["id"], "variables": {}, "carrier": "twilio"});
    post(&app, "/v1/phone-numbers", body).await?;

    let set = test_set();
    let plans = plan_calls(&set);
    print_makeup(&set, &plans);
    let files = tempfile::tempdir()?;
    let started = std::time::Instant::now();
    let dir = files.path().to_owned();
    let (set_for_synthesis, plans_for_synthesis) = (test_set(), plans.clone());
    tokio::task::spawn_blocking(move || prepare_clips(&set_for_synthesis, &plans_for_synthesis, &dir)).await??;
    eprintln!("callers' clips synthesized in {:.0} s", started.elapsed().as_secs_f64());

    check_smart_turn(&engine, &set, files.path()).await?;

    // One unmeasured call: the bot's lines reach the TTS cache, ONNX Runtime and whisper warm up.
    eprintln!("warm-up call (not measured)...");
    run_level(&app, files.path(), 1, &[0]).await?;
    // A quick look: only the first calls of each level.
    let limit = std::env::var("CONVERSATION_BENCH_CALLS").ok().and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
    let mut curve = Vec::new();
    for &n in &levels {
        let share = if n == 1 { plans.len() } else { n.max(10) };
        let calls: Vec<usize> = (0..share.min(plans.len()).min(limit)).collect();
        let load_before = load_average();
        let metrics_before = scrape(&app).await?;
        let started = std::time::Instant::now();
        let sampler = LoadSampler::start();
        let records = run_level(&app, files.path(), n, &calls).await?;
        let during = sampler.finish();
        let seconds = started.elapsed().as_secs_f64();
        let speech = scrape(&app).await?.since(&metrics_before);
        let load = format!("load average {load_before} before, {} after; {during}", load_average());
        let scores = score(&app, &set, &plans, &records).await?;
        let summary = report(n, &scores, &records, &speech, seconds, &load);
        curve.push((n, summary));
    }
    print_curve(&curve);
    Ok(())
}

/// What Smart Turn says, on an idle pool, of each spoken answer said whole and of the first
/// part of each answer with a pause, through a phone line, with 200 ms of silence before (the
/// endpointer's pre-roll) and after (the pause that asks the model): whether the model itself,
/// rather than the pipeline around it, ends turns early or holds them open.
async fn check_smart_turn(engine: &SpeechEngine, set: &[Item], dir: &Path) -> anyhow::Result<()> {
    // Per voice: whole answers judged complete, whole answers, first parts judged incomplete, first parts.
    let mut by_voice: BTreeMap<usize, [usize; 4]> = BTreeMap::new();
    let mut probabilities = Vec::new();
    for item in set.iter().filter(|i| !i.phrase.parts.is_empty()) {
        let channel = Channel::random(7000 + item.id as u64);
        let names: Vec<String> = (0..item.phrase.parts.len()).map(|k| item_clip(item.id, k)).collect();
        let whole = turn_complete(engine, dir, &names, item.pause_ms, &channel).await?;
        let counts = by_voice.entry(item.voice).or_default();
        counts[0] += usize::from(whole > 0.5);
        counts[1] += 1;
        probabilities.push(whole);
        if names.len() > 1 {
            let first = turn_complete(engine, dir, &names[..1], 0, &channel).await?;
            counts[2] += usize::from(first <= 0.5);
            counts[3] += 1;
        }
    }
    let names: Vec<String> = voices().into_iter().map(|v| v.name).collect();
    println!("\n## Smart Turn alone on the answers (idle pool, threshold 0.5)\n");
    println!(
        "| voice | whole answers judged complete | first parts (before the pause) judged incomplete |\n|---|---|---|"
    );
    let mut total = [0usize; 4];
    for (voice, counts) in &by_voice {
        println!("| {} | {}/{} | {}/{} |", names[*voice], counts[0], counts[1], counts[2], counts[3]);
        total.iter_mut().zip(counts).for_each(|(t, c)| *t += c);
    }
    println!("| **all** | {}/{} | {}/{} |", total[0], total[1], total[2], total[3]);
    probabilities.sort_by(f32::total_cmp);
    let median = probabilities.get(probabilities.len() / 2).copied().unwrap_or(f32::NAN);
    println!("Median probability of complete over the whole answers: {median:.2}");
    Ok(())
}

/// Smart Turn's probability that the clips `names` (joined by `pause_ms`) are a finished turn.
async fn turn_complete(
    engine: &SpeechEngine,
    dir: &Path,
    names: &[String],
    pause_ms: u32,
    channel: &Channel,
) -> anyhow::Result<f32> {
    const SILENCE: usize = 200 * 8;
    let mut pcm = vec![0i16; SILENCE];
    for (k, name) in names.iter().enumerate() {
        if k > 0 {
            pcm.resize(pcm.len() + pause_ms as usize * 8, 0);
        }
        pcm.extend(read_pcm(&dir.join(name))?);
    }
    pcm.resize(pcm.len() + SILENCE, 0);
    let heard = heard_at_16k(&through_phone(&pcm, channel));
    Ok(engine.turn.predict(heard).await?.probability)
}

/// Runs the calls `calls` of the set, `n` at a time, in a child process; waits until the
/// server has stored them all.
async fn run_level(app: &TestApp, files: &Path, n: usize, calls: &[usize]) -> anyhow::Result<Vec<CallRecord>> {
    eprintln!("level {n}: {} call(s), {n} at a time...", calls.len());
    let list: Vec<String> = calls.iter().map(usize::to_string).collect();
    let output = tokio::process::Command::new(std::env::current_exe()?)
        .args(["callers", &app.base, &app.key, &n.to_string(), &files.display().to_string(), &list.join(",")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        // `output()` would capture stderr too, hiding the callers' progress.
        .spawn()?
        .wait_with_output()
        .await?;
    if !output.status.success() {
        bail!("the callers' process failed: {}", output.status);
    }
    let records: Vec<CallRecord> =
        String::from_utf8_lossy(&output.stdout).lines().filter_map(|line| serde_json::from_str(line).ok()).collect();
    // The calls' records are written after their streams close.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while app.state.calls.active() > 0 {
        if std::time::Instant::now() > deadline {
            bail!("{} call(s) still running 120 s after the callers hung up", app.state.calls.active());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(records)
}

// ---- the server's metrics ----

/// The histograms (or summaries) of `/metrics` the report reads: (sum, count) by name.
#[derive(Default)]
struct Speech(BTreeMap<&'static str, (f64, f64)>);

/// Speech-to-text per turn (queue + whisper), the end-of-turn model per pause, and the
/// server's own reply latency (caller's last voiced frame in -> first reply frame out).
const METRICS: [&str; 3] = ["stt_latency_seconds", "turn_latency_seconds", "call_reply_latency_seconds"];

async fn scrape(app: &TestApp) -> anyhow::Result<Speech> {
    let text = app.client.get(format!("{}/metrics", app.base)).send().await?.text().await?;
    let read = |name: &str, suffix: &str| -> Option<f64> {
        let wanted = format!("{name}{suffix}");
        let values: Vec<f64> = text
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix(&wanted)?;
                // `name_sum 1.5` or `name_sum{label="x"} 1.5`
                let value = if rest.starts_with('{') { rest.split_once('}')?.1 } else { rest };
                value.strip_prefix(' ')?.trim().parse::<f64>().ok()
            })
            .collect();
        (!values.is_empty()).then(|| values.iter().sum())
    };
    let mut speech = Speech::default();
    for name in METRICS {
        if let (Some(sum), Some(count)) = (read(name, "_sum"), read(name, "_count")) {
            speech.0.insert(name, (sum, count));
        }
    }
    Ok(speech)
}

impl Speech {
    fn since(&self, before: &Speech) -> Speech {
        let delta = self.0.iter().map(|(name, (sum, count))| {
            let (s0, c0) = before.0.get(name).copied().unwrap_or_default();
            (*name, (sum - s0, count - c0))
        });
        Speech(delta.collect())
    }

    fn describe(&self, name: &str) -> String {
        match self.0.get(name) {
            Some((sum, count)) if *count > 0.0 => format!("mean {:.0} ms over {count}", sum / count * 1000.0),
            Some(_) => "no samples".into(),
            None => "metric absent".into(),
        }
    }
}

// ---- scoring ----

#[derive(Debug, Deserialize)]
struct Turn {
    speaker: String,
    text: String,
    #[serde(default)]
    interrupted: bool,
}

/// What the server stored for a call.
struct Stored {
    turns: Vec<Turn>,
    outcome: String,
}

impl Stored {
    /// Indices (into `turns`) of the bot's lines.
    fn bot_lines(&self) -> Vec<usize> {
        (0..self.turns.len()).filter(|&i| self.turns[i].speaker == "bot").collect()
    }

    /// The caller's words between turn `from` and turn `to` (exclusive), joined.
    fn caller_between(&self, from: Option<usize>, to: Option<usize>) -> String {
        let (from, to) = (from.map_or(0, |f| f + 1), to.unwrap_or(self.turns.len()));
        let said: Vec<&str> =
            (from..to).filter(|&i| self.turns[i].speaker == "caller").map(|i| self.turns[i].text.as_str()).collect();
        if said.is_empty() { "(nothing)".into() } else { said.join(" | ") }
    }
}

async fn stored(app: &TestApp, call_id: &str) -> anyhow::Result<Stored> {
    let call = get(app, &format!("/v1/calls/{call_id}")).await?;
    let transcript = get(app, &format!("/v1/calls/{call_id}/transcript")).await.unwrap_or(json!({"turns": []}));
    let turns: Vec<Turn> = serde_json::from_value(transcript["turns"].clone()).unwrap_or_default();
    if std::env::var_os("CONVERSATION_BENCH_VERBOSE").is_some() {
        eprintln!("  call {call_id} outcome {}:", call["outcome"]);
        for turn in &turns {
            let cut = if turn.interrupted { " (interrupted)" } else { "" };
            eprintln!("    {}: {}{cut}", turn.speaker, turn.text);
        }
    }
    Ok(Stored { turns, outcome: call["outcome"].as_str().unwrap_or("").to_owned() })
}

/// How the bot answered, relative to the question answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reaction {
    Branch(Branch),
    /// The same question again ("Sorry, I didn't catch that. ...", or repeated).
    Again,
    StillThere,
    Confirm,
    OptOut,
    CallbackAsk,
    CallbackBye {
        time: bool,
    },
    Other,
}

impl Reaction {
    fn of(line: &str, step: usize) -> Reaction {
        let p = Phrases::default();
        let callback_prefix = p.callback_goodbye.split("{when}").next().unwrap_or_default();
        if let Some(b) = Branch::ALL.into_iter().find(|&b| line == line_after(step, b)) {
            return Reaction::Branch(b);
        }
        match line {
            _ if line == p.confirm => Reaction::Confirm,
            _ if line == p.opt_out_goodbye => Reaction::OptOut,
            _ if line == p.ask_callback_time => Reaction::CallbackAsk,
            _ if line == p.callback_goodbye_no_time => Reaction::CallbackBye { time: false },
            _ if line.starts_with(callback_prefix) => Reaction::CallbackBye { time: true },
            _ if line.starts_with(&p.still_there) && line.contains(QUESTIONS[step]) => Reaction::StillThere,
            _ if line.contains(QUESTIONS[step]) => Reaction::Again,
            _ => Reaction::Other,
        }
    }

    /// Whether this is what an answer of `item`'s intent requires (`outcome`: the call's).
    fn is_right_for(self, item: &Item, outcome: &str) -> bool {
        let hedged = item.phrase.hedged;
        match item.intent {
            Intent::Yes => self == Reaction::Branch(Branch::Yes) || (hedged && self == Reaction::Confirm),
            Intent::No => self == Reaction::Branch(Branch::No) || (hedged && self == Reaction::Confirm),
            Intent::OptOut => self == Reaction::OptOut && outcome == "optedOut",
            Intent::CallbackAt | Intent::CallbackLater => {
                matches!(self, Reaction::CallbackAsk | Reaction::CallbackBye { .. }) && outcome == "callbackRequested"
            }
            Intent::Repeat => self == Reaction::Again,
            Intent::Unclear => matches!(self, Reaction::Again | Reaction::Confirm),
            Intent::Silence => self == Reaction::StillThere,
        }
    }
}

/// One answer of the set as it went.
struct Score<'a> {
    item: &'a Item,
    call: usize,
    call_id: String,
    /// None: the call never got to it.
    answer: Option<&'a AnswerRecord>,
    right: bool,
    reaction: String,
    heard: String,
    time_caught: Option<bool>,
}

/// What the bot did with one interruption of the statement.
struct InterruptScore {
    plan: CallPlan,
    call_id: String,
    cleared: bool,
    stopped: bool,
    /// The bot's line after the statement does what the objection asks (objections only).
    right: bool,
    gap_ms: Option<f64>,
    heard: String,
    next: String,
}

struct Scores<'a> {
    answers: Vec<Score<'a>>,
    interrupts: Vec<InterruptScore>,
}

async fn score<'a>(
    app: &TestApp,
    set: &'a [Item],
    plans: &[CallPlan],
    records: &'a [CallRecord],
) -> anyhow::Result<Scores<'a>> {
    let mut scores = Scores { answers: Vec::new(), interrupts: Vec::new() };
    for record in records {
        let plan = &plans[record.index];
        if let Some(error) = &record.error {
            eprintln!("  call {} ({}): {error}", record.index, record.call_id);
        }
        let stored = if record.call_id.is_empty() {
            Stored { turns: Vec::new(), outcome: String::new() }
        } else {
            stored(app, &record.call_id).await?
        };
        for &id in &plan.items {
            let answer = record.answers.iter().find(|a| a.item == id);
            scores.answers.push(judge_answer(&set[id], answer, plan, record, &stored));
        }
        if let Some(interrupt) = plan.interrupt {
            scores.interrupts.push(judge_interrupt(interrupt, plan, record, &stored));
        }
    }
    Ok(scores)
}

/// The bot's next line after the answer (the first line it stored after the one answered)
/// and the call's outcome, against what the intent requires.
fn judge_answer<'a>(
    item: &'a Item,
    answer: Option<&'a AnswerRecord>,
    plan: &CallPlan,
    record: &CallRecord,
    stored: &Stored,
) -> Score<'a> {
    let mut score = Score {
        item,
        call: plan.index,
        call_id: record.call_id.clone(),
        answer,
        right: false,
        reaction: "(not reached)".into(),
        heard: String::new(),
        time_caught: None,
    };
    let Some(answer) = answer else { return score };
    let bots = stored.bot_lines();
    let asked = answer.bot_lines_before.checked_sub(1).and_then(|i| bots.get(i).copied());
    let next = bots.get(answer.bot_lines_before).copied();
    score.heard = stored.caller_between(asked, next);
    score.reaction = next.map_or("(no line: the call ended)".into(), |i| stored.turns[i].text.clone());
    let step = asked.and_then(|i| QUESTIONS.iter().position(|q| stored.turns[i].text.contains(q)));
    let Some(step) = step else {
        score.reaction = format!("{} (answered a line that asks nothing)", score.reaction);
        return score;
    };
    let reaction = next.map_or(Reaction::Other, |i| Reaction::of(&stored.turns[i].text, step));
    score.right = reaction.is_right_for(item, &stored.outcome);
    if item.intent == Intent::CallbackAt {
        score.time_caught = Some(reaction == Reaction::CallbackBye { time: true });
    }
    if item.intent.ends_call() {
        score.reaction = format!("{} [outcome {}]", score.reaction, stored.outcome);
    }
    score
}

fn judge_interrupt(interrupt: Interrupt, plan: &CallPlan, record: &CallRecord, stored: &Stored) -> InterruptScore {
    let bots = stored.bot_lines();
    let statement = bots.first().map(|&i| &stored.turns[i]).filter(|t| t.text == STATEMENT);
    let next_index = bots.get(1).copied();
    let next = next_index.map_or(String::new(), |i| stored.turns[i].text.clone());
    let stopped = statement.is_some_and(|t| t.interrupted);
    let p = Phrases::default();
    let right = match interrupt.kind {
        InterruptKind::Backchannel => !stopped && next == QUESTIONS[0],
        InterruptKind::WhoIsThis => stopped && (next.starts_with(&p.resume) || next == STATEMENT),
        InterruptKind::NotInterested => stopped && next == Branch::No.closing() && stored.outcome == "rejected",
    };
    let said = record.interrupt.as_ref();
    InterruptScore {
        plan: plan.clone(),
        call_id: record.call_id.clone(),
        cleared: said.is_some_and(|s| s.cleared),
        stopped,
        right,
        gap_ms: said.and_then(|s| s.gap_ms),
        // The caller's words over the statement are stored before it (a line is stored when it ends).
        heard: stored.caller_between(None, next_index),
        next,
    }
}

// ---- the report ----

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Counts over a group of answers (a voice, an intent, or all).
#[derive(Default)]
struct Tally {
    answers: usize,
    reached: usize,
    right: usize,
    /// Spoken answers with their timing known, and how many the bot talked over.
    timed: usize,
    talk_over: usize,
    latencies: Vec<f64>,
    pauses: usize,
    pauses_ended: usize,
}

impl Tally {
    fn add(&mut self, score: &Score) {
        self.answers += 1;
        let Some(answer) = score.answer else { return };
        self.reached += 1;
        self.right += usize::from(score.right);
        let Some(timing) = &answer.timing else { return };
        self.timed += 1;
        self.talk_over += usize::from(timing.talk_over);
        self.latencies.extend(timing.latency_ms);
        self.pauses += timing.pauses.len();
        self.pauses_ended += timing.pauses.iter().filter(|p| p.ended_turn).count();
    }

    fn accuracy(&self) -> f64 {
        self.right as f64 / self.reached.max(1) as f64 * 100.0
    }

    fn talk_over_rate(&self) -> f64 {
        self.talk_over as f64 / self.timed.max(1) as f64 * 100.0
    }

    fn p(&mut self, q: f64) -> f64 {
        self.latencies.sort_by(f64::total_cmp);
        percentile(&self.latencies, q)
    }

    fn row(&mut self, name: &str) -> String {
        let (p50, p95) = (self.p(0.5), self.p(0.95));
        format!(
            "| {name} | {} | {}/{} ({:.1} %) | {}/{} ({:.1} %) | {p50:.0} ms | {p95:.0} ms | {} | {}/{} |",
            self.answers,
            self.right,
            self.reached,
            self.accuracy(),
            self.talk_over,
            self.timed,
            self.talk_over_rate(),
            self.latencies.len(),
            self.pauses_ended,
            self.pauses,
        )
    }
}

const TALLY_HEADER: &str =
    "| answers | intent right | talk-over | voice-to-voice p50 | p95 | n | pauses that ended the turn |";

/// The level's headline numbers, for the curve.
struct Summary {
    calls: usize,
    answers: usize,
    accuracy: f64,
    talk_over: f64,
    p50: f64,
    p95: f64,
    pause_700_ended: usize,
    pause_700: usize,
    false_barge_ins: String,
    load: String,
}

fn report(n: usize, scores: &Scores, records: &[CallRecord], speech: &Speech, seconds: f64, load: &str) -> Summary {
    let errors = records.iter().filter(|r| r.error.is_some()).count();
    println!("\n## Level {n}: {} calls, {n} at a time, {seconds:.0} s ({errors} call errors; {load})", records.len());
    let mut all = Tally::default();
    let mut by_voice: BTreeMap<usize, Tally> = BTreeMap::new();
    let mut by_intent: BTreeMap<Intent, Tally> = BTreeMap::new();
    for score in &scores.answers {
        all.add(score);
        by_voice.entry(score.item.voice).or_default().add(score);
        by_intent.entry(score.item.intent).or_default().add(score);
    }
    let names: Vec<String> = voices().into_iter().map(|v| v.name).collect();
    println!("\n| voice {TALLY_HEADER}\n|---|---|---|---|---|---|---|---|");
    for (voice, tally) in by_voice.iter_mut() {
        println!("{}", tally.row(&names[*voice]));
    }
    println!("{}", all.row("**all**"));
    println!("\n| intent {TALLY_HEADER}\n|---|---|---|---|---|---|---|---|");
    for (intent, tally) in by_intent.iter_mut() {
        println!("{}", tally.row(intent.name()));
    }
    report_latency_spread(&mut all.latencies);
    let (pause_700_ended, pause_700) = report_pauses(&scores.answers);
    let false_barge_ins = report_interrupts(&scores.interrupts, records);
    report_misses(&scores.answers);
    println!("\nServer, per turn (from `/metrics`, this level only):");
    println!("- speech-to-text (`stt_latency_seconds`, queue + whisper): {}", speech.describe(METRICS[0]));
    println!("- end-of-turn model (`turn_latency_seconds`): {}", speech.describe(METRICS[1]));
    println!("- reply latency at the server (`call_reply_latency_seconds`): {}", speech.describe(METRICS[2]));
    report_targets(&mut all, pause_700_ended, pause_700);
    report_failures(scores);
    Summary {
        calls: records.len(),
        answers: all.answers,
        accuracy: all.accuracy(),
        talk_over: all.talk_over_rate(),
        p50: all.p(0.5),
        p95: all.p(0.95),
        pause_700_ended,
        pause_700,
        false_barge_ins,
        load: load.to_owned(),
    }
}

/// How the voice-to-voice samples spread: a turn the end-of-turn model judged complete is
/// answered soon after its 200 ms pause; one judged unfinished waits for the 1.6 s ceiling.
fn report_latency_spread(latencies: &mut [f64]) {
    const EDGES: [f64; 5] = [500.0, 800.0, 1200.0, 1600.0, 2000.0];
    latencies.sort_by(f64::total_cmp);
    let mut lower = 0.0;
    let mut bins: Vec<String> = Vec::new();
    for edge in EDGES {
        let n = latencies.iter().filter(|&&l| l >= lower && l < edge).count();
        bins.push(format!("{lower:.0}-{edge:.0} ms: {n}"));
        lower = edge;
    }
    bins.push(format!(">= {lower:.0} ms: {}", latencies.iter().filter(|&&l| l >= lower).count()));
    println!("\nVoice-to-voice samples by range: {}", bins.join(", "));
}

/// Prints, per pause length, how often the bot's reply came inside the answer after it;
/// returns (ended, total) for 700 ms.
fn report_pauses(scores: &[Score]) -> (usize, usize) {
    // Per length: answers, replies started inside the pause, replies heard before the answer ended.
    let mut by_length: BTreeMap<u32, [usize; 3]> = BTreeMap::new();
    for timing in scores.iter().filter_map(|s| s.answer.and_then(|a| a.timing.as_ref())) {
        for pause in &timing.pauses {
            let entry = by_length.entry(pause.ms).or_default();
            entry[0] += 1;
            entry[1] += usize::from(pause.inside);
            entry[2] += usize::from(pause.ended_turn);
        }
    }
    println!(
        "\n| pause inside the answer | answers | the bot started inside the pause | the bot's reply was heard before the answer ended |\n|---|---|---|---|"
    );
    for (ms, [total, inside, ended]) in &by_length {
        println!("| {ms} ms | {total} | {inside} | {ended} |");
    }
    let longest = by_length.iter().take_while(|(_, counts)| counts[2] == 0).last().map(|(ms, _)| *ms);
    let never: Vec<String> =
        by_length.iter().filter(|(_, counts)| counts[2] == 0).map(|(ms, _)| format!("{ms} ms")).collect();
    match longest {
        Some(ms) => println!("Longest pause that never ended a turn, nor did any shorter one: {ms} ms"),
        None => println!("The shortest pause used already ended a turn"),
    }
    println!(
        "Pause lengths that never ended a turn: {}",
        if never.is_empty() { "none".into() } else { never.join(", ") }
    );
    by_length.get(&700).map_or((0, 0), |counts| (counts[2], counts[0]))
}

/// Prints the interruptions of the statement; returns the false barge-in line for the curve.
fn report_interrupts(interrupts: &[InterruptScore], records: &[CallRecord]) -> String {
    println!(
        "\n| over the statement | calls | line paused (`clear`) | line stopped (stored interrupted) | bot's next line right | mean gap before the line went on |\n|---|---|---|---|---|---|"
    );
    let mut kinds: BTreeMap<InterruptKind, Vec<&InterruptScore>> = BTreeMap::new();
    for score in interrupts {
        if let Some(i) = score.plan.interrupt {
            kinds.entry(i.kind).or_default().push(score);
        }
    }
    for (kind, of) in &kinds {
        let gaps: Vec<f64> = of.iter().filter(|s| s.cleared && !s.stopped).filter_map(|s| s.gap_ms).collect();
        let gap = if gaps.is_empty() {
            "-".into()
        } else {
            format!("{:.0} ms", gaps.iter().sum::<f64>() / gaps.len() as f64)
        };
        println!(
            "| {} | {} | {} | {} | {} | {gap} |",
            kind.name(),
            of.len(),
            of.iter().filter(|s| s.cleared).count(),
            of.iter().filter(|s| s.stopped).count(),
            of.iter().filter(|s| s.right).count(),
        );
    }
    let backchannels = kinds.get(&InterruptKind::Backchannel).map_or(&[][..], Vec::as_slice);
    let false_barge_ins = backchannels.iter().filter(|s| s.cleared || s.stopped).count();
    let silent: usize = records.iter().map(|r| r.silent_clears).sum();
    let lines: usize = records.iter().map(|r| r.lines).sum();
    println!(
        "False barge-ins: {false_barge_ins} of {} backchannels paused or stopped the statement; {silent} `clear`s came while the caller had made no sound for 1.5 s (over {lines} bot lines played to their end)",
        backchannels.len()
    );
    format!("{false_barge_ins}/{} backchannels, {silent} in silence", backchannels.len())
}

/// What the wrong answers have in common, and what the callbacks with a time got.
fn report_misses(scores: &[Score]) {
    let wrong: Vec<&Score> = scores.iter().filter(|s| s.answer.is_some() && !s.right).collect();
    let yes_no = |s: &&&Score| matches!(s.item.intent, Intent::Yes | Intent::No);
    let confirmed = wrong.iter().filter(yes_no).filter(|s| s.reaction == Phrases::default().confirm).count();
    let unreached = scores.iter().filter(|s| s.answer.is_none()).count();
    println!(
        "\nOf {} wrong answers, {confirmed} were a plain yes or no the bot asked to confirm (\"{}\"; right only for hedged phrases); {unreached} answers were never reached (their call ended early) and are not counted",
        wrong.len(),
        Phrases::default().confirm
    );
    let with_time: Vec<bool> = scores.iter().filter_map(|s| s.time_caught).collect();
    println!(
        "Callbacks with a time: the goodbye named a time in {} of {} (the others asked for one, or had none)",
        with_time.iter().filter(|&&t| t).count(),
        with_time.len()
    );
}

fn report_targets(all: &mut Tally, pause_700_ended: usize, pause_700: usize) {
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let (p50, p95) = (all.p(0.5), all.p(0.95));
    println!(
        "\nTargets (set for one call at a time): talk-over <= 2 % {} ({:.1} %); intent >= 95 % {} ({:.1} %); \
voice-to-voice p50 <= 450 ms {} ({p50:.0} ms), p95 <= 800 ms {} ({p95:.0} ms); a 700 ms pause never ends the turn {} ({pause_700_ended} of {pause_700})",
        verdict(all.talk_over_rate() <= 2.0),
        all.talk_over_rate(),
        verdict(all.accuracy() >= 95.0),
        all.accuracy(),
        verdict(p50 <= 450.0),
        verdict(p95 <= 800.0),
        verdict(pause_700 > 0 && pause_700_ended == 0),
    );
}

/// Every answer that went wrong, and every interruption the bot mishandled, with what the
/// server heard.
fn report_failures(scores: &Scores) {
    let names: Vec<String> = voices().into_iter().map(|v| v.name).collect();
    println!("\nFailures (call, voice, intent, what was said -> what the server heard -> the bot's next line):");
    for s in &scores.answers {
        let timing = s.answer.and_then(|a| a.timing.as_ref());
        let mut what: Vec<String> = Vec::new();
        if !s.right {
            what.push(if s.answer.is_none() { "not reached".into() } else { "intent wrong".into() });
        }
        if timing.is_some_and(|t| t.talk_over) {
            let after = s.answer.and_then(|a| a.reply_after_ms).unwrap_or(f64::NAN);
            what.push(format!("talked over: reply heard {after:.0} ms after the answer began"));
        }
        if what.is_empty() {
            continue;
        }
        println!(
            "- [{}] call {} ({}) {} | {}: \"{}\" -> heard \"{}\" -> bot: \"{}\"",
            what.join(", "),
            s.call,
            s.call_id,
            names[s.item.voice],
            s.item.intent.name(),
            s.item.text(),
            s.heard,
            s.reaction
        );
    }
    for s in &scores.interrupts {
        let Some(interrupt) = s.plan.interrupt else { continue };
        let wrong = match interrupt.kind {
            InterruptKind::Backchannel => s.cleared || s.stopped || !s.right,
            _ => !s.right,
        };
        if wrong {
            println!(
                "- [{}{}] call {} ({}) {}: \"{}\" over the statement -> heard \"{}\" -> bot: \"{}\"",
                interrupt.kind.name(),
                if s.stopped {
                    ", statement stopped"
                } else if s.cleared {
                    ", statement paused"
                } else {
                    ""
                },
                s.plan.index,
                s.call_id,
                names[s.plan.voice],
                interrupt.text,
                s.heard,
                s.next
            );
        }
    }
}

fn print_curve(curve: &[(usize, Summary)]) {
    println!(
        "\n## Curve\n\n| calls at once | calls | answers | intent right | talk-over | voice-to-voice p50 | p95 | 700 ms pauses that ended the turn | false barge-ins | load |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for (n, s) in curve {
        println!(
            "| {n} | {} | {} | {:.1} % | {:.1} % | {:.0} ms | {:.0} ms | {} of {} | {} | {} |",
            s.calls,
            s.answers,
            s.accuracy,
            s.talk_over,
            s.p50,
            s.p95,
            s.pause_700_ended,
            s.pause_700,
            s.false_barge_ins,
            s.load
        );
    }
}

// ---- the callers' process ----

/// One call as the caller lived it, sent to the server process as a JSON line.
#[derive(Debug, Default, Serialize, Deserialize)]
struct CallRecord {
    index: usize,
    call_id: String,
    error: Option<String>,
    answers: Vec<AnswerRecord>,
    interrupt: Option<InterruptRecord>,
    /// `clear`s that came while the caller had made no sound for 1.5 s.
    silent_clears: usize,
    /// Bot lines whose mark came back (played to their end).
    lines: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct AnswerRecord {
    item: usize,
    /// Bot lines in the transcript when the answer was given: the next one is the reply.
    bot_lines_before: usize,
    /// None for silence, or when the caller's ticks were lost.
    timing: Option<Timing>,
    /// From the answer's first voiced frame (or, for silence, from when it was due) to the
    /// first audible frame of the bot.
    reply_after_ms: Option<f64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Timing {
    talk_over: bool,
    latency_ms: Option<f64>,
    pauses: Vec<PauseRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PauseRecord {
    ms: u32,
    /// The bot's reply was first heard after the pause began and before the answer ended.
    ended_turn: bool,
    /// ... and before the caller went on: the bot started talking inside the pause.
    inside: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct InterruptRecord {
    cleared: bool,
    /// From the `clear` to the next audible frame.
    gap_ms: Option<f64>,
}

/// The caller answers this long after a line's mark came back.
const PAUSE_BEFORE_ANSWER: Duration = Duration::from_millis(300);
/// Calls of a level start spread over this long, as independent callers would.
const STAGGER: Duration = Duration::from_secs(5);
/// A synthetic call never lasts longer than this.
const MAX_CALL: Duration = Duration::from_secs(300);
/// A `clear` this long after the caller's last voiced frame was not caused by its speech.
const SILENT_FOR: Duration = Duration::from_millis(1500);
/// Line hiss is queued this much at a time between utterances (two 20 ms frames).
const HISS_SEGMENT: usize = 320;
const FRAME: usize = 160;

/// `callers BASE KEY N DIR I,J,...`: runs the calls I, J, ... of the set, N at a time; prints
/// one JSON `CallRecord` per call.
async fn callers(args: &[String]) -> anyhow::Result<()> {
    let [base, key, n, dir, list] = args else { bail!("callers BASE KEY N DIR I,J,...") };
    let n: usize = n.parse()?;
    let set = Arc::new(test_set());
    let plans = plan_calls(&set);
    let queue: VecDeque<CallPlan> = list
        .split(',')
        .map(|i| i.parse::<usize>().ok().and_then(|i| plans.get(i).cloned()).context("call index"))
        .collect::<anyhow::Result<_>>()?;
    let total = queue.len();
    let queue = Arc::new(Mutex::new(queue));
    let api = Api { client: reqwest::Client::new(), base: base.clone(), key: key.clone(), call_id: String::new() };
    let dir = PathBuf::from(dir);
    let (tx, mut rx) = mpsc::unbounded_channel::<CallRecord>();
    for caller in 0..n {
        let (queue, api, dir, set, tx) = (queue.clone(), api.clone(), dir.clone(), set.clone(), tx.clone());
        tokio::spawn(async move {
            tokio::time::sleep(STAGGER.mul_f64(caller as f64 / n as f64)).await;
            loop {
                let Some(plan) = queue.lock().expect("queue").pop_front() else { break };
                let _ = tx.send(call(&api, &set, &plan, &dir).await);
            }
        });
    }
    drop(tx);
    let mut done = 0usize;
    while let Some(record) = rx.recv().await {
        println!("{}", serde_json::to_string(&record)?);
        done += 1;
        if done.is_multiple_of(5) || done == total {
            eprintln!("  {done}/{total} calls done");
        }
    }
    Ok(())
}

/// The REST API as the caller uses it: to read what the bot just said.
#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base: String,
    key: String,
    call_id: String,
}

/// The bot's newest line, once the transcript holds more than `known` of them.
struct LineSeen {
    count: usize,
    text: String,
    mark_at: Instant,
}

impl Api {
    /// The bot's lines so far, and whether the newest was cut short.
    async fn bot_lines(&self) -> Option<(Vec<String>, bool)> {
        let url = format!("{}/v1/calls/{}/transcript", self.base, self.call_id);
        let response = self.client.get(url).bearer_auth(&self.key).send().await.ok()?;
        let body: Value = response.error_for_status().ok()?.json().await.ok()?;
        let bot: Vec<&Value> = body["turns"].as_array()?.iter().filter(|t| t["speaker"] == "bot").collect();
        let cut = bot.last().is_some_and(|t| t["interrupted"] == true);
        Some((bot.iter().filter_map(|t| t["text"].as_str().map(str::to_owned)).collect(), cut))
    }

    /// Polls the live transcript (saved as each line ends) for the line whose mark just came:
    /// a new line played to its end (a line stopped by a barge-in is stored without a mark).
    async fn newest_line(self, known: usize, mark_at: Instant, tx: mpsc::Sender<LineSeen>) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Some((lines, cut)) = self.bot_lines().await
                && lines.len() > known
                && !cut
            {
                let text = lines.last().cloned().unwrap_or_default();
                let _ = tx.send(LineSeen { count: lines.len(), text, mark_at }).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// Speech as the gateway receives it, and where its voiced parts are (sample ranges).
#[derive(Clone, Default)]
struct Speech8k {
    ulaw: Vec<u8>,
    parts: Vec<Range<usize>>,
}

/// Reads the clips `names`, joins them with `pause_ms` of silence, and carries the result over
/// `channel`.
fn load_speech(dir: &Path, names: &[String], pause_ms: u32, channel: &Channel) -> anyhow::Result<Speech8k> {
    let pause = (pause_ms as usize) * 8;
    let mut pcm: Vec<i16> = Vec::new();
    let mut parts = Vec::new();
    for (k, name) in names.iter().enumerate() {
        if k > 0 {
            pcm.resize(pcm.len() + pause, 0);
        }
        let part = read_pcm(&dir.join(name))?;
        parts.push(pcm.len()..pcm.len() + part.len());
        pcm.extend(part);
    }
    Ok(Speech8k { ulaw: through_phone(&pcm, channel), parts })
}

/// Everything one call may say, through its phone line.
struct CallAudio {
    answers: BTreeMap<usize, Speech8k>,
    follow_ups: BTreeMap<&'static str, Speech8k>,
    interrupt: Option<Speech8k>,
    hiss: Vec<u8>,
}

fn call_audio(set: &[Item], plan: &CallPlan, dir: &Path) -> anyhow::Result<CallAudio> {
    let line = Channel::random(plan.seed());
    // Each clip gets its own hiss and losses, on the same line (level, noise level, loss rate).
    let mut clips = 0u64;
    let mut channel = || {
        clips += 1;
        Channel { seed: plan.seed() * 1000 + clips, ..line }
    };
    let mut answers = BTreeMap::new();
    for &id in &plan.items {
        let item = &set[id];
        let names: Vec<String> = (0..item.phrase.parts.len()).map(|k| item_clip(id, k)).collect();
        answers.insert(id, load_speech(dir, &names, item.pause_ms, &channel())?);
    }
    let mut follow_ups = BTreeMap::new();
    for f in FollowUp::ALL {
        follow_ups.insert(f.text(), load_speech(dir, &[f.clip(plan.voice)], 0, &channel())?);
    }
    let interrupt =
        plan.interrupt.map(|_| load_speech(dir, &[interrupt_clip(plan.index)], 0, &channel())).transpose()?;
    // Six seconds of the line's hiss alone, played on a loop between utterances.
    let hiss = through_phone(&vec![0i16; 6 * 8000], &channel());
    Ok(CallAudio { answers, follow_ups, interrupt, hiss })
}

async fn call(api: &Api, set: &[Item], plan: &CallPlan, dir: &Path) -> CallRecord {
    let mut record = CallRecord { index: plan.index, ..CallRecord::default() };
    let audio = match call_audio(set, plan, dir) {
        Ok(audio) => audio,
        Err(error) => {
            record.error = Some(format!("{error:#}"));
            return record;
        }
    };
    let side = TwilioSide {
        listen_base: api.base.clone(),
        public_url: PUBLIC_URL.into(),
        account_sid: ACCOUNT_SID.into(),
        auth_token: AUTH_TOKEN.into(),
    };
    let call_sid = format!("CA{:08x}{:06}", std::process::id(), plan.index);
    let inbound = match side.ring(&api.client, CALLER, NUMBER, &call_sid).await {
        Ok(inbound) => inbound,
        Err(error) => {
            record.error = Some(error.to_string());
            return record;
        }
    };
    let api = Api { call_id: inbound.call_id.clone(), ..api.clone() };
    let mut caller = Caller::new(set, plan, audio);
    let error = converse(inbound, &mut caller, api).await;
    caller.record(record.index, error)
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Drives one call until the gateway hangs up; returns an error if it outlasted `MAX_CALL`.
async fn converse(mut call: InboundCall, caller: &mut Caller<'_>, api: Api) -> Option<String> {
    caller.call_id = call.call_id.clone();
    let (lines_tx, mut lines_rx) = mpsc::channel::<LineSeen>(8);
    let deadline = Instant::now() + MAX_CALL;
    let commands = call.peer.commands.clone();
    let _ = commands.send(PeerCommand::Speak(caller.hiss_segment())).await;
    loop {
        tokio::select! {
            event = call.peer.events.recv() => match event {
                Some(PeerEvent::Heard { audible, at, .. }) => caller.on_heard(audible, at),
                Some(PeerEvent::Mark { at, .. }) => {
                    if caller.on_mark(at) {
                        tokio::spawn(api.clone().newest_line(caller.lines_seen, at, lines_tx.clone()));
                    }
                }
                Some(PeerEvent::Cleared { at }) => caller.clears.push(at),
                Some(PeerEvent::DoneSpeaking { at }) => {
                    let audio = caller.on_done_speaking(at);
                    let _ = commands.send(PeerCommand::Speak(audio)).await;
                }
                Some(PeerEvent::Closed) | None => return None,
                Some(PeerEvent::MediaReceived { .. }) => {}
            },
            Some(line) = lines_rx.recv() => caller.on_line(line, Instant::now()),
            _ = sleep_until_opt(caller.next_timer()) => caller.on_timer(Instant::now()),
            _ = tokio::time::sleep_until(deadline) => {
                let _ = commands.send(PeerCommand::HangUp).await;
                return Some("the call outlasted the bench's limit".into());
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Said {
    Answer(usize),
    FollowUp,
    Interrupt,
}

/// One thing the caller said (or, for a silent answer, did not say).
struct Utterance {
    said: Said,
    speech: Speech8k,
    bot_lines_before: usize,
    /// The `DoneSpeaking` after which it went into the mouth: its frames follow that tick.
    queued_after: Option<Instant>,
    /// Its last frame's tick.
    done_at: Option<Instant>,
    /// A silent answer: when it was due.
    silent_at: Option<Instant>,
}

/// When an utterance's voice went out: the ticks of its first and last voiced frame, and of
/// the voiced frames around each of its pauses.
struct Voiced {
    first: Instant,
    last: Instant,
    pauses: Vec<(Instant, Instant)>,
}

/// A caller that listens to the bot, answers from its plan, and keeps a timeline of every
/// tick it heard, every `clear` and every mark, to measure afterwards.
struct Caller<'a> {
    set: &'a [Item],
    plan: &'a CallPlan,
    audio: CallAudio,
    call_id: String,
    hiss_at: usize,
    /// Every 20 ms tick: when, and whether the bot was audible.
    ticks: Vec<(Instant, bool)>,
    heard_bot: bool,
    clears: Vec<Instant>,
    lines: usize,
    said: Vec<Utterance>,
    queue: VecDeque<Utterance>,
    in_mouth: Option<usize>,
    next_item: usize,
    /// The question (index) the last answer went to, and that answer's item.
    last_step: Option<usize>,
    last_item: Option<usize>,
    lines_seen: usize,
    answer_at: Option<(Instant, Utterance)>,
    interrupt_at: Option<Instant>,
}

impl<'a> Caller<'a> {
    fn new(set: &'a [Item], plan: &'a CallPlan, audio: CallAudio) -> Caller<'a> {
        Caller {
            set,
            plan,
            audio,
            call_id: String::new(),
            hiss_at: 0,
            ticks: Vec::with_capacity(50 * 120),
            heard_bot: false,
            clears: Vec::new(),
            lines: 0,
            said: Vec::new(),
            queue: VecDeque::new(),
            in_mouth: None,
            next_item: 0,
            last_step: None,
            last_item: None,
            lines_seen: 0,
            answer_at: None,
            interrupt_at: None,
        }
    }

    fn hiss_segment(&mut self) -> Vec<u8> {
        let hiss = &self.audio.hiss;
        if self.hiss_at + HISS_SEGMENT > hiss.len() {
            self.hiss_at = 0;
        }
        self.hiss_at += HISS_SEGMENT;
        hiss[self.hiss_at - HISS_SEGMENT..self.hiss_at].to_vec()
    }

    fn on_heard(&mut self, audible: bool, at: Instant) {
        let first_audio = audible && !self.heard_bot;
        self.heard_bot |= audible;
        self.ticks.push((at, audible));
        // The statement has started: the interruption is due a while into it.
        if first_audio && let Some(interrupt) = self.plan.interrupt {
            self.interrupt_at = Some(at + Duration::from_millis(interrupt.after_ms));
        }
    }

    /// A mark came back; false when it was returned by a `clear` (the line did not finish).
    fn on_mark(&mut self, at: Instant) -> bool {
        if self.clears.last() == Some(&at) {
            return false;
        }
        self.lines += 1;
        true
    }

    /// The mouth is empty: the next utterance if one is waiting, else more hiss.
    fn on_done_speaking(&mut self, at: Instant) -> Vec<u8> {
        if let Some(i) = self.in_mouth.take() {
            self.said[i].done_at = Some(at);
        }
        match self.queue.pop_front() {
            Some(mut utterance) => {
                utterance.queued_after = Some(at);
                let audio = utterance.speech.ulaw.clone();
                self.in_mouth = Some(self.said.len());
                self.said.push(utterance);
                audio
            }
            None => self.hiss_segment(),
        }
    }

    fn on_line(&mut self, line: LineSeen, now: Instant) {
        if line.count <= self.lines_seen {
            return;
        }
        self.lines_seen = line.count;
        if let Some(utterance) = self.reply_to(&line.text) {
            self.answer_at = Some(((line.mark_at + PAUSE_BEFORE_ANSWER).max(now), utterance));
        }
    }

    /// What the caller says to the bot's line `text`, if anything.
    fn reply_to(&mut self, text: &str) -> Option<Utterance> {
        let p = Phrases::default();
        let last = self.last_item.map(|id| &self.set[id]);
        if text == p.confirm {
            return Some(self.follow_up(last.map_or(FollowUp::Yes, FollowUp::after)));
        }
        if text == p.ask_callback_time {
            return Some(self.follow_up(FollowUp::Time));
        }
        let step = QUESTIONS.iter().position(|q| text.contains(q))?;
        if self.last_step == Some(step) {
            // Asked again: a plain answer in the spirit of the last one.
            return Some(self.follow_up(last.map_or(FollowUp::Yes, FollowUp::after)));
        }
        self.last_step = Some(step);
        let Some(&id) = self.plan.items.get(self.next_item) else {
            // The plan is used up (the bot moved on faster than planned): keep the call going.
            return Some(self.follow_up(FollowUp::Yes));
        };
        self.next_item += 1;
        self.last_item = Some(id);
        let speech = self.audio.answers.get(&id).cloned().unwrap_or_default();
        Some(self.utterance(Said::Answer(id), speech))
    }

    fn follow_up(&self, follow_up: FollowUp) -> Utterance {
        let speech = self.audio.follow_ups.get(follow_up.text()).cloned().unwrap_or_default();
        self.utterance(Said::FollowUp, speech)
    }

    fn utterance(&self, said: Said, speech: Speech8k) -> Utterance {
        Utterance {
            said,
            speech,
            bot_lines_before: self.lines_seen,
            queued_after: None,
            done_at: None,
            silent_at: None,
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        match (self.answer_at.as_ref().map(|a| a.0), self.interrupt_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_timer(&mut self, now: Instant) {
        if self.interrupt_at.is_some_and(|at| at <= now) {
            self.interrupt_at = None;
            let speech = self.audio.interrupt.clone().unwrap_or_default();
            let utterance = self.utterance(Said::Interrupt, speech);
            self.queue.push_back(utterance);
        }
        if self.answer_at.as_ref().is_some_and(|a| a.0 <= now)
            && let Some((_, mut utterance)) = self.answer_at.take()
        {
            if utterance.speech.ulaw.is_empty() {
                // A silent answer: nothing to say, only when it was due.
                utterance.silent_at = Some(now);
                self.said.push(utterance);
            } else {
                self.queue.push_back(utterance);
            }
        }
    }

    // ---- measuring, after the call ----

    /// When each frame of `u` went out: the ticks up to its last, counted back from it (a tick
    /// without a queued frame may come before the first).
    fn frame_times(&self, u: &Utterance) -> Option<Vec<Instant>> {
        let (after, done) = (u.queued_after?, u.done_at?);
        let frames = u.speech.ulaw.len().div_ceil(FRAME);
        let ticks: Vec<Instant> = self.ticks.iter().map(|t| t.0).filter(|&t| t > after && t <= done).collect();
        (ticks.len() >= frames).then(|| ticks[ticks.len() - frames..].to_vec())
    }

    fn voiced(&self, u: &Utterance) -> Option<Voiced> {
        let times = self.frame_times(u)?;
        let at = |sample: usize| times[(sample / FRAME).min(times.len() - 1)];
        let first = at(u.speech.parts.first()?.start);
        let last = at(u.speech.parts.last()?.end - 1);
        let pauses = u.speech.parts.windows(2).map(|w| (at(w[0].end - 1), at(w[1].start))).collect();
        Some(Voiced { first, last, pauses })
    }

    fn first_audio_from(&self, from: Instant) -> Option<Instant> {
        self.ticks.iter().find(|t| t.1 && t.0 >= from).map(|t| t.0)
    }

    fn answer_record(&self, u: &Utterance, item: usize) -> AnswerRecord {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut record =
            AnswerRecord { item, bot_lines_before: u.bot_lines_before, timing: None, reply_after_ms: None };
        if let Some(due) = u.silent_at {
            record.reply_after_ms = self.first_audio_from(due).map(|r| ms(r - due));
            return record;
        }
        let Some(Voiced { first, last, pauses }) = self.voiced(u) else { return record };
        let reply = self.first_audio_from(first);
        let talk_over = reply.is_some_and(|r| r <= last);
        record.reply_after_ms = reply.map(|r| ms(r - first));
        let pause_ms = self.set[item].pause_ms;
        let pauses = pauses
            .iter()
            .map(|&(start, end)| PauseRecord {
                ms: pause_ms,
                ended_turn: talk_over && reply.is_some_and(|r| r > start),
                inside: reply.is_some_and(|r| r > start && r < end),
            })
            .collect();
        let latency_ms = reply.filter(|&r| r > last).map(|r| ms(r - last));
        record.timing = Some(Timing { talk_over, latency_ms, pauses });
        record
    }

    fn interrupt_record(&self, u: &Utterance) -> InterruptRecord {
        let Some(Voiced { first, last, .. }) = self.voiced(u) else {
            return InterruptRecord { cleared: false, gap_ms: None };
        };
        let clear = self.clears.iter().copied().find(|&c| c >= first && c <= last + SILENT_FOR);
        let gap_ms =
            clear.and_then(|c| self.ticks.iter().find(|t| t.1 && t.0 > c).map(|t| (t.0 - c).as_secs_f64() * 1000.0));
        InterruptRecord { cleared: clear.is_some(), gap_ms }
    }

    /// `clear`s that came while the caller had been quiet for `SILENT_FOR`.
    fn silent_clears(&self) -> usize {
        let spans: Vec<(Instant, Instant)> =
            self.said.iter().filter_map(|u| self.voiced(u)).map(|v| (v.first, v.last)).collect();
        self.clears
            .iter()
            .filter(|&&c| !spans.iter().any(|&(first, last)| c >= first && c <= last + SILENT_FOR))
            .count()
    }

    fn record(&self, index: usize, error: Option<String>) -> CallRecord {
        let mut record = CallRecord {
            index,
            call_id: self.call_id.clone(),
            error,
            silent_clears: self.silent_clears(),
            lines: self.lines,
            ..CallRecord::default()
        };
        for u in &self.said {
            match u.said {
                Said::Answer(item) => record.answers.push(self.answer_record(u, item)),
                Said::Interrupt => record.interrupt = Some(self.interrupt_record(u)),
                Said::FollowUp => {}
            }
        }
        record
    }
}
