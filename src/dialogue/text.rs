//! Turning a transcript into comparable words, and matching short phrase patterns against
//! them with tolerance for the small spelling slips speech recognition makes.
//!
//! Normalisation: lower case, "a.m."/"p.m." -> "am"/"pm", apostrophes dropped and common
//! contractions expanded ("don't" -> "do not", "I'm" -> "i am"), digits split from letters
//! ("3pm" -> "3 pm"), a colon kept only inside a clock time ("3:30"), runs of three or more
//! equal letters squeezed ("yesss" -> "yes"), everything else a word break.
//!
//! Pattern syntax (see [`Pattern`]): slots separated by spaces, each slot `a|b|c` (any of the
//! words); a slot ending in `?` is optional; `~` between slots lets up to three other words sit
//! there; a leading `^` / trailing `$` anchors at the start / end of the utterance.

/// The words of a transcript, normalised as the module describes.
pub fn words(text: &str) -> Vec<String> {
    let lower = text.to_lowercase().replace("a.m.", " am ").replace("p.m.", " pm ");
    let chars: Vec<char> = lower.chars().collect();
    let mut spaced = String::with_capacity(lower.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        let prev = if i > 0 { chars.get(i - 1).copied() } else { None };
        let next = chars.get(i + 1).copied();
        if c.is_alphanumeric() {
            // "3pm" -> "3 pm", "20min" -> "20 min"
            if let Some(p) = prev
                && p.is_alphanumeric()
                && p.is_ascii_digit() != c.is_ascii_digit()
            {
                spaced.push(' ');
            }
            spaced.push(c);
        } else if c == '\'' || c == '’' || c == '‘' {
            // dropped: "don't" -> "dont"
        } else if c == ':' && prev.is_some_and(|p| p.is_ascii_digit()) && next.is_some_and(|n| n.is_ascii_digit()) {
            spaced.push(':');
        } else {
            spaced.push(' ');
        }
    }
    let mut out = Vec::new();
    for raw in spaced.split_whitespace() {
        let word = squeeze(raw);
        match expand(&word) {
            Some(parts) => out.extend(parts.iter().map(|p| (*p).to_owned())),
            None => out.push(word),
        }
    }
    out
}

/// Where the clauses of a transcript start, as positions in its [`words`]: after a comma, a
/// full stop, a question or exclamation mark, a semicolon, a dash or an ellipsis. Empty when
/// the pieces do not add up to the whole (a dotted "p.m." at a piece's end), so a caller
/// reads the turn as one clause rather than a wrong split.
pub fn clause_starts(text: &str) -> Vec<usize> {
    let chars: Vec<char> = text.chars().collect();
    let mut pieces = Vec::new();
    let mut piece = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
        // A dot ends a clause unless it sits inside a word or number ("a.m.", "3.30").
        let stop = c == '.' && next.is_none_or(|n| n.is_whitespace() || n == '.');
        if matches!(c, ',' | ';' | '!' | '?' | '…' | '—' | '–') || stop {
            pieces.push(std::mem::take(&mut piece));
        } else {
            piece.push(c);
        }
    }
    pieces.push(piece);
    let mut starts = Vec::new();
    let mut at = 0;
    for piece in &pieces {
        let n = words(piece).len();
        if n > 0 && at > 0 && starts.last() != Some(&at) {
            starts.push(at);
        }
        at += n;
    }
    if at == words(text).len() { starts } else { Vec::new() }
}

/// "yesss" -> "yes", "nooooo" -> "no"; doubled letters ("call", "sorry") stay.
fn squeeze(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let chars: Vec<char> = word.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut run = 1;
        while i + run < chars.len() && chars[i + run] == c {
            run += 1;
        }
        let keep = if run >= 3 && c.is_alphabetic() { 1 } else { run };
        out.extend(std::iter::repeat_n(c, keep));
        i += run;
    }
    out
}

/// Contractions, already without their apostrophe.
fn expand(word: &str) -> Option<&'static [&'static str]> {
    Some(match word {
        "dont" => &["do", "not"],
        "doesnt" => &["does", "not"],
        "didnt" => &["did", "not"],
        "cant" | "cannot" => &["can", "not"],
        "couldnt" => &["could", "not"],
        "wont" => &["will", "not"],
        "wouldnt" => &["would", "not"],
        "shouldnt" => &["should", "not"],
        "isnt" => &["is", "not"],
        "arent" => &["are", "not"],
        "wasnt" => &["was", "not"],
        "havent" => &["have", "not"],
        "hasnt" => &["has", "not"],
        "im" => &["i", "am"],
        "ive" => &["i", "have"],
        "ill" => &["i", "will"],
        "id" => &["i", "would"],
        "youre" => &["you", "are"],
        "youve" => &["you", "have"],
        "thats" => &["that", "is"],
        "whats" => &["what", "is"],
        "nows" => &["now", "is"],
        "its" => &["it", "is"],
        "theres" => &["there", "is"],
        "lets" => &["let", "us"],
        "gonna" => &["going", "to"],
        "wanna" => &["want", "to"],
        "gotta" => &["got", "to"],
        "oclock" => &["o", "clock"],
        // One edit from "interested" would otherwise read as it.
        "uninterested" | "disinterested" => &["not", "interested"],
        _ => return None,
    })
}

/// Hesitations and politeness that carry no answer, dropped before whole-utterance patterns.
pub fn is_filler(word: &str) -> bool {
    matches!(word, "um" | "umm" | "uh" | "er" | "erm" | "ah" | "oh" | "hm" | "hmm" | "well" | "so" | "please" | "just")
}

/// A compiled phrase pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    slots: Vec<Slot>,
    anchored_start: bool,
    anchored_end: bool,
}

#[derive(Debug, Clone)]
struct Slot {
    words: Vec<&'static str>,
    optional: bool,
    /// Words that may be skipped before this slot.
    gap_before: usize,
}

/// Words a gap `~` may skip.
const GAP: usize = 3;

impl Pattern {
    /// Compiles the syntax of the module docs. Patterns are constants of this crate, so a
    /// malformed one (an empty slot) is simply a slot that never matches.
    pub fn new(spec: &'static str) -> Pattern {
        let mut spec = spec.trim();
        let anchored_start = spec.starts_with('^');
        if anchored_start {
            spec = spec[1..].trim_start();
        }
        let anchored_end = spec.ends_with('$');
        if anchored_end {
            spec = spec[..spec.len() - 1].trim_end();
        }
        let mut slots = Vec::new();
        let mut gap = 0;
        for part in spec.split_whitespace() {
            if part == "~" {
                gap = GAP;
                continue;
            }
            let (body, optional) = match part.strip_suffix('?') {
                Some(b) => (b, true),
                None => (part, false),
            };
            slots.push(Slot { words: body.split('|').filter(|w| !w.is_empty()).collect(), optional, gap_before: gap });
            gap = 0;
        }
        Pattern { slots, anchored_start, anchored_end }
    }

    /// The first match as a word range `start..end`.
    pub fn find(&self, words: &[String]) -> Option<(usize, usize)> {
        let starts = if self.anchored_start { 0..1 } else { 0..words.len() + 1 };
        for start in starts {
            if let Some(end) = self.match_from(words, 0, start, true) {
                return Some((start, end));
            }
        }
        None
    }

    /// All non-overlapping matches, left to right.
    pub fn find_all(&self, words: &[String]) -> Vec<(usize, usize)> {
        let mut found = Vec::new();
        let mut from = 0;
        while from < words.len() {
            match self.find(&words[from..]) {
                Some((s, e)) if e > s => {
                    found.push((from + s, from + e));
                    from += e;
                }
                _ => break,
            }
            if self.anchored_start {
                break;
            }
        }
        found
    }

    /// Matches slots `slot..` at word `at`; returns where the match ends.
    fn match_from(&self, words: &[String], slot: usize, at: usize, first: bool) -> Option<usize> {
        let Some(s) = self.slots.get(slot) else {
            return (!self.anchored_end || at == words.len()).then_some(at);
        };
        // The first slot's gap is meaningless: the match simply starts later.
        let max_gap = if first { 0 } else { s.gap_before };
        for skip in 0..=max_gap {
            let i = at + skip;
            if let Some(w) = words.get(i)
                && s.words.iter().any(|p| word_matches(p, w))
                && let Some(end) = self.match_from(words, slot + 1, i + 1, false)
            {
                return Some(end);
            }
        }
        if s.optional {
            return self.match_from(words, slot + 1, at, first);
        }
        None
    }
}

/// Equal, or (for pattern words of five letters or more) one edit away, two for nine or
/// more: "colling" for "calling", "unsubscibe" for "unsubscribe". Short words must be exact,
/// or "no" would match "now" and "yes" "yet".
pub fn word_matches(pattern: &str, word: &str) -> bool {
    if pattern == word {
        return true;
    }
    let n = pattern.chars().count();
    let allowed = match n {
        0..=4 => return false,
        5..=8 => 1,
        _ => 2,
    };
    let m = word.chars().count();
    if m.abs_diff(n) > allowed || word.chars().any(|c| c.is_ascii_digit()) {
        return false;
    }
    edit_distance(pattern, word) <= allowed
}

/// Damerau-Levenshtein (optimal string alignment) distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best =
                (d[(i - 1) * width + j] + 1).min(d[i * width + j - 1] + 1).min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(text: &str) -> Vec<String> {
        words(text)
    }

    #[test]
    fn normalises_transcripts() {
        assert_eq!(w("Yes, I'm free at 3pm."), ["yes", "i", "am", "free", "at", "3", "pm"]);
        assert_eq!(w("Don't call me at 3:30 P.M.!"), ["do", "not", "call", "me", "at", "3:30", "pm"]);
        assert_eq!(w("Nooooo... yesss"), ["no", "yes"]);
        assert_eq!(w("Call me back in 20min"), ["call", "me", "back", "in", "20", "min"]);
        assert_eq!(w("It’s 4 o'clock"), ["it", "is", "4", "o", "clock"]);
        assert_eq!(w("  "), Vec::<String>::new());
        assert_eq!(w("Sorry?"), ["sorry"]);
    }

    #[test]
    fn clause_starts_follow_punctuation() {
        assert_eq!(clause_starts("Not really, sure."), vec![2]);
        assert_eq!(clause_starts("Yes... no, actually no"), vec![1, 2]);
        assert_eq!(clause_starts("I don't want to go ahead"), Vec::<usize>::new());
        assert_eq!(clause_starts("Sure? Who's this?"), vec![1]);
        assert_eq!(clause_starts("At 3:30 p.m., thanks"), vec![3]);
        assert_eq!(clause_starts("Call at 3 p.m. Thanks"), Vec::<usize>::new(), "a dotted p.m. that ends a piece");
    }

    #[test]
    fn patterns_match_slots_gaps_options_and_anchors() {
        let p = Pattern::new("stop ~ calling|call");
        assert_eq!(p.find(&w("please stop calling me")), Some((1, 3)));
        assert_eq!(p.find(&w("stop all these calls")), None, "'calls' is not listed and 'call' is too short to fuzz");
        assert_eq!(p.find(&w("stop with all of this calling")), None, "gap of four words");
        assert_eq!(p.find(&w("stop with all this calling")), Some((0, 5)));
        let p = Pattern::new("take me|us? off");
        assert!(p.find(&w("take me off")).is_some());
        assert!(p.find(&w("take off")).is_some());
        let p = Pattern::new("^ sorry $");
        assert!(p.find(&w("Sorry?")).is_some());
        assert!(p.find(&w("sorry, not interested")).is_none());
        let p = Pattern::new("no");
        assert_eq!(p.find_all(&w("no no, no way")), vec![(0, 1), (1, 2), (2, 3)]);
    }

    #[test]
    fn fuzzy_only_for_long_words() {
        assert!(word_matches("calling", "colling"));
        assert!(word_matches("unsubscribe", "unsubscibe"));
        assert!(word_matches("remove", "remov"));
        assert!(!word_matches("yes", "yet"));
        assert!(!word_matches("no", "now"));
        assert!(!word_matches("calling", "call"));
        assert!(word_matches("tomorrow", "tomorow"));
        assert_eq!(edit_distance("abcd", "acbd"), 1, "a transposition is one edit");
    }
}
