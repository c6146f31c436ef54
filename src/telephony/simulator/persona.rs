//! Who answers each simulator number, and what they say to what the bot said. Pure: the
//! callee (`callee.rs`) transcribes the bot's lines and asks [`Conversation::respond`] for a
//! reply; nothing here does I/O, so every persona's behaviour is unit-tested on text.
//!
//! A persona answers what it was asked, judged by the last sentence the bot said since the
//! persona last spoke ([`asked`]):
//! - "Am I speaking with John?" / "Is this John?": confirms ("Yes, speaking.");
//! - any other question (an offer, "Sorry, was that a yes?"): its role's answer, the n-th
//!   answer for the n-th such question, the last one repeated after that; a re-prompt
//!   ("Sorry, I didn't catch that. Would you ...?") is such a question again;
//! - "When would be a good time to call you back?": its time (or its refusal);
//! - a statement: nothing;
//! - a goodbye: nothing, and it hangs up if the line stays open (see `callee`).

use std::time::Duration;

/// A callee behind one of the simulator's numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persona {
    Agrees,
    Declines,
    OptsOut,
    WantsCallback,
    /// Talks over the bot's first line a second in ("Sorry, who is this?"), then agrees.
    Interrupts,
    /// An answering machine: a greeting, then a beep.
    Voicemail,
    NeverAnswers,
    Busy,
    /// Agrees with a 700 ms pause inside the sentence ("Yes, sure," ... "go ahead.").
    PausesMidSentence,
    /// Says "Uh-huh." in the middle of the bot's first long line, then agrees.
    Backchannels,
    /// Answers the offer with "Can I speak to a real person?"; asked again, declines.
    AsksForPerson,
}

/// Every persona with its number, in number order (the README's table).
pub const NUMBERS: [(&str, Persona); 11] = [
    ("+15550100001", Persona::Agrees),
    ("+15550100002", Persona::Declines),
    ("+15550100003", Persona::OptsOut),
    ("+15550100004", Persona::WantsCallback),
    ("+15550100005", Persona::Interrupts),
    ("+15550100006", Persona::Voicemail),
    ("+15550100007", Persona::NeverAnswers),
    ("+15550100008", Persona::Busy),
    ("+15550100009", Persona::PausesMidSentence),
    ("+15550100010", Persona::Backchannels),
    ("+15550100011", Persona::AsksForPerson),
];

/// One stretch of a persona's speech.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Words(&'static str),
    /// Silence inside the utterance (the words around it are trimmed of their own silence,
    /// so the gap is this long).
    Pause(Duration),
}

/// What a persona says in one go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utterance(pub &'static [Part]);

impl Utterance {
    /// The words, without pauses (what a transcript of it should read).
    pub fn text(&self) -> String {
        let words: Vec<&str> = self.words().collect();
        words.join(" ")
    }

    pub fn words(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().filter_map(|p| match p {
            Part::Words(w) => Some(*w),
            Part::Pause(_) => None,
        })
    }
}

macro_rules! say {
    ($text:literal) => {
        Utterance(&[Part::Words($text)])
    };
}

const SPEAKING: Utterance = say!("Yes, speaking.");
const INTERESTED: Utterance = say!("Yes, I am interested.");
const PLEASE: Utterance = say!("Yes, please.");
const NOT_INTERESTED: Utterance = say!("No, I am not interested. Thank you.");
const OPT_OUT: Utterance = say!("Stop calling me. Please remove me from your list.");
const BUSY_CALL_BACK: Utterance = say!("I'm busy right now. Can you call me back tomorrow at 3 pm?");
const TOMORROW_AT_3: Utterance = say!("Tomorrow at 3 pm.");
const NO_THANKS: Utterance = say!("No, thank you.");
const SURE_GO_AHEAD: Utterance =
    Utterance(&[Part::Words("Yes, sure,"), Part::Pause(Duration::from_millis(700)), Part::Words("go ahead.")]);
const REAL_PERSON: Utterance = say!("Can I speak to a real person?");
const NO_PERSON_NO_THANKS: Utterance = say!("No, thank you. Goodbye.");

/// Speech over the bot's line, not waiting for it to finish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TalkOver {
    /// Said once the bot's line has been audible this long (once per call).
    pub after: Duration,
    pub says: Utterance,
    /// True: a backchannel, not a turn (what the bot said before it still awaits an answer).
    /// False: a turn of its own (the bot's line so far is answered by it).
    pub backchannel: bool,
}

impl Persona {
    pub fn for_number(phone: &str) -> Option<Persona> {
        NUMBERS.iter().find(|(number, _)| *number == phone).map(|&(_, persona)| persona)
    }

    /// Whether a call to this persona gets picked up (else the carrier reports why not).
    pub fn answers(self) -> bool {
        !matches!(self, Persona::NeverAnswers | Persona::Busy)
    }

    /// Whether it ever answers the bot (an answering machine does not listen).
    pub fn replies(self) -> bool {
        let role = self.role();
        role.identity.is_some() || !role.offers.is_empty() || role.time.is_some()
    }

    /// What the callee says as soon as it picks up.
    pub fn opening(self) -> Utterance {
        match self {
            Persona::Voicemail => say!(
                "Hi, you've reached John Smith. I'm not available to take your call right now. \
                 Please leave a message after the tone."
            ),
            _ => say!("Hello?"),
        }
    }

    /// Speech over a bot line, if this persona does that.
    pub fn talk_over(self) -> Option<TalkOver> {
        match self {
            Persona::Interrupts => Some(TalkOver {
                after: Duration::from_millis(1000),
                says: say!("Sorry, who is this?"),
                backchannel: false,
            }),
            Persona::Backchannels => {
                Some(TalkOver { after: Duration::from_millis(1500), says: say!("Uh-huh."), backchannel: true })
            }
            _ => None,
        }
    }

    /// Everything this persona may say, to synthesize ahead of need.
    pub fn repertoire(self) -> Vec<Utterance> {
        let mut all = vec![self.opening()];
        all.extend(self.talk_over().map(|t| t.says));
        let role = self.role();
        all.extend(role.identity);
        all.extend(role.offers.iter().copied());
        all.extend(role.time);
        let mut unique: Vec<Utterance> = Vec::with_capacity(all.len());
        for utterance in all {
            if !unique.contains(&utterance) {
                unique.push(utterance);
            }
        }
        unique
    }

    fn role(self) -> Role {
        let agrees = Role { identity: Some(SPEAKING), offers: &[INTERESTED, PLEASE], time: Some(TOMORROW_AT_3) };
        match self {
            Persona::Agrees | Persona::Interrupts | Persona::Backchannels => agrees,
            Persona::Declines => Role { identity: Some(SPEAKING), offers: &[NOT_INTERESTED], time: Some(NO_THANKS) },
            Persona::OptsOut => Role { identity: Some(OPT_OUT), offers: &[OPT_OUT], time: Some(OPT_OUT) },
            Persona::WantsCallback => {
                Role { identity: Some(SPEAKING), offers: &[BUSY_CALL_BACK], time: Some(TOMORROW_AT_3) }
            }
            Persona::PausesMidSentence => {
                Role { identity: Some(SPEAKING), offers: &[SURE_GO_AHEAD], time: Some(TOMORROW_AT_3) }
            }
            Persona::AsksForPerson => {
                Role { identity: Some(SPEAKING), offers: &[REAL_PERSON, NO_PERSON_NO_THANKS], time: Some(NO_THANKS) }
            }
            Persona::Voicemail | Persona::NeverAnswers | Persona::Busy => {
                Role { identity: None, offers: &[], time: None }
            }
        }
    }
}

/// A persona's answers by kind of question.
struct Role {
    identity: Option<Utterance>,
    /// The n-th yes/no question gets the n-th answer; the last one is repeated after that.
    offers: &'static [Utterance],
    time: Option<Utterance>,
}

/// What the bot's words ask of the callee.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asked {
    /// "Am I speaking with John?", "Is this John Smith?"
    Identity,
    /// Any other question: an offer, a confirmation, a re-prompt of one.
    YesNo,
    /// "When would be a good time to call you back?"
    WhenToCall,
    /// Ends with a goodbye.
    Goodbye,
    /// A statement, or nothing.
    Statement,
}

/// What the persona does after the bot's line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    Say(Utterance),
    /// Say nothing and wait for more.
    Silent,
    /// Say nothing; the bot said goodbye, so the call is over.
    Goodbye,
}

/// What the persona would say to a line, and to what kind of line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub asked: Asked,
    pub reply: Reply,
}

/// One persona's side of one call: what it has answered so far.
#[derive(Debug)]
pub struct Conversation {
    persona: Persona,
    offers_answered: usize,
}

impl Conversation {
    pub fn new(persona: Persona) -> Self {
        Conversation { persona, offers_answered: 0 }
    }

    /// The reply to what the bot said since the persona last spoke. Nothing changes until
    /// [`Conversation::spoke`]: a reply may still be dropped (the bot went on talking).
    pub fn respond(&self, bot_said: &str) -> Decision {
        let asked = asked(bot_said);
        let role = self.persona.role();
        let answer = match asked {
            Asked::Statement => return Decision { asked, reply: Reply::Silent },
            Asked::Goodbye => return Decision { asked, reply: Reply::Goodbye },
            Asked::Identity => role.identity,
            Asked::WhenToCall => role.time,
            Asked::YesNo => role.offers.get(self.offers_answered).or(role.offers.last()).copied(),
        };
        Decision { asked, reply: answer.map_or(Reply::Silent, Reply::Say) }
    }

    /// The decision's reply was said.
    pub fn spoke(&mut self, decision: Decision) {
        if decision.asked == Asked::YesNo && matches!(decision.reply, Reply::Say(_)) {
            self.offers_answered += 1;
        }
    }
}

/// What the last sentence of `bot_said` asks. Transcripts may lack the question mark, so a
/// sentence opening like a question counts as one.
pub fn asked(bot_said: &str) -> Asked {
    let Some(last) = last_sentence(bot_said) else { return Asked::Statement };
    let words = words(last);
    if words.iter().any(|w| w == "goodbye" || w == "bye") {
        return Asked::Goodbye;
    }
    if !(last.trim_end().ends_with('?') || words.first().is_some_and(|w| QUESTION_OPENERS.contains(&w.as_str()))) {
        return Asked::Statement;
    }
    if is_identity_question(&words) {
        Asked::Identity
    } else if words.iter().any(|w| w == "when") || contains(&words, &["what", "time"]) {
        Asked::WhenToCall
    } else {
        Asked::YesNo
    }
}

/// Words a question may open with.
const QUESTION_OPENERS: &[&str] = &[
    "am", "is", "are", "was", "were", "do", "does", "did", "would", "will", "can", "could", "shall", "should", "may",
    "might", "have", "has", "when", "what", "who", "how", "which", "where", "why",
];

/// "am I speaking with/to ...", "is this/that <a name>?", "who am I speaking with?"
fn is_identity_question(words: &[String]) -> bool {
    if contains(words, &["speaking", "with"]) || contains(words, &["speaking", "to"]) {
        return true;
    }
    // "Is this John Smith?" but not "Is this a good time?": a name of one or two words that
    // is not an ordinary word.
    const NOT_A_NAME: &[&str] = &["a", "an", "the", "good", "bad", "ok", "okay", "right", "correct", "still", "you"];
    match words {
        [is, this, rest @ ..] if is == "is" && (this == "this" || this == "that") => {
            (1..=2).contains(&rest.len()) && !NOT_A_NAME.contains(&rest[0].as_str())
        }
        _ => false,
    }
}

/// The last sentence with any words in it.
fn last_sentence(text: &str) -> Option<&str> {
    text.split_inclusive(['.', '?', '!']).rev().find(|s| s.chars().any(char::is_alphanumeric)).map(str::trim)
}

/// Lowercase words, apostrophes kept ("i'm"), other punctuation dropped.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'')).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

fn contains(words: &[String], phrase: &[&str]) -> bool {
    words.windows(phrase.len()).any(|w| w.iter().zip(phrase).all(|(a, b)| a == b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(reply: Reply) -> String {
        match reply {
            Reply::Say(utterance) => utterance.text(),
            Reply::Silent => "<silent>".into(),
            Reply::Goodbye => "<goodbye>".into(),
        }
    }

    /// The persona's replies to the bot's lines, in order.
    fn replies(persona: Persona, bot: &[&str]) -> Vec<String> {
        let mut conversation = Conversation::new(persona);
        bot.iter()
            .map(|line| {
                let decision = conversation.respond(line);
                conversation.spoke(decision);
                said(decision.reply)
            })
            .collect()
    }

    const SALES: [&str; 4] = [
        "Hello, this is Acme. Am I speaking with John?",
        "Would you like to hear about Premium Widget?",
        "Great, a colleague will email you the details.",
        "Thank you for your time. Goodbye.",
    ];

    #[test]
    fn every_number_has_its_persona_and_others_have_none() {
        assert_eq!(Persona::for_number("+15550100002"), Some(Persona::Declines));
        assert_eq!(Persona::for_number("+15550100011"), Some(Persona::AsksForPerson));
        assert_eq!(Persona::for_number("+15550100012"), None);
        assert_eq!(Persona::for_number("+14155550100"), None);
        for (i, (number, _)) in NUMBERS.iter().enumerate() {
            assert_eq!(*number, format!("+155501000{:02}", i + 1));
        }
    }

    #[test]
    fn what_the_bot_asked_is_read_from_its_last_sentence() {
        let cases = [
            ("Hello, this is Acme. Am I speaking with John?", Asked::Identity),
            ("Am I speaking to John Smith", Asked::Identity),
            ("Hi. Is this John?", Asked::Identity),
            ("Is this Mary Jones?", Asked::Identity),
            ("Is this a good time to talk?", Asked::YesNo),
            ("Hi Person, this is Acme.", Asked::Statement),
            ("Hi Person, this is Acme. Would you like to hear about Premium Widget?", Asked::YesNo),
            ("would you like to hear about premium widget", Asked::YesNo),
            ("Sorry, I didn't catch that. Would you like to hear about Premium Widget?", Asked::YesNo),
            ("Are you still there? Would you like to hear about Premium Widget?", Asked::YesNo),
            ("Sorry, was that a yes?", Asked::YesNo),
            ("Of course. When would be a good time to call you back?", Asked::WhenToCall),
            ("What time suits you?", Asked::WhenToCall),
            ("Great, a colleague will email you the details.", Asked::Statement),
            ("Thank you for your time. Goodbye.", Asked::Goodbye),
            ("thank you for your time bye bye", Asked::Goodbye),
            ("Would you like to hear about it? Great, a colleague will email you.", Asked::Statement),
            ("", Asked::Statement),
            (" . ", Asked::Statement),
        ];
        for (text, expected) in cases {
            assert_eq!(asked(text), expected, "{text:?}");
        }
    }

    #[test]
    fn agrees_confirms_who_it_is_says_yes_to_the_offer_and_is_silent_to_statements() {
        assert_eq!(
            replies(Persona::Agrees, &SALES),
            ["Yes, speaking.", "Yes, I am interested.", "<silent>", "<goodbye>"]
        );
    }

    #[test]
    fn declines_says_no_to_an_offer_after_a_statement_greeting_and_never_yes_speaking() {
        let bot = ["Hi Person, this is Acme.", "Hi Person, this is Acme. Would you like to hear about Premium Widget?"];
        assert_eq!(replies(Persona::Declines, &bot), ["<silent>", "No, I am not interested. Thank you."]);
        assert_eq!(replies(Persona::Declines, &SALES[..2]), ["Yes, speaking.", "No, I am not interested. Thank you."]);
    }

    #[test]
    fn a_repeated_question_is_answered_again() {
        let bot = [
            "Would you like to hear about Premium Widget?",
            "Sorry, I didn't catch that. Would you like to hear about Premium Widget?",
            "Are you still there? Would you like to hear about Premium Widget?",
        ];
        assert_eq!(replies(Persona::Declines, &bot), ["No, I am not interested. Thank you."; 3]);
        assert_eq!(replies(Persona::Agrees, &bot), ["Yes, I am interested.", "Yes, please.", "Yes, please."]);
    }

    #[test]
    fn the_callback_persona_asks_for_a_callback_then_gives_its_time() {
        let bot = [SALES[0], SALES[1], "Of course. When would be a good time to call you back?"];
        assert_eq!(
            replies(Persona::WantsCallback, &bot),
            ["Yes, speaking.", "I'm busy right now. Can you call me back tomorrow at 3 pm?", "Tomorrow at 3 pm."]
        );
    }

    #[test]
    fn opts_out_at_the_first_question_whatever_it_is() {
        assert_eq!(replies(Persona::OptsOut, &SALES[..1]), ["Stop calling me. Please remove me from your list."]);
        assert_eq!(
            replies(Persona::OptsOut, &["Hi, this is Acme.", "Do you have a minute?"]),
            ["<silent>", "Stop calling me. Please remove me from your list."]
        );
    }

    #[test]
    fn asks_for_a_person_then_declines_when_asked_again() {
        let bot = [SALES[0], SALES[1], "Sorry, I didn't catch that. Would you like to hear about Premium Widget?"];
        assert_eq!(
            replies(Persona::AsksForPerson, &bot),
            ["Yes, speaking.", "Can I speak to a real person?", "No, thank you. Goodbye."]
        );
    }

    #[test]
    fn pauses_mid_sentence_inside_its_yes() {
        let conversation = Conversation::new(Persona::PausesMidSentence);
        let Reply::Say(Utterance(parts)) = conversation.respond(SALES[1]).reply else { panic!("a reply") };
        assert_eq!(
            parts,
            [Part::Words("Yes, sure,"), Part::Pause(Duration::from_millis(700)), Part::Words("go ahead.")]
        );
    }

    #[test]
    fn a_reply_not_said_is_not_counted() {
        let mut conversation = Conversation::new(Persona::AsksForPerson);
        let first = conversation.respond(SALES[1]);
        assert_eq!(said(first.reply), "Can I speak to a real person?");
        // Dropped (the bot went on), then asked again: still the first answer.
        assert_eq!(conversation.respond(SALES[1]), first);
        conversation.spoke(first);
        assert_eq!(said(conversation.respond(SALES[1]).reply), "No, thank you. Goodbye.");
    }

    /// The contract with the bot's side: each persona's answers mean to the dialogue what the
    /// persona means by them. "Can I speak to a real person?" is neither yes nor no today (no
    /// transfer exists), so the bot asks again and the persona then declines.
    #[test]
    fn the_dialogue_understands_the_answers_as_meant() {
        use crate::dialogue::{Answer, Expect, classify};
        let offer = |persona: Persona, nth: usize| {
            let mut conversation = Conversation::new(persona);
            let mut decision = conversation.respond(SALES[1]);
            for _ in 0..nth {
                conversation.spoke(decision);
                decision = conversation.respond(SALES[1]);
            }
            classify(&said(decision.reply), Expect::YesNo)
        };
        assert_eq!(classify(&SPEAKING.text(), Expect::Open), Answer::Yes);
        assert_eq!(offer(Persona::Agrees, 0), Answer::Yes);
        assert_eq!(offer(Persona::Agrees, 1), Answer::Yes);
        assert_eq!(offer(Persona::Interrupts, 0), Answer::Yes);
        assert_eq!(offer(Persona::Backchannels, 0), Answer::Yes);
        assert_eq!(offer(Persona::PausesMidSentence, 0), Answer::Yes);
        assert_eq!(offer(Persona::Declines, 0), Answer::No);
        assert_eq!(offer(Persona::OptsOut, 0), Answer::OptOut);
        assert!(matches!(offer(Persona::WantsCallback, 0), Answer::Callback(Some(_))));
        assert_eq!(offer(Persona::AsksForPerson, 0), Answer::Unclear);
        assert_eq!(offer(Persona::AsksForPerson, 1), Answer::No);
        assert!(matches!(classify(&TOMORROW_AT_3.text(), Expect::CallbackTime), Answer::Callback(Some(_))));
    }

    #[test]
    fn a_machine_never_replies() {
        assert_eq!(replies(Persona::Voicemail, &SALES[..2]), ["<silent>", "<silent>"]);
        assert!(!Persona::Voicemail.replies() && Persona::Declines.replies());
    }

    #[test]
    fn talking_over_is_a_backchannel_or_a_turn() {
        assert!(Persona::Backchannels.talk_over().is_some_and(|t| t.backchannel && t.says.text() == "Uh-huh."));
        assert!(Persona::Interrupts.talk_over().is_some_and(|t| !t.backchannel));
        assert_eq!(Persona::Agrees.talk_over(), None);
    }

    #[test]
    fn the_repertoire_holds_every_reply_once() {
        let all = Persona::AsksForPerson.repertoire();
        let texts: Vec<String> = all.iter().map(Utterance::text).collect();
        assert!(texts.contains(&"Can I speak to a real person?".to_string()), "{texts:?}");
        assert!(texts.contains(&"Hello?".to_string()), "{texts:?}");
    }
}
