//! What the words of a caller's turn say about turn-taking (not about the answer: that is the
//! dialogue's `answer` module): whether a sentence is visibly unfinished, how sure the core may
//! be that a paused caller has finished ([`weigh`]), and whether a short utterance over the
//! bot's line is only a backchannel ("uh-huh", "okay") that should not stop it.

use super::Verdict;

/// How sure the core is, at a pause, that the caller has finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// Reply now.
    Surely,
    /// Reply if the caller stays quiet a little longer (`settle_ms`).
    Probably,
    /// Keep listening (up to the silence ceiling).
    Not,
}

/// Weighs a pause: the end-of-turn model's verdict (`None` while it is still out) and the
/// transcript so far. Neither is reliable alone on phone audio (both were measured wrong on a
/// third of synthetic callers' answers, docs/BENCHMARKS.md), so a turn ends at once only when
/// the model says complete, whisper ended the words with a full stop or question mark (its
/// punctuation follows the intonation), nothing in them is left open, and there are at least
/// `min_words` of them: a short fragment ("Yes," "Sure," "No thanks,") is exactly where callers
/// pause to go on, and there the models are most often wrong. One sign of an end is worth a
/// short wait; none, or an open ending, waits for the ceiling.
pub fn weigh(verdict: Option<Verdict>, text: &str, min_words: usize) -> Finished {
    if ends_open(text) {
        return Finished::Not;
    }
    let trimmed = text.trim_end();
    let punctuated = trimmed.ends_with(['.', '?', '!']) && !trimmed.ends_with("...");
    let model = verdict == Some(Verdict::Complete);
    match (model, punctuated) {
        (true, true) if words(text).len() >= min_words => Finished::Surely,
        (true, _) | (_, true) => Finished::Probably,
        (false, false) => Finished::Not,
    }
}

/// Words that leave a sentence open when it ends on them: "Yes, and", "I would, but",
/// "because", "um". The end-of-turn model hears the intonation; these catch what it misses.
const OPEN_ENDINGS: &[&str] = &[
    "and", "but", "so", "because", "cause", "or", "um", "uh", "er", "erm", "hmm", "if", "then", "like", "the", "a",
    "an", "to", "with", "of", "my", "your",
];

/// Prepositions and the like: a statement does not end on them ("a table for", "tomorrow
/// at"); a question may ("What is it for?"), so they only count without a question mark.
const OPEN_PREPOSITIONS: &[&str] = &["for", "at", "in", "on", "from", "by", "about", "into", "than", "as"];

/// An auxiliary then a bare subject ends a clause that has not got to its verb yet: "What
/// time do you", "Yes, I would, but", "... can you" without a question mark.
const AUXILIARIES: &[&str] =
    &["do", "does", "did", "can", "could", "would", "will", "should", "are", "is", "am", "have", "has", "was", "were"];
/// Not "it": after "do" it is an object ("Let's do it.", "I can do it.").
const SUBJECTS: &[&str] = &["you", "i", "we", "they", "he", "she"];

/// "that" after these introduces a clause: "I think that", "I'm sure that".
const THAT_OPENERS: &[&str] =
    &["think", "thought", "know", "knew", "believe", "guess", "hope", "mean", "sure", "say", "said", "so"];

/// A turn that is only one of these is a lead-in: "Well,", "Let me see", "Um, so".
const LEAD_INS: &[&str] =
    &["well", "so", "um", "uh", "er", "erm", "hmm", "let", "me", "see", "think", "oh", "actually"];

/// "so" closes these: "I think so", "I guess so", "I don't think so".
const SO_CLOSERS: &[&str] =
    &["think", "guess", "hope", "believe", "suppose", "say", "expect", "said", "not", "do", "did"];

/// Non-lexical acknowledgements: never an answer or an objection while the bot talks.
const HUMS: &[&str] = &[
    "uh-huh", "uh huh", "uhhuh", "uh-hum", "mm-hmm", "mm hmm", "mm-hm", "mhm", "mmhmm", "mm", "hmm", "hm", "uh", "um",
    "ah", "oh", "aha", "ah-ha", "hm-hm",
];

/// One-word transcripts a recogniser makes of a hum or a breath; said alone over a statement
/// they ask for nothing.
const MISHEARD_HUMS: &[&str] = &["and", "a", "an", "the", "i", "so", "in", "on", "it", "is", "to", "of", "hm", "mmm"];

/// Lexical acknowledgements: a backchannel during a statement, but possibly an answer when the
/// line is a question the caller has heard.
const ACKNOWLEDGEMENTS: &[&str] = &[
    // "uh-uh" is a spoken no, but over a statement it is recognisers hearing "uh-huh".
    "uh-uh",
    "okay",
    "ok",
    "right",
    "alright",
    "all right",
    "yeah",
    "yes",
    "yep",
    "sure",
    "i see",
    "got it",
    "gotcha",
    "cool",
    "fine",
    "good",
    "great",
    "sounds good",
    "oh okay",
    "oh right",
    "uh okay",
];

/// Lower-case words of `text`, punctuation dropped (hyphens kept, as in "uh-huh").
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || (c.is_ascii_punctuation() && c != '-' && c != '\''))
        .map(|w| w.trim_matches(|c: char| c == '-' || c == '\'').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// True when the transcript ends on a word that leaves the sentence open ("Yes, and",
/// "because", "um"), so a "complete" verdict from the model is overruled.
pub fn ends_open(text: &str) -> bool {
    let words = words(text);
    let Some(last) = words.last() else { return false };
    if last == "so" {
        let before = words.len().checked_sub(2).and_then(|i| words.get(i));
        return !before.is_some_and(|w| SO_CLOSERS.contains(&w.as_str()));
    }
    let lead_in_only = words.iter().all(|w| LEAD_INS.contains(&w.as_str())) && last != "oh";
    let trimmed = text.trim_end();
    let asks = trimmed.ends_with('?');
    let before = words.len().checked_sub(2).and_then(|i| words.get(i)).map_or("", String::as_str);
    let dangling_subject = SUBJECTS.contains(&last.as_str()) && AUXILIARIES.contains(&before) && !asks;
    let dangling_that = last == "that" && THAT_OPENERS.contains(&before);
    OPEN_ENDINGS.contains(&last.as_str())
        || (OPEN_PREPOSITIONS.contains(&last.as_str()) && !asks)
        || dangling_subject
        || dangling_that
        || lead_in_only
        || trimmed.ends_with("...")
        || trimmed.ends_with('-')
        || trimmed.ends_with(',')
}

/// True when `text`, said over a bot line, is only a backchannel: empty, a hum, or (unless
/// the line asks something the caller may be answering) a short acknowledgement.
pub fn is_backchannel(text: &str, line_asks: bool) -> bool {
    let words = words(text);
    if words.is_empty() {
        return true;
    }
    let phrase = words.join(" ");
    let hums_only = words.iter().all(|w| HUMS.contains(&w.as_str()) || w.starts_with("mm") || w == "huh");
    if hums_only || HUMS.contains(&phrase.as_str()) {
        return true;
    }
    if line_asks || words.len() > 3 {
        return false;
    }
    // A hum heard as one small word ("Mm-hmm" comes back as "and"): no request in it.
    if let [only] = words.as_slice()
        && MISHEARD_HUMS.contains(&only.as_str())
    {
        return true;
    }
    // "okay okay", "yeah, right": acknowledgements, possibly repeated, and hums around them.
    let rest: Vec<&str> = words.iter().map(String::as_str).filter(|w| !HUMS.contains(w)).collect();
    let joined = rest.join(" ");
    ACKNOWLEDGEMENTS.contains(&joined.as_str())
        || rest.iter().all(|w| ACKNOWLEDGEMENTS.contains(w))
        || (rest.len() == 2 && rest[0] == rest[1] && ACKNOWLEDGEMENTS.contains(&rest[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_ends_the_turn_at_once_only_on_every_sign_of_an_end() {
        let complete = Some(Verdict::Complete);
        assert_eq!(weigh(complete, "Yes, I am interested.", 3), Finished::Surely);
        assert_eq!(weigh(complete, "No, I don't think so?", 3), Finished::Surely);
        // Too short to trust, unpunctuated, or the model not (yet) sure: wait a little.
        assert_eq!(weigh(complete, "Yes, sure.", 3), Finished::Probably);
        assert_eq!(weigh(complete, "Yes I am interested", 3), Finished::Probably);
        assert_eq!(weigh(Some(Verdict::Incomplete), "Yes, I am interested.", 3), Finished::Probably);
        assert_eq!(weigh(None, "Yes, I am interested.", 3), Finished::Probably);
        assert_eq!(weigh(Some(Verdict::Unavailable), "Yes, I am interested.", 3), Finished::Probably);
        // No sign of an end, or an open one: keep listening.
        assert_eq!(weigh(Some(Verdict::Incomplete), "Yeah sure", 3), Finished::Not);
        assert_eq!(weigh(complete, "Well...", 3), Finished::Not);
        assert_eq!(weigh(complete, "I would like a table for", 3), Finished::Not);
    }

    #[test]
    fn open_endings_are_vetoed_but_closed_sos_are_not() {
        for open in [
            "Yes, and",
            "I would, but",
            "Well, um",
            "because",
            "Maybe on Tuesday or",
            "So...",
            "I want to",
            "Well.",
            "Let me see.",
            "Yes, sure,",
            "I would like to book a table for",
            "Can you call me back tomorrow at",
            "No, I think that",
            "What time do you",
        ] {
            assert!(ends_open(open), "{open}");
        }
        for done in [
            "Yes, sure, go ahead.",
            "I think so.",
            "I don't think so",
            "I guess so",
            "No.",
            "",
            "Not right now, no.",
            "Oh.",
            "Okay.",
            "Thank you.",
            "Yes, I do.",
            "Okay, let's do it.",
            "What is it for?",
            "I don't want that.",
            "Can you?",
        ] {
            assert!(!ends_open(done), "{done}");
        }
    }

    #[test]
    fn backchannels_are_hums_or_short_acknowledgements_of_a_statement() {
        for hum in ["Uh-huh.", "Mm-hmm", "mhm", "Hmm.", "", "  ", "uh huh"] {
            assert!(is_backchannel(hum, true), "{hum}");
            assert!(is_backchannel(hum, false), "{hum}");
        }
        for ack in [
            "Okay.",
            "Right.",
            "Yeah.",
            "Okay, okay.",
            "I see.",
            "Got it.",
            "oh okay",
            "Yeah, right.",
            "Uh-uh",
            "and",
            "The.",
        ] {
            assert!(is_backchannel(ack, false), "{ack}");
            assert!(!is_backchannel(ack, true), "{ack} may answer a question");
        }
        for real in ["No, wait.", "Sorry, who is this?", "Stop calling me.", "Yes, I am interested in that.", "Not now"]
        {
            assert!(!is_backchannel(real, false), "{real}");
        }
    }
}
