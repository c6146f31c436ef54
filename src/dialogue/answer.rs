//! What a caller's turn means: yes, no, opt-out, callback (with a time if said), repeat
//! request, or unclear. Pure and rule-based: speech recognition output for short answers is
//! noisy but small, and rules can be read, tested and fixed one phrasing at a time.
//!
//! Precedence, strongest first: opt-out ("stop calling me", "remove me from your list"),
//! callback ("call me back tomorrow at 3", "I'm busy", "later"), repeat ("sorry?", "can you
//! repeat that"), then yes against no. Yes and no are found as phrases anywhere in the turn;
//! a phrase inside a longer one of the other kind does not count ("no" in "no problem", "I
//! do not" in "I do not mind"), hedges ("not sure", "I don't know") cancel what they contain,
//! and when both remain the last one wins ("yeah, no" is a no, "no, no, go ahead" a yes).
//! Anything else is unclear, including recogniser hallucinations on noise ("Thank you.").
//!
//! Keys ([`classify_dtmf`]): 1 = yes, 2 = no, 3 = call back, 9 = opt-out, 0 = repeat; other
//! digits are unclear, `*` and `#` are ignored.

use std::sync::OnceLock;

use super::text::{Pattern, is_filler, words};
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

/// Classifies a transcribed turn.
pub fn classify(text: &str, expect: Expect) -> Answer {
    let words = words(text);
    if words.is_empty() {
        return Answer::Unclear;
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
        return Answer::OptOut;
    }
    let time = when::parse(&words);
    // "I'm not busy" is no reason to call back.
    let negated: Vec<(usize, usize)> = p.not_callback.iter().flat_map(|pat| pat.find_all(&words)).collect();
    let callback_phrase = p
        .callback
        .iter()
        .flat_map(|pat| pat.find_all(&words))
        .any(|(s, e)| !negated.iter().any(|&(ns, ne)| ns <= s && e <= ne));
    let polarity = yes_or_no(&words, p);
    match expect {
        Expect::CallbackTime => {
            // "No, never mind" declines the callback; anything with a time sets it.
            if let Some(t) = time {
                return Answer::Callback(Some(t));
            }
            if polarity == Some(Answer::No) && !callback_phrase {
                return Answer::No;
            }
        }
        Expect::YesNo | Expect::Open => {
            if callback_phrase || when::mentions_day_or_delay(&words) {
                return Answer::Callback(time);
            }
        }
    }
    if p.repeat.iter().any(|pat| pat.find(&core).is_some()) {
        return Answer::Repeat;
    }
    if let Some(answer) = polarity {
        return answer;
    }
    if expect == Expect::CallbackTime && callback_phrase {
        return Answer::Callback(None);
    }
    Answer::Unclear
}

/// Yes or no by the phrase rules of the module docs.
fn yes_or_no(words: &[String], p: &Patterns) -> Option<Answer> {
    // (start, end, kind): kind 0 = yes, 1 = no, 2 = hedge
    let mut found: Vec<(usize, usize, u8)> = Vec::new();
    for (kind, set) in [(0u8, &p.yes), (1, &p.no), (2, &p.hedge)] {
        for pat in set {
            found.extend(pat.find_all(words).into_iter().map(|(s, e)| (s, e, kind)));
        }
    }
    let inside_longer =
        |&(s, e, _): &(usize, usize, u8)| found.iter().any(|&(s2, e2, _)| s2 <= s && e <= e2 && (e2 - s2) > (e - s));
    let kept: Vec<(usize, usize, u8)> = found.iter().copied().filter(|m| !inside_longer(m) && m.2 != 2).collect();
    // The last phrase wins; at the same end, the longer one.
    kept.iter()
        .max_by_key(|&&(s, e, _)| (e, e - s))
        .map(|&(_, _, kind)| if kind == 0 { Answer::Yes } else { Answer::No })
}

struct Patterns {
    opt_out: Vec<Pattern>,
    callback: Vec<Pattern>,
    not_callback: Vec<Pattern>,
    repeat: Vec<Pattern>,
    yes: Vec<Pattern>,
    no: Vec<Pattern>,
    hedge: Vec<Pattern>,
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
            "yes|yess|yeah|yea|yeh|yah|ya|yep|yup|aye|yas",
            "sure|shure|certainly|absolutely|definitely|totally|indeed|exactly|correct|affirmative",
            "ok|okay|okey|okie|alright|kay",
            "o k",
            "all right",
            "right",
            "of course",
            "go ahead|on",
            "sounds good|great|fine|nice|interesting",
            "that works",
            "that is fine|good|right|me|correct|great|perfect",
            "that would be great|fine|good",
            "works for me",
            "why not",
            "i do|am|would|will|can|have|did",
            "we do|are|would|will|can|have",
            "it is",
            "this is he|she|him|her|me",
            "speaking",
            "uh huh",
            "mhm|mhmm|mmhmm",
            "mm hmm",
            "fine",
            "perfect|great|cool|excellent|wonderful|awesome|lovely",
            "no problem|worries",
            "not a problem",
            "do|would not mind",
            "not busy",
            "interested",
            "tell me more",
            "go for it",
            "let us do it",
            "count me in",
            "you bet",
            "by all means",
            "i? guess|think|suppose so",
            "have|got a|some|the? time|minute|minutes|moment|second|few",
        ]),
        no: compile(&[
            "no|nope|nah|naw|nay|noo|nop|nay",
            "^ know $",
            "uh uh",
            "nuh uh",
            "not interested",
            "not ~ interested",
            "no thanks|thank",
            "not really|now|today|anymore",
            "not at all",
            "not right now",
            "not at the|this moment|time",
            "i do|can|am|will|would|did not",
            "we do|can|are|will|would|did not",
            "do not think so",
            "do not want|need|have",
            "do|does not have|got ~ time|minute|minutes|moment|second",
            "negative",
            "never",
            "pass",
            "i am good|fine|okay|ok|alright",
            "we are good|fine|okay|ok|alright",
            // "we're" loses its apostrophe and becomes "were"
            "were|we|i am? all? good|fine|okay|ok|alright",
            "no way",
            "already have|got|use",
            "not for me|us",
            "that is not me|right|correct",
            "wrong person",
            "it is not",
        ]),
        hedge: compile(&[
            "not sure",
            "i do not know",
            "do not know",
            "no idea",
            "maybe",
            "perhaps",
            "depends",
            "it depends",
            "i am not sure",
            "not that i know",
            "who is this|calling",
            "who are you",
            "what is this about",
            "thank you for watching",
            "thanks for watching",
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
            ("Actually don't call me again.", Answer::OptOut),
            ("Sorry?", Answer::Repeat),
            ("Hmm.", Answer::Unclear),
        ];
        check(&cases, Expect::CallbackTime);
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
