//! What a caller's turn means: yes, no, opt-out, callback (with a time if said), repeat
//! request, or unclear, and how sure that reading is ([`read`]). Pure and rule-based: speech
//! recognition output for short answers is noisy but small, and rules can be read, tested and
//! fixed one phrasing at a time.
//!
//! Precedence, strongest first: opt-out ("stop calling me", "remove me from your list"),
//! callback ("call me back tomorrow at 3", "I'm busy", "later"), repeat ("sorry?", "can you
//! repeat that"), then yes against no:
//! - Yes and no are phrases found anywhere in the turn. A phrase inside a longer one does not
//!   count by itself: "sure" in "not sure", "no" in "no problem", "absolutely" in "absolutely
//!   not", "right" in "not right now". Where a yes and a no cover the same words, the no is kept.
//! - Agreement needs positive evidence, because a misheard refusal ("I don't think so" heard as
//!   "I do I think so") must not become a sale. Words that agree only as a whole answer ("Fine.",
//!   "Correct.", "I do.", "It is.") count only when nothing else was said; a transcript with no
//!   yes phrase is never a yes.
//! - When a yes and a no both remain, the last one wins if it is clearly the last word: a
//!   correction came before it ("yes... no, actually no", "yes, I mean no") or it is more than
//!   one word ("no, no, go ahead"). Otherwise neither wins ("yes, no").
//! - "No problem" and "no worries" agree only when they answer a yes/no question (an offer);
//!   elsewhere they are politeness and mean nothing.
//!
//! A yes or no can carry a [`Doubt`]: a bare acknowledgment ("okay", "right", "uh-huh"), a
//! single word asked back ("Sure?"), a hedge ("well... I guess so", "probably not"), a yes with
//! a negation the rules cannot place ("yeah, I can not time": maybe a misheard no), a yes that
//! breaks off on a conjunction ("that's right, so..."), or a yes and a no with no winner. The
//! dialogue asks to confirm such answers instead of guessing. Anything else is unclear,
//! including recogniser hallucinations on noise ("Thank you.").
//!
//! Keys ([`classify_dtmf`]): 1 = yes, 2 = no, 3 = call back, 9 = opt-out, 0 = repeat; other
//! digits are unclear, `*` and `#` are ignored.

use std::sync::OnceLock;

use super::text::{Pattern, clause_starts, is_filler, words};
use super::when::{self, CallbackTime};

/// What a caller's answer means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    /// Do not call again; the contact becomes do-not-call.
    OptOut,
    /// Call back, at the time if one was said.
    Callback(Option<CallbackTime>),
    /// Say that again.
    Repeat,
    Unclear,
}

impl Answer {
    /// The name used in `next` and in records: yes, no, optOut, callback, repeat, unclear.
    pub fn as_str(&self) -> &'static str {
        match self {
            Answer::Yes => "yes",
            Answer::No => "no",
            Answer::OptOut => "optOut",
            Answer::Callback(_) => "callback",
            Answer::Repeat => "repeat",
            Answer::Unclear => "unclear",
        }
    }
}

/// Why a yes or no reading may be wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Doubt {
    /// Only an acknowledgment ("okay", "right", "uh-huh"): agreeing, or just listening.
    Acknowledgment,
    /// A single word asked back ("Sure?", "Yes?").
    Questioning,
    /// Hedged: "I guess so", "probably not", "yes, I think", "not sure... no".
    Hedged,
    /// A yes and a no, neither clearly the last word ("yes, no"). The answer is `Unclear`.
    Mixed,
    /// A yes next to a negation no rule explains: "yeah, I can not time" may be a misheard no.
    StrayNegation,
    /// A yes that breaks off on a conjunction ("that's right, so..."): the turn may have gone on.
    CutOff,
    /// The recogniser was unsure of its own words (set from the turn's confidence).
    LowConfidence,
}

/// A turn's meaning and, for a yes or no that may be wrong, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    pub answer: Answer,
    pub doubt: Option<Doubt>,
}

impl Reading {
    pub fn clear(answer: Answer) -> Reading {
        Reading { answer, doubt: None }
    }
}

/// What the dialogue just asked, which changes how a bare answer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A yes/no question ("Do you have a few minutes?").
    YesNo,
    /// Anything else: a greeting, an open question, an interruption.
    Open,
    /// "When would be a good time to call you back?": a bare time is the answer.
    CallbackTime,
}

/// The meaning of a keyed digit (see the module docs); `None` for `*`, `#` and non-digits.
pub fn classify_dtmf(digit: char) -> Option<Answer> {
    Some(match digit {
        '1' => Answer::Yes,
        '2' => Answer::No,
        '3' => Answer::Callback(None),
        '9' => Answer::OptOut,
        '0' => Answer::Repeat,
        '4'..='8' => Answer::Unclear,
        _ => return None,
    })
}

/// What a transcribed turn means, without how sure (see [`read`]).
pub fn classify(text: &str, expect: Expect) -> Answer {
    read(text, expect).answer
}

/// Reads a transcribed turn by the rules of the module docs.
pub fn read(text: &str, expect: Expect) -> Reading {
    let words = words(text);
    if words.is_empty() {
        return Reading::clear(Answer::Unclear);
    }
    // "uh" stays in "uh-huh" and "uh-uh": there it is the answer.
    let core: Vec<String> = words
        .iter()
        .enumerate()
        .filter(|&(i, w)| !is_filler(w) || (w == "uh" && words.get(i + 1).is_some_and(|n| n == "huh" || n == "uh")))
        .map(|(_, w)| w.clone())
        .collect();
    let p = patterns();
    if p.opt_out.iter().any(|pat| pat.find(&words).is_some() || pat.find(&core).is_some()) {
        return Reading::clear(Answer::OptOut);
    }
    let time = when::parse(&words);
    // "I'm not busy" is no reason to call back.
    let negated: Vec<(usize, usize)> = p.not_callback.iter().flat_map(|pat| pat.find_all(&words)).collect();
    let callback_phrase = p
        .callback
        .iter()
        .flat_map(|pat| pat.find_all(&words))
        .any(|(s, e)| !negated.iter().any(|&(ns, ne)| ns <= s && e <= ne));
    let polarity = polarity(text, &words, expect, p);
    match expect {
        Expect::CallbackTime => {
            // "No, never mind" declines the callback; anything with a time sets it.
            if let Some(t) = time {
                return Reading::clear(Answer::Callback(Some(t)));
            }
            // The caller asked for the callback a moment ago: only a plain refusal takes it
            // back, not a "no" somewhere in a garbled time ("Am I no more, dink please?").
            if polarity.answer == Answer::No {
                let plain = polarity.doubt.is_none() && !callback_phrase && words.len() <= 5;
                return match (plain, callback_phrase) {
                    (true, _) => polarity,
                    (false, true) => Reading::clear(Answer::Callback(None)),
                    (false, false) => Reading::clear(Answer::Unclear),
                };
            }
        }
        Expect::YesNo | Expect::Open => {
            if callback_phrase || when::mentions_day_or_delay(&words) {
                return Reading::clear(Answer::Callback(time));
            }
        }
    }
    if p.repeat.iter().any(|pat| pat.find(&core).is_some()) {
        return Reading::clear(Answer::Repeat);
    }
    if polarity.answer != Answer::Unclear || polarity.doubt.is_some() {
        return polarity;
    }
    if expect == Expect::CallbackTime && callback_phrase {
        return Reading::clear(Answer::Callback(None));
    }
    Reading::clear(Answer::Unclear)
}

/// What a phrase found in a turn says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Yes,
    /// A yes hedged in itself: "I guess so", "probably".
    WeakYes,
    /// "okay", "right", "uh-huh".
    Ack,
    No,
    /// "I guess not", "probably not".
    WeakNo,
    /// Weakens a yes, not a no: "I think", "I guess".
    Softener,
    /// Weakens whatever else was said: "not sure", "maybe".
    Hedge,
    /// Means nothing here, but hides the words inside it: "right now", "who is this".
    Neutral,
}

impl Kind {
    /// Some(true) for a yes, Some(false) for a no.
    fn leaning(self) -> Option<bool> {
        match self {
            Kind::Yes | Kind::WeakYes | Kind::Ack => Some(true),
            Kind::No | Kind::WeakNo => Some(false),
            Kind::Softener | Kind::Hedge | Kind::Neutral => None,
        }
    }
}

/// A phrase found at words `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Hit {
    start: usize,
    end: usize,
    kind: Kind,
}

impl Hit {
    fn len(&self) -> usize {
        self.end - self.start
    }

    fn covers(&self, i: usize) -> bool {
        self.start <= i && i < self.end
    }

    fn leaning_no(&self) -> bool {
        self.kind.leaning() == Some(false)
    }
}

/// Yes or no by the phrase rules of the module docs; `Unclear` when neither.
fn polarity(text: &str, words: &[String], expect: Expect, p: &Patterns) -> Reading {
    let found = negate_in_scope(hits(words, expect, p), words, &clause_starts(text));
    let kept = outermost(&found);
    let mut polar: Vec<(Hit, bool)> = kept.iter().filter_map(|h| h.kind.leaning().map(|yes| (*h, yes))).collect();
    // An acknowledgment next to a refusal is politeness: "No, that's okay", "Okay, no".
    if polar.iter().any(|(_, yes)| !yes) {
        polar.retain(|(h, _)| h.kind != Kind::Ack);
    }
    // The last phrase; at the same end, the longer one.
    let Some(&(last, yes)) = polar.iter().max_by_key(|(h, _)| (h.end, h.len())) else {
        return Reading::clear(Answer::Unclear);
    };
    let opposite_end = polar.iter().filter(|(_, y)| *y != yes).map(|(h, _)| h.end).max();
    // The phrases of the winning side since the other side last spoke.
    let run: Vec<Hit> = polar
        .iter()
        .filter(|(h, y)| *y == yes && opposite_end.is_none_or(|end| h.end > end))
        .map(|(h, _)| *h)
        .collect();
    if let Some(end) = opposite_end {
        let corrected = words.get(end..last.start).unwrap_or_default().iter().any(|w| is_correction(w));
        if !corrected && covered_count(&run) < 2 {
            return Reading { answer: Answer::Unclear, doubt: Some(Doubt::Mixed) };
        }
    }
    let answer = if yes { Answer::Yes } else { Answer::No };
    Reading { answer, doubt: doubt(text, words, &found, &kept, &run, yes) }
}

fn doubt(text: &str, words: &[String], found: &[Hit], kept: &[Hit], run: &[Hit], yes: bool) -> Option<Doubt> {
    let single_word = matches!(run, [only] if only.len() == 1 && alone(words, only.start, only.end));
    if single_word && text.trim_end().ends_with('?') {
        return Some(Doubt::Questioning);
    }
    if yes && run.iter().all(|h| h.kind == Kind::Ack) {
        return Some(Doubt::Acknowledgment);
    }
    let weak = run.iter().any(|h| matches!(h.kind, Kind::WeakYes | Kind::WeakNo));
    let softened = yes && kept.iter().any(|h| h.kind == Kind::Softener);
    if weak || softened || kept.iter().any(|h| h.kind == Kind::Hedge) {
        return Some(Doubt::Hedged);
    }
    let covered = |i: usize| found.iter().any(|h| h.covers(i));
    if yes && words.iter().enumerate().any(|(i, w)| w == "not" && !covered(i)) {
        return Some(Doubt::StrayNegation);
    }
    let last = words.len() - 1;
    if yes && is_conjunction(&words[last]) && !covered(last) {
        return Some(Doubt::CutOff);
    }
    None
}

/// Every phrase of every set, those that must stand alone only when they do.
fn hits(words: &[String], expect: Expect, p: &Patterns) -> Vec<Hit> {
    let offer = if expect == Expect::YesNo { Kind::Yes } else { Kind::Neutral };
    let sets: [(&[Pattern], Kind, bool); 12] = [
        (&p.yes, Kind::Yes, false),
        (&p.yes_alone, Kind::Yes, true),
        (&p.weak_yes, Kind::WeakYes, false),
        (&p.weak_yes_alone, Kind::WeakYes, true),
        (&p.ack, Kind::Ack, false),
        (&p.ack_alone, Kind::Ack, true),
        (&p.offer_yes, offer, false),
        (&p.no, Kind::No, false),
        (&p.weak_no, Kind::WeakNo, false),
        (&p.softener, Kind::Softener, false),
        (&p.hedge, Kind::Hedge, false),
        (&p.neutral, Kind::Neutral, false),
    ];
    let mut found = Vec::new();
    for (set, kind, must_be_alone) in sets {
        for pat in set {
            for (start, end) in pat.find_all(words) {
                if !must_be_alone || alone(words, start, end) {
                    found.push(Hit { start, end, kind });
                }
            }
        }
    }
    found
}

/// A yes right after a "not" or "never" of the same clause is negated: "I don't want to go
/// ahead", "I don't think that works", "I never have time". The "not" of a yes phrase ("not
/// busy", "why not") or of a hedge ("not sure") negates nothing else.
fn negate_in_scope(mut found: Vec<Hit>, words: &[String], clause_starts: &[usize]) -> Vec<Hit> {
    /// Words that may sit between the negation and what it negates.
    const SCOPE: usize = 3;
    let owned_elsewhere =
        |i: usize, hits: &[Hit]| hits.iter().any(|h| h.covers(i) && !matches!(h.kind, Kind::No | Kind::WeakNo));
    let negators: Vec<usize> = words
        .iter()
        .enumerate()
        .filter(|&(i, w)| (w == "not" || w == "never") && !owned_elsewhere(i, &found))
        .map(|(i, _)| i)
        .collect();
    for hit in found.iter_mut().filter(|h| h.kind.leaning() == Some(true)) {
        let negator = negators.iter().rev().find(|&&n| {
            n < hit.start
                && hit.start - n <= SCOPE + 1
                && !clause_starts.iter().any(|&c| n < c && c <= hit.start)
                && !words[n + 1..hit.start].iter().any(|w| is_correction(w))
        });
        if let Some(&n) = negator {
            *hit = Hit { start: n, end: hit.end, kind: Kind::No };
        }
    }
    found
}

/// The phrases not inside a longer one. A yes on exactly the words of a no (a fuzzy match can
/// make one word both) is dropped: agreement needs evidence no refusal shares.
fn outermost(found: &[Hit]) -> Vec<Hit> {
    let inside_longer = |h: &Hit| found.iter().any(|o| o.start <= h.start && h.end <= o.end && o.len() > h.len());
    let shadowed_by_no = |h: &Hit| {
        h.kind.leaning() == Some(true) && found.iter().any(|o| o.leaning_no() && o.start == h.start && o.end == h.end)
    };
    found.iter().copied().filter(|h| !inside_longer(h) && !shadowed_by_no(h)).collect()
}

/// Whether everything outside `start..end` is filler or politeness ("Fine, thanks.").
fn alone(words: &[String], start: usize, end: usize) -> bool {
    let polite = |w: &str| matches!(w, "thanks" | "thank" | "you" | "sir" | "maam" | "madam");
    words[..start].iter().chain(&words[end..]).all(|w| is_filler(w) || polite(w))
}

/// Words of distinct positions the phrases cover.
fn covered_count(hits: &[Hit]) -> usize {
    let (Some(from), Some(to)) = (hits.iter().map(|h| h.start).min(), hits.iter().map(|h| h.end).max()) else {
        return 0;
    };
    (from..to).filter(|&i| hits.iter().any(|h| h.covers(i))).count()
}

/// A word that takes back what came before it: "yes... actually no", "no, wait, yes".
fn is_correction(word: &str) -> bool {
    matches!(
        word,
        "actually" | "mean" | "wait" | "sorry" | "but" | "well" | "rather" | "instead" | "thought" | "scratch"
    )
}

/// A word a sentence does not end on.
fn is_conjunction(word: &str) -> bool {
    matches!(word, "and" | "but" | "so" | "because" | "cause" | "or" | "although" | "plus")
}

struct Patterns {
    opt_out: Vec<Pattern>,
    callback: Vec<Pattern>,
    not_callback: Vec<Pattern>,
    repeat: Vec<Pattern>,
    yes: Vec<Pattern>,
    yes_alone: Vec<Pattern>,
    weak_yes: Vec<Pattern>,
    weak_yes_alone: Vec<Pattern>,
    ack: Vec<Pattern>,
    ack_alone: Vec<Pattern>,
    offer_yes: Vec<Pattern>,
    no: Vec<Pattern>,
    weak_no: Vec<Pattern>,
    softener: Vec<Pattern>,
    hedge: Vec<Pattern>,
    neutral: Vec<Pattern>,
}

fn compile(specs: &[&'static str]) -> Vec<Pattern> {
    specs.iter().map(|s| Pattern::new(s)).collect()
}

fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| Patterns {
        opt_out: compile(&[
            "stop ~ calling|ringing|phoning|contacting|bothering|harassing",
            "stop calling|call|ringing|ring|phoning",
            "quit|cease ~ calling|ringing|phoning",
            "^ stop it? $",
            "^ stop stop $",
            // "do not call me again", "never call this number", "don't ever call me"
            "do not ~ call|ring|phone|contact|bother ~ again|anymore|ever",
            "never ~ call|ring|phone|contact ~ again|anymore|ever",
            "do not ever call|ring|phone|contact",
            "never call|ring|phone|contact me|us|here|this",
            "not ~ call|ring|phone|contact ~ any more",
            "^ do not call|ring|phone me|us? $",
            "no more calls|calling",
            // "I don't want any more calls", "we do not need your calls"
            "do not want|need ~ calls|calling",
            "do not call list|lists|registry|register",
            "no call list",
            "dnc list?",
            "remove|delete|take|erase ~ me|my|us|number|name ~ list|lists|database|system|records",
            "^ remove me|us $",
            "remove me|us|my|our",
            "take|get|put me|us|my number? off",
            "off your|the|this|my list|calling",
            "unsubscribe",
            "opt|opting me? out",
            "leave me|us alone",
            "lose|delete|forget my|this|our number",
            "wrong number",
        ]),
        callback: compile(&[
            "call|ring|phone|try|reach|contact me|us? ~ back|later|again|tomorrow|tonight|another|other|another",
            "call|ring|phone|try|reach|contact me|us ~ at|in|around|after|on|next",
            // "ring me back" as phone audio often comes out
            "bring me|us back",
            "callback|callbacks",
            "call back",
            "give me|us a call|ring ~ later|back|tomorrow|another|other|next|at|in",
            "later",
            "another|other|different time|day",
            "not a good time",
            "bad time",
            "busy",
            "in a meeting",
            "driving",
            "can not talk|speak",
            "no time|moment ~ now|today|right",
            "call you back",
            "get back to you",
        ]),
        not_callback: compile(&["not busy", "not too|that|very|at|so busy", "not driving", "not in a meeting"]),
        repeat: compile(&[
            "^ sorry|pardon|huh|what|eh|hello $",
            "^ sorry|excuse|pardon|huh? what|me $",
            "^ what was|is that|it $",
            "^ come again $",
            "repeat|repeating",
            "say that|it? again",
            "said what",
            "one more time",
            "did|can|could not ~ catch|hear|get|understand|follow",
            "what did you say|said",
            "what was that|the question",
            "beg your pardon",
            "breaking up",
            "speak up",
            "louder",
            "what do you mean",
        ]),
        yes: compile(&[
            "yes|yess|yeah|yea|yeh|yah|ya|yep|yup|yip|aye|yas|yeap",
            "sure|shure|certainly|absolutely|definitely|totally|affirmative|gladly",
            "of course",
            "go ahead|on|head",
            "go for it",
            "fire away",
            "sounds good|great|fine|nice|interesting|perfect|lovely|ok|okay|alright",
            "sounds like a plan",
            "that works",
            "that would|will|could|should work",
            "works for me",
            "that is good|right|me|correct|great|perfect|true",
            "that would be great|fine|good|nice|lovely|perfect|helpful",
            "fine|ok|okay|good|alright by|with me|us|that|it",
            "why not",
            "no doubt",
            "you bet",
            "by all means",
            "count me in",
            "sign me up",
            "let us do|hear it|that|this",
            "i|we would like that|it|one",
            "let us go|talk",
            "tell me more",
            "i|we am|are listening",
            "all ears",
            "interested",
            "this is he|she|him|her|me|them",
            "speaking",
            "do|would not mind",
            "not busy",
            "not too|that|very|so busy",
            "have|got ~ time|minute|minutes|moment|second|seconds|sec",
            "have|got a few|couple|moment|sec|second|minute|bit",
            "i|we can|could talk|chat|speak",
            "i|we am|are free",
            "free now|today",
            "is a good|great|fine time",
            "make it quick|fast|brief|short",
            "spare ~ minute|minutes|moment|time|second",
            "now is|works|would be? fine|good|great|ok|okay|perfect",
            "love to|that|one",
            "happy|glad to",
            "please do",
            "i agree|accept",
            "do|can not see why not",
            "agreed",
            "it is a deal",
            "i can|could do that|it",
        ]),
        // Agreement only as the whole answer: "Fine." agrees, "the door is fine" does not.
        yes_alone: compile(&[
            "fine|great|perfect|cool|excellent|wonderful|awesome|lovely|good|nice|brilliant|super",
            "exactly|indeed|correct|true|precisely|deal|done",
            "tell me",
            "i|we do|am|are|have|can|will|would|did|could|shall",
            "it is|was me|him|her|us?",
            "i|we am|are in",
            "very well",
        ]),
        weak_yes: compile(&[
            "i? guess|suppose|reckon|think|believe|hope|expect so",
            "i would|should|could say so",
            "probably|possibly|presumably",
            "if i must|have to?",
            "i guess|suppose|think i|we can|could|do|have",
            "might|could|may be interested|interesting|good|nice",
            "if you must|insist",
        ]),
        weak_yes_alone: compile(&[
            "i guess|suppose|reckon|think",
            "kind|sort of",
            "more or less",
            "i might|may",
            "could|might be",
        ]),
        // "That's okay" is as often a polite "no need" as a yes.
        ack: compile(&[
            "ok|okay|okey|okie|alright|kay",
            "o k",
            "all right",
            "okey dokey",
            "that is fine|okay|ok|alright",
        ]),
        ack_alone: compile(&[
            "right right?",
            "uh huh",
            "mhm|mhmm|mmhm|mmhmm",
            "mm|mmm|hmm hmm|mm",
            "i see",
            "got it",
            "gotcha",
            "understood",
            "fair enough",
        ]),
        // Agreement when they answer an offer; politeness anywhere else.
        offer_yes: compile(&["no problem|problems|worries|bother", "not a problem"]),
        no: compile(&[
            "no|nope|nah|naw|nay|noo|nop|nuh|na",
            // whisper's spelling of a lone "no"
            "^ know $",
            "^ know thanks|thank you? $",
            "uh uh",
            "nuh uh",
            // "yeah, no" is a no
            "^ yeah|yea|yeh no",
            "not ~ interested",
            "no|not any? interest",
            "no thanks|thank",
            "not really|now|today|tonight|anymore|necessary|needed|keen",
            "not for me|us",
            "not at all",
            "not right now",
            "not at the|this moment|time",
            "not this time|week|month|year",
            "of? absolutely|definitely|certainly|totally|really|surely|course not|no",
            "not buying|looking|shopping|free|available",
            // A bare "I can't" / "No, I'm not" as the answer; "I can not talk" means more.
            "i|we do|can|am|are|will|would|did|could|have|should not thanks|thank|sorry? you? $",
            "do|does|did not want|need|like|care",
            "do|does not have|got ~ time|minute|minutes|moment|second",
            "do not think so?",
            "can|could not afford|do|make",
            "would|had rather not",
            "prefer not",
            "pass",
            "no way|chance",
            "not a chance",
            "never",
            "negative",
            "i|we|were am|are? all? good|fine|okay|ok|alright|set",
            "already have|got|use|own|bought|signed",
            "that is not me|right|correct|true|him|her",
            "wrong person",
            "it is not",
            "does|do not interest|sound",
            "not my thing",
            "forget it",
            "i decline|refuse",
        ]),
        weak_no: compile(&[
            "i? guess|suppose|think|believe not",
            "probably|maybe|perhaps|possibly not",
            "not sure ~ want|need|interested",
        ]),
        // A yes said with one of these is hedged; a no is only softened ("I think I'll pass").
        softener: compile(&["i think|guess|suppose|reckon"]),
        hedge: compile(&[
            "not sure|certain",
            "not really sure|certain",
            "not so sure",
            "do not know",
            "no idea",
            "maybe|perhaps",
            "depends",
            "not that i know",
            "let me think",
            "hard to say",
            "we will see",
        ]),
        neutral: compile(&[
            "right now",
            "who is this|calling|it|that",
            "who are you",
            "what is this|it about|regarding",
            "thank you for watching|calling",
            "thanks for watching|calling",
            "yes or no",
            "no one",
        ]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialogue::when::{Day, TimeOfDay};

    fn check(cases: &[(&str, Answer)], expect: Expect) {
        let mut wrong = Vec::new();
        for (text, answer) in cases {
            let got = classify(text, expect);
            if got != *answer {
                wrong.push(format!("{text:?}: expected {answer:?}, got {got:?}"));
            }
        }
        assert!(wrong.is_empty(), "{} misclassified:\n{}", wrong.len(), wrong.join("\n"));
    }

    #[test]
    fn yes_phrasings() {
        let yes = [
            "Yes.",
            "yes",
            "Yeah.",
            "Yeah, sure.",
            "Yep!",
            "Yup",
            "Sure",
            "Sure, go ahead.",
            "Okay.",
            "OK",
            "Ok, sure",
            "Alright",
            "All right.",
            "Absolutely!",
            "Definitely",
            "Of course.",
            "Certainly.",
            "Yes please.",
            "Yeah I do.",
            "I do.",
            "I have a few minutes.",
            "Uh-huh.",
            "Mm-hmm.",
            "mhm",
            "That's right.",
            "Correct.",
            "Speaking.",
            "This is he.",
            "Yes, that's me.",
            "Sounds good.",
            "Why not?",
            "No problem.",
            "Sure, no problem.",
            "I don't mind.",
            "I wouldn't mind.",
            "Yeah, go on.",
            "Go ahead.",
            "Um, yes.",
            "Well, yeah.",
            "Yesss",
            "Yea.",
            "Ya.",
            "Yeah, I'm interested.",
            "No, no, go ahead.",
            "Yes I'm not busy at all.",
            "Great, tell me more.",
            "Perfect.",
            "Yes, I have time.",
            "I've got a minute.",
            "Sure thing.",
            "You bet.",
            "Yeah, that works.",
            "Okay, let's do it.",
            "Yes. Thank you.",
            "Right.",
            "Fine.",
            "I guess so.",
            "Yes, I'm at work but go ahead.",
            "Speaking, who's this?",
            "Now is fine.",
            "Sure, but make it quick.",
        ];
        check(&yes.map(|t| (t, Answer::Yes)), Expect::YesNo);
    }

    #[test]
    fn no_phrasings() {
        let no = [
            "No.",
            "no",
            "Nope.",
            "Nah.",
            "Naw",
            "No thanks.",
            "No, thank you.",
            "Not interested.",
            "I'm not interested.",
            "I'm really not interested in that.",
            "Not really.",
            "Not right now.",
            "Not today.",
            "I don't think so.",
            "I don't.",
            "I can't.",
            "No way.",
            "Never.",
            "Negative.",
            "I'm good, thanks.",
            "We're good.",
            "Uh-uh.",
            "Nooo.",
            "Know.",
            "No, not at all.",
            "Yeah, no.",
            "Yes... well, no, not really.",
            "I'll pass.",
            "It's not for me.",
            "Um, no.",
            "I don't want it.",
            "We don't need that.",
            "No I'm not.",
            "That's not me.",
            "Wrong person.",
            "We already have one.",
            "I don't have time for this.",
            "Thanks, but no thanks.",
            "nah I'm good",
            "Nope, not today.",
            "Yes. I mean no.",
        ];
        check(&no.map(|t| (t, Answer::No)), Expect::YesNo);
    }

    #[test]
    fn opt_out_phrasings() {
        let out = [
            "Stop calling me.",
            "Please stop calling me!",
            "Stop calling this number.",
            "Stop it.",
            "STOP",
            "Remove me from your list.",
            "Please remove my number.",
            "Remove me.",
            "Take me off your list.",
            "Take me off your calling list.",
            "Put me on your do not call list.",
            "I don't want any more calls from you.",
            "We do not need your calls.",
            "Do not call me again.",
            "Don't call me again.",
            "Don't ever call me.",
            "Don't call here anymore.",
            "Never call this number again.",
            "Unsubscribe.",
            "Opt out.",
            "I want to opt out.",
            "Leave me alone.",
            "Lose my number.",
            "No more calls please.",
            "Quit calling me.",
            "No, stop calling.",
            "Don't call me.",
            "Stop colling me",
            "Remove me from your calling list",
            "Get me off your list.",
            "I said stop bothering me.",
            "Wrong number.",
            "You have the wrong number.",
            "Delete my number.",
            "Please take my number off your list",
            "Unsubscibe me",
            "I'm on the do not call registry.",
        ];
        check(&out.map(|t| (t, Answer::OptOut)), Expect::YesNo);
    }

    #[test]
    fn callback_phrasings_with_and_without_time() {
        use Answer::Callback;
        let at = |day, time| Callback(Some(CallbackTime::At { day, time }));
        let clock = |hour, minute| Some(TimeOfDay::Clock { hour, minute });
        let cases = [
            ("Call me back tomorrow at 3.", at(Day::Tomorrow, clock(15, 0))),
            ("Can you call me back tomorrow at 3 pm?", at(Day::Tomorrow, clock(15, 0))),
            ("Could you try again tomorrow morning?", at(Day::Tomorrow, Some(TimeOfDay::Morning))),
            ("Call me in an hour.", Callback(Some(CallbackTime::After { minutes: 60 }))),
            ("Call back in half an hour.", Callback(Some(CallbackTime::After { minutes: 30 }))),
            ("Later.", Callback(Some(CallbackTime::Later))),
            ("Maybe later.", Callback(Some(CallbackTime::Later))),
            ("Call me later.", Callback(Some(CallbackTime::Later))),
            ("Not now, call me later.", Callback(Some(CallbackTime::Later))),
            ("No, call me next week.", at(Day::NextWeek, None)),
            ("Yes but call me back on Monday.", at(Day::Weekday(jiff::civil::Weekday::Monday), None)),
            ("Tomorrow.", at(Day::Tomorrow, None)),
            ("I'm busy right now.", Callback(None)),
            ("I'm in a meeting.", Callback(None)),
            ("I'm driving.", Callback(None)),
            ("This is not a good time.", Callback(None)),
            ("I can't talk right now.", Callback(None)),
            ("Call back.", Callback(None)),
            ("Can you call back?", Callback(None)),
            ("Give me a call at 5.", at(Day::Today, clock(17, 0))),
            ("Call me around 4:30.", at(Day::Today, clock(16, 30))),
            ("Ring me tonight.", at(Day::Today, Some(TimeOfDay::Evening))),
            ("I'll call you back.", Callback(None)),
            ("Try me again some other time.", Callback(Some(CallbackTime::Later))),
            ("call me tomorow", at(Day::Tomorrow, None)),
        ];
        check(&cases, Expect::YesNo);
    }

    #[test]
    fn repeat_phrasings() {
        let again = [
            "Sorry?",
            "What?",
            "Huh?",
            "Pardon?",
            "Pardon me?",
            "Excuse me?",
            "Sorry, what?",
            "What was that?",
            "Can you repeat that?",
            "Could you repeat the question?",
            "Say that again?",
            "Could you say that again please?",
            "Come again?",
            "I didn't catch that.",
            "I didn't hear you.",
            "I can't hear you.",
            "Sorry, I didn't get that.",
            "What did you say?",
            "One more time, please.",
            "You're breaking up.",
            "Hello?",
            "Um, what?",
            "I beg your pardon?",
            "What do you mean?",
            "Huh, what?",
        ];
        check(&again.map(|t| (t, Answer::Repeat)), Expect::YesNo);
    }

    #[test]
    fn unclear_and_hallucinations() {
        let unclear = [
            "",
            "   ",
            "...",
            "Um.",
            "Hmm.",
            "Thank you.",
            "Thanks for watching!",
            "you",
            "I'm not sure.",
            "I don't know.",
            "Maybe.",
            "It depends.",
            "Who is this?",
            "What is this about?",
            "The weather is nice.",
            "Purple elephant.",
            "Not sure, maybe.",
            "Let me think about it.",
            "Is this a sales call?",
        ];
        check(&unclear.map(|t| (t, Answer::Unclear)), Expect::YesNo);
    }

    #[test]
    fn callback_time_question_reads_bare_times() {
        use Answer::Callback;
        let cases = [
            (
                "At 3.",
                Callback(Some(CallbackTime::At {
                    day: Day::Today,
                    time: Some(TimeOfDay::Clock { hour: 15, minute: 0 }),
                })),
            ),
            (
                "Tomorrow afternoon.",
                Callback(Some(CallbackTime::At { day: Day::Tomorrow, time: Some(TimeOfDay::Afternoon) })),
            ),
            ("In an hour.", Callback(Some(CallbackTime::After { minutes: 60 }))),
            ("Whenever, just call back.", Callback(None)),
            ("No, never mind.", Answer::No),
            ("No thanks, don't bother.", Answer::No),
            // "Tomorrow morning, please." as whisper heard it on a phone line: no refusal.
            ("Am I no more, dink please?", Answer::Unclear),
            ("Actually don't call me again.", Answer::OptOut),
            ("Sorry?", Answer::Repeat),
            ("Hmm.", Answer::Unclear),
        ];
        check(&cases, Expect::CallbackTime);
    }

    /// Readings of `(text, answer, doubt)` under `expect`; all mismatches reported at once.
    fn check_readings(cases: &[(&str, Answer, Option<Doubt>)], expect: Expect) {
        let wrong: Vec<String> = cases
            .iter()
            .filter_map(|&(text, answer, doubt)| {
                let got = read(text, expect);
                let want = Reading { answer, doubt };
                (got != want).then(|| format!("{text:?}: expected {want:?}, got {got:?}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{} misread:\n{}", wrong.len(), wrong.join("\n"));
    }

    #[test]
    fn the_issues_phrasings() {
        let yes = [
            "go for it",
            "of course",
            "why not",
            "yes, sure, go ahead",
            "yep, I have got time",
            "sure thing",
            "that works",
        ];
        check_readings(&yes.map(|t| (t, Answer::Yes, None)), Expect::YesNo);
        // Hedged: a yes, but one the bot confirms.
        check_readings(&[("well... I guess so", Answer::Yes, Some(Doubt::Hedged))], Expect::YesNo);
        let no = [
            "I'll pass",
            "thanks but no thanks",
            "absolutely not",
            "not right now, no",
            "I don't want it",
            "no, not today, thanks",
            "I'm not interested",
            "nah",
        ];
        check_readings(&no.map(|t| (t, Answer::No, None)), Expect::YesNo);
    }

    #[test]
    fn clear_yes_in_other_words() {
        let yes = [
            "Yeah, absolutely.",
            "Sure, I've got a few minutes.",
            "Yes please, go on.",
            "Definitely, tell me more.",
            "Sounds good to me.",
            "I'd love to.",
            "Go ahead, I'm listening.",
            "Of course, fire away.",
            "Yeah, I can spare a minute.",
            "I don't mind at all.",
            "No problem, go ahead.",
            "Yes, that would be great.",
            "Okay, sure.",
            "Alright, let's hear it.",
            "Yeah, why not.",
            "Yup, now is fine.",
            "Count me in.",
            "Works for me.",
            "I don't see why not.",
            "No, wait, yes.",
            "Um, yeah, I'm interested.",
            "Yes speaking. Yes speaking. Yes speaking.",
            "Fine by me.",
            "I'm okay with that.",
            "Sure, I'm not too busy.",
            "Go on then.",
            "I can do that.",
            "I've got five minutes.",
            "I'm free right now.",
            "I can talk now.",
            "Now's a good time.",
            "No, okay, go ahead.",
            "Okay, make it quick.",
            "Okay, let's do that.",
            "Right, let's do this.",
            "I'd like that.",
        ];
        check_readings(&yes.map(|t| (t, Answer::Yes, None)), Expect::YesNo);
    }

    #[test]
    fn clear_no_in_other_words() {
        let no = [
            "No thank you, I'm all set.",
            "Not for me, thanks.",
            "I'd rather not.",
            "Nope, we're good.",
            "Definitely not.",
            "I really don't have time for this.",
            "I don't think so, no.",
            "Of course not.",
            "Not interested, sorry.",
            "No, I don't need one.",
            "We already have a provider.",
            "No way.",
            "Not really, no.",
            "I don't want to go ahead.",
            "I don't think that works for me.",
            "I never have time for this.",
            "Yes... no, actually no.",
            "Sure... well, actually, no.",
            "I'm uninterested.",
            "I have no interest in that.",
            "Nah, not this time.",
            "It doesn't sound interesting.",
            "No, that's fine.",
            "No, that's okay, thanks.",
            "Okay, no.",
            "I think I'll pass.",
            "I'm not free.",
            "I'm not buying anything.",
            "Absolutely no.",
            "Right, no.",
        ];
        check_readings(&no.map(|t| (t, Answer::No, None)), Expect::YesNo);
    }

    #[test]
    fn unsure_answers_carry_why() {
        use Doubt::*;
        let cases = [
            ("Okay.", Answer::Yes, Some(Acknowledgment)),
            ("Right.", Answer::Yes, Some(Acknowledgment)),
            ("Uh-huh.", Answer::Yes, Some(Acknowledgment)),
            ("Mm-hmm.", Answer::Yes, Some(Acknowledgment)),
            ("Okay, okay.", Answer::Yes, Some(Acknowledgment)),
            ("Sure?", Answer::Yes, Some(Questioning)),
            ("Yes?", Answer::Yes, Some(Questioning)),
            ("Okay?", Answer::Yes, Some(Questioning)),
            ("No?", Answer::No, Some(Questioning)),
            ("I think so.", Answer::Yes, Some(Hedged)),
            ("Yeah, I guess.", Answer::Yes, Some(Hedged)),
            ("Probably.", Answer::Yes, Some(Hedged)),
            ("I suppose.", Answer::Yes, Some(Hedged)),
            ("Maybe, yeah.", Answer::Yes, Some(Hedged)),
            ("I guess not.", Answer::No, Some(Hedged)),
            ("Probably not.", Answer::No, Some(Hedged)),
            ("I'm not sure, no.", Answer::No, Some(Hedged)),
            ("Yeah, I can not time.", Answer::Yes, Some(StrayNegation)),
            ("That's right, so...", Answer::Yes, Some(CutOff)),
            ("Sure, but", Answer::Yes, Some(CutOff)),
            ("Yes, no.", Answer::Unclear, Some(Mixed)),
            ("No... yes.", Answer::Unclear, Some(Mixed)),
            ("Not really. Yes.", Answer::Unclear, Some(Mixed)),
            ("That's okay.", Answer::Yes, Some(Acknowledgment)),
            ("I might be interested.", Answer::Yes, Some(Hedged)),
            ("I guess I could.", Answer::Yes, Some(Hedged)),
        ];
        check_readings(&cases, Expect::YesNo);
    }

    #[test]
    fn agreement_needs_positive_evidence() {
        // What whisper made of refusals on 8 kHz audio, and other turns with no yes in them:
        // never a clear yes.
        let not_yes = [
            "I do I think so",
            "I'll get the door.",
            "There's somebody at the door.",
            "The door is open.",
            "It's the door.",
            "Is that the door?",
            "I do the door.",
            "Hold on, the door.",
            "The time.",
            "Bye.",
            "I can't.",
            "I do know.",
        ];
        let wrong: Vec<String> = not_yes
            .iter()
            .map(|t| (t, read(t, Expect::YesNo)))
            .filter(|(_, r)| *r == Reading::clear(Answer::Yes))
            .map(|(t, r)| format!("{t:?}: {r:?}"))
            .collect();
        assert!(wrong.is_empty(), "read as a clear yes:\n{}", wrong.join("\n"));
        assert_eq!(read("I do I think so", Expect::YesNo).doubt, Some(Doubt::Hedged), "confirmed, not taken");
        assert_eq!(classify("There's somebody at the door.", Expect::YesNo), Answer::Unclear);
    }

    #[test]
    fn negation_rules_of_the_issue() {
        check_readings(
            &[
                ("Not sure.", Answer::Unclear, None),
                ("I'm not sure about that.", Answer::Unclear, None),
                ("I'm not really sure.", Answer::Unclear, None),
                ("No problem.", Answer::Yes, None),
                ("No worries.", Answer::Yes, None),
                ("I don't mind.", Answer::Yes, None),
                ("I don't think so.", Answer::No, None),
                ("Not really.", Answer::No, None),
                ("Yes... no, actually no.", Answer::No, None),
                ("Why not?", Answer::Yes, None),
            ],
            Expect::YesNo,
        );
        // "No problem" is politeness unless it answers an offer; it is never a "no".
        check_readings(&[("No problem.", Answer::Unclear, None), ("No worries.", Answer::Unclear, None)], Expect::Open);
        assert_eq!(classify("No problem.", Expect::CallbackTime), Answer::Unclear);
    }

    #[test]
    fn callbacks_as_callers_say_them_and_as_phone_audio_mangles_them() {
        use Answer::Callback;
        let cases = [
            ("Ring me back in an hour.", Callback(Some(CallbackTime::After { minutes: 60 }))),
            (
                "Call me tomorrow at 3 pm.",
                Callback(Some(CallbackTime::At {
                    day: Day::Tomorrow,
                    time: Some(TimeOfDay::Clock { hour: 15, minute: 0 }),
                })),
            ),
            // "Ring me back in an hour" as tiny.en heard it: a callback, the time asked for.
            ("Bring me back to the power.", Callback(None)),
        ];
        check(&cases, Expect::YesNo);
    }

    #[test]
    fn dtmf_digits() {
        assert_eq!(classify_dtmf('1'), Some(Answer::Yes));
        assert_eq!(classify_dtmf('2'), Some(Answer::No));
        assert_eq!(classify_dtmf('3'), Some(Answer::Callback(None)));
        assert_eq!(classify_dtmf('9'), Some(Answer::OptOut));
        assert_eq!(classify_dtmf('0'), Some(Answer::Repeat));
        assert_eq!(classify_dtmf('5'), Some(Answer::Unclear));
        assert_eq!(classify_dtmf('#'), None);
        assert_eq!(classify_dtmf('*'), None);
        assert_eq!(classify_dtmf('x'), None);
    }
}
