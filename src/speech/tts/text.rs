//! Text to sentences and clauses, before any phonemizer sees it. Pure functions, no I/O.
//!
//! A reply is split into sentences (the unit of streaming and of the cache) and each sentence
//! into clauses at `, ; :` (the unit espeak-ng phonemizes; its terminator is put back between
//! the phonemes the way Piper's own phonemizer does, so the voice pauses where the text does).
//!
//! The rules follow espeak-ng's own clause rules where they matter for Piper voices: `.` `!` `?`
//! end a sentence only when followed by whitespace (so `3.5`, `3:30` and `e.g.x` stay whole)
//! and not before a lowercase word (`hello. world` is one sentence to espeak-ng too). On top,
//! common titles (`Mr.`, `Dr.`) do not end a sentence, which espeak-ng gets wrong.
//!
//! Normalisation (`normalize`): phone numbers are read digit by digit in their groups
//! ("555-0100" -> "5 5 5, 0 1 0 0") and dollar amounts as dollars and cents; everything else
//! (other numbers, dates, times, percentages) is left to espeak-ng, which reads them well.

/// Sentences longer than this are cut at a clause boundary (or a space) so the first audio of a
/// long run-on reply is not held back by its whole length.
pub const MAX_SENTENCE_CHARS: usize = 240;

/// One clause: text for the phonemizer and the punctuation that ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    pub text: String,
    /// `,` `;` `:` inside a sentence; `.` `?` `!` at its end; `None` when the text has none.
    pub terminator: Option<char>,
}

/// One sentence of a reply: what it says (whitespace-normalised, the cache key) and its clauses
/// after normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    pub text: String,
    pub clauses: Vec<Clause>,
}

/// Splits a reply into sentences ready for the phonemizer. Sentences with nothing to say
/// (only punctuation or symbols) are dropped, so an empty result means the text is silent.
pub fn sentences(text: &str) -> Vec<Sentence> {
    split_sentences(text)
        .into_iter()
        .flat_map(|s| cut_long(&s, MAX_SENTENCE_CHARS))
        .filter_map(|text| {
            let clauses = clauses(&normalize(&text));
            (!clauses.is_empty()).then_some(Sentence { text, clauses })
        })
        .collect()
}

/// Collapses whitespace runs to one space and trims.
pub fn squash_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn has_speech(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

const SENTENCE_END: [char; 4] = ['.', '!', '?', '…'];
const CLOSERS: [char; 8] = ['"', '\'', ')', ']', '}', '”', '’', '»'];

/// Abbreviations after which a period does not end the sentence (lowercase, without the period).
const ABBREVIATIONS: [&str; 22] = [
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "approx", "dept", "inc", "ltd", "co",
    "corp", "mt", "ft", "a.m", "p.m",
];

/// Sentence texts, whitespace-normalised, punctuation kept. A blank line also ends a sentence.
pub fn split_sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for paragraph in paragraphs(text) {
        let chars: Vec<char> = paragraph.chars().collect();
        let mut start = 0;
        let mut i = 0;
        while i < chars.len() {
            if !SENTENCE_END.contains(&chars[i]) {
                i += 1;
                continue;
            }
            let punct_start = i;
            while i < chars.len() && SENTENCE_END.contains(&chars[i]) {
                i += 1;
            }
            while i < chars.len() && CLOSERS.contains(&chars[i]) {
                i += 1;
            }
            let at_end = i >= chars.len();
            if !at_end && !chars[i].is_whitespace() {
                continue;
            }
            let ends = || chars[punct_start..i].iter().filter(|c| SENTENCE_END.contains(c));
            let periods_only = ends().all(|&c| c == '.' || c == '…');
            let single_period = periods_only && ends().count() == 1;
            if !at_end && periods_only && continues(&chars[start..punct_start], &chars[i..], single_period) {
                continue;
            }
            push_sentence(&mut out, chars[start..i].iter().collect());
            start = i;
        }
        push_sentence(&mut out, chars[start..].iter().collect());
    }
    out
}

fn push_sentence(out: &mut Vec<String>, raw: String) {
    let text = squash_whitespace(&raw);
    if has_speech(&text) {
        out.push(text);
    }
}

/// Paragraphs: text separated by a blank line (a line break alone is just whitespace).
fn paragraphs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.trim().is_empty() {
                out.push(std::mem::take(&mut current));
            }
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

/// Whether periods between `before` and `after` do not end the sentence: before a word that
/// starts lowercase, or (a single period) after a known abbreviation.
fn continues(before: &[char], after: &[char], single_period: bool) -> bool {
    if after.iter().find(|c| !c.is_whitespace()).is_some_and(|c| c.is_lowercase()) {
        return true;
    }
    if !single_period {
        return false;
    }
    let word: String =
        before.iter().rev().take_while(|c| !c.is_whitespace()).collect::<Vec<_>>().into_iter().rev().collect();
    let word = word.trim_start_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
    ABBREVIATIONS.contains(&word.as_str())
}

/// Cuts a sentence longer than `max` chars: at the last `, ; :` before the limit, else at the
/// last space, else hard. Every piece is at most `max` chars.
pub fn cut_long(sentence: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest: Vec<char> = sentence.chars().collect();
    while rest.len() > max {
        let window = &rest[..max];
        let clause_cut =
            (1..window.len()).rev().find(|&i| matches!(window[i - 1], ',' | ';' | ':') && window[i].is_whitespace());
        let space_cut = (1..window.len()).rev().find(|&i| window[i].is_whitespace());
        let cut = clause_cut.filter(|&i| i > max / 3).or(space_cut).unwrap_or(max);
        let piece: String = rest[..cut].iter().collect();
        push_sentence(&mut out, piece);
        rest.drain(..cut);
    }
    push_sentence(&mut out, rest.into_iter().collect());
    out
}

/// Splits a (normalised) sentence into clauses at `, ; :` followed by whitespace. The last
/// clause takes the sentence's end punctuation (`?` if any, else `!`, else `.`). Clauses with
/// nothing to say are dropped; if the dropped one carried the sentence's end, the previous
/// clause takes it.
pub fn clauses(sentence: &str) -> Vec<Clause> {
    let chars: Vec<char> = sentence.chars().collect();
    let mut out: Vec<Clause> = Vec::new();
    let mut start = 0;
    for i in 0..chars.len() {
        let next_is_space = chars.get(i + 1).is_none_or(|c| c.is_whitespace());
        if matches!(chars[i], ',' | ';' | ':') && next_is_space {
            push_clause(&mut out, &chars[start..i], Some(chars[i]));
            start = i + 1;
        }
    }
    let tail = &chars[start..];
    let body_end = tail
        .iter()
        .rposition(|c| !SENTENCE_END.contains(c) && !CLOSERS.contains(c) && !c.is_whitespace())
        .map_or(0, |p| p + 1);
    let ending = &tail[body_end..];
    let terminator = if ending.contains(&'?') {
        Some('?')
    } else if ending.contains(&'!') {
        Some('!')
    } else if ending.iter().any(|c| matches!(c, '.' | '…')) {
        Some('.')
    } else {
        None
    };
    let body: Vec<char> =
        tail[..body_end].iter().chain(ending.iter().filter(|c| CLOSERS.contains(c))).copied().collect();
    if has_speech(&body.iter().collect::<String>()) {
        push_clause(&mut out, &body, terminator);
    } else if let (Some(last), Some(t)) = (out.last_mut(), terminator) {
        last.terminator = Some(t);
    }
    out
}

fn push_clause(out: &mut Vec<Clause>, chars: &[char], terminator: Option<char>) {
    let text = squash_whitespace(&chars.iter().collect::<String>());
    if has_speech(&text) {
        out.push(Clause { text, terminator });
    }
}

/// Rewrites what espeak-ng reads badly: phone numbers and dollar amounts.
pub fn normalize(sentence: &str) -> String {
    let chars: Vec<char> = sentence.chars().collect();
    let mut out = String::with_capacity(sentence.len() + 16);
    let mut i = 0;
    while i < chars.len() {
        let prev = if i == 0 { None } else { Some(chars[i - 1]) };
        let starts_token = prev.is_none_or(|p| !p.is_alphanumeric() && !matches!(p, '.' | ',' | '$' | '-' | '+'));
        let spoken = if chars[i] == '$' {
            dollars(&chars[i + 1..]).map(|(spoken, used)| (spoken, used + 1))
        } else if starts_token && (chars[i].is_ascii_digit() || matches!(chars[i], '+' | '(')) {
            phone_number(&chars[i..])
        } else {
            None
        };
        match spoken {
            Some((spoken, used)) => {
                out.push_str(&spoken);
                i += used;
            }
            None => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

/// A phone number at the start of `chars`: its spoken form and the chars it used.
///
/// Accepted: 7 to 15 digits that are either one unbroken run (not part of a decimal), or
/// groups joined by `-`, `.` or spaces where the number starts with `+`, has an area code in
/// parentheses, or (for `-`/`.` only) ends in a group of at least 4 digits (so dates like
/// 2024-01-15 and versions are not phone numbers).
pub fn phone_number(chars: &[char]) -> Option<(String, usize)> {
    let plus = chars.first() == Some(&'+');
    let mut i = usize::from(plus);
    let mut groups: Vec<String> = Vec::new();
    let mut paren = false;
    let mut space_sep = false;
    let mut end = i;
    loop {
        let open = chars.get(i) == Some(&'(');
        let j = i + usize::from(open);
        let digits: String = chars[j.min(chars.len())..].iter().take_while(|c| c.is_ascii_digit()).collect();
        if digits.is_empty() {
            break;
        }
        let mut k = j + digits.len();
        if open {
            if chars.get(k) != Some(&')') {
                break;
            }
            paren = true;
            k += 1;
        }
        groups.push(digits);
        end = k;
        // One separator (a space may follow `)` or `-`) before the next group.
        let mut s = k;
        let mut seen_space = false;
        while s < chars.len() && s - k < 2 && matches!(chars[s], '-' | '.' | ' ') {
            seen_space |= chars[s] == ' ';
            s += 1;
        }
        let continues = s > k && chars.get(s).is_some_and(|c| c.is_ascii_digit() || *c == '(');
        if !continues {
            break;
        }
        space_sep |= seen_space;
        i = s;
    }
    if groups.is_empty() {
        return None;
    }
    // Not when glued to a letter or continued by a decimal part ("12345678.5", "5551234x").
    let after = chars.get(end);
    if after.is_some_and(|c| c.is_alphanumeric() || *c == '_')
        || (matches!(after, Some('.') | Some(',')) && chars.get(end + 1).is_some_and(|c| c.is_ascii_digit()))
    {
        return None;
    }
    let total: usize = groups.iter().map(String::len).sum();
    if !(7..=15).contains(&total) {
        return None;
    }
    // One unbroken run, or a clearly written number, or dash/dot groups ending in 4+ digits.
    let is_phone = groups.len() == 1 || plus || paren || (!space_sep && groups.last().is_some_and(|g| g.len() >= 4));
    if !is_phone {
        return None;
    }
    let groups = if groups.len() == 1 { regroup(&groups[0]) } else { groups };
    let mut spoken = String::new();
    if plus {
        spoken.push_str("plus ");
    }
    let spelled: Vec<String> =
        groups.iter().map(|g| g.chars().map(String::from).collect::<Vec<_>>().join(" ")).collect();
    spoken.push_str(&spelled.join(", "));
    Some((spoken, end))
}

/// Groups an unbroken digit run the way it is read: 3-3-4 for 10 digits, 1-3-3-4 for 11,
/// else threes (a last group of one joins the one before).
fn regroup(digits: &str) -> Vec<String> {
    let sizes: Vec<usize> = match digits.len() {
        10 => vec![3, 3, 4],
        11 => vec![1, 3, 3, 4],
        n => {
            let mut sizes = vec![3; n / 3];
            match n % 3 {
                0 => {}
                1 => {
                    if let Some(last) = sizes.last_mut() {
                        *last += 1;
                    }
                }
                r => sizes.push(r),
            }
            sizes
        }
    };
    let mut out = Vec::new();
    let mut rest = digits;
    for size in sizes {
        let (group, tail) = rest.split_at(size.min(rest.len()));
        out.push(group.to_owned());
        rest = tail;
    }
    out
}

/// A dollar amount after a `$`: "1,250.50" -> "1250 dollars and 50 cents". Returns the spoken
/// form and the chars used (not counting the `$`).
fn dollars(chars: &[char]) -> Option<(String, usize)> {
    let mut i = 0;
    let mut whole = String::new();
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            whole.push(c);
        } else if c == ',' && chars.get(i + 1).is_some_and(char::is_ascii_digit) && !whole.is_empty() {
            // thousands separator
        } else {
            break;
        }
        i += 1;
    }
    if whole.is_empty() {
        return None;
    }
    let mut cents = None;
    if chars.get(i) == Some(&'.') {
        let digits: String = chars[i + 1..].iter().take_while(|c| c.is_ascii_digit()).collect();
        if digits.len() == 2 {
            cents = Some(digits);
            i += 3;
        } else if !digits.is_empty() {
            // "$1.5" (million?) is not a price; leave it to espeak-ng.
            return None;
        }
    }
    if chars.get(i).is_some_and(|c| c.is_alphanumeric()) {
        return None;
    }
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    let unit = if whole == "1" { "dollar" } else { "dollars" };
    let mut spoken = format!("{whole} {unit}");
    if let Some(cents) = cents {
        let cents = cents.trim_start_matches('0');
        if !cents.is_empty() {
            let unit = if cents == "1" { "cent" } else { "cents" };
            spoken = format!("{spoken} and {cents} {unit}");
        }
    }
    Some((spoken, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<String> {
        split_sentences(text)
    }

    #[test]
    fn sentences_split_at_end_punctuation_followed_by_space() {
        assert_eq!(
            texts("Hello there. How are you today?  I'm fine!"),
            vec!["Hello there.", "How are you today?", "I'm fine!"]
        );
        assert_eq!(texts("It costs 3.5 dollars at 3:30. Ok"), vec!["It costs 3.5 dollars at 3:30.", "Ok"]);
        assert_eq!(texts("Wait... what?! Really. Hm... Ok."), vec!["Wait... what?!", "Really.", "Hm...", "Ok."]);
        assert_eq!(texts("He said \"stop.\" Then left."), vec!["He said \"stop.\"", "Then left."]);
    }

    #[test]
    fn titles_and_lowercase_continuations_do_not_end_a_sentence() {
        assert_eq!(texts("Dr. Smith will call. Mr. Jones too."), vec!["Dr. Smith will call.", "Mr. Jones too."]);
        assert_eq!(texts("Fruit, e.g. apples. Next"), vec!["Fruit, e.g. apples.", "Next"]);
        assert_eq!(texts("hello. world"), vec!["hello. world"]);
        // A one-word answer is a sentence of its own.
        assert_eq!(texts("No. I did not."), vec!["No.", "I did not."]);
    }

    #[test]
    fn blank_lines_end_sentences_and_silent_ones_are_dropped() {
        assert_eq!(texts("First line\nsame sentence\n\nSecond"), vec!["First line same sentence", "Second"]);
        assert_eq!(texts("... ?! --"), Vec::<String>::new());
        assert!(sentences("  \n\t ").is_empty());
        assert!(sentences("?!?").is_empty());
    }

    #[test]
    fn clauses_carry_their_punctuation() {
        let c = clauses("Hello, world: yes; fine?");
        let got: Vec<(&str, Option<char>)> = c.iter().map(|c| (c.text.as_str(), c.terminator)).collect();
        assert_eq!(got, vec![("Hello", Some(',')), ("world", Some(':')), ("yes", Some(';')), ("fine", Some('?'))]);
        assert_eq!(clauses("no end")[0].terminator, None);
        assert_eq!(clauses("Really?!")[0].terminator, Some('?'));
        assert_eq!(clauses("Wow!")[0].terminator, Some('!'));
        assert_eq!(clauses("Hmm...")[0].terminator, Some('.'));
        // 3:30 and 1,000 are not clause breaks.
        assert_eq!(clauses("At 3:30 pay 1,000 now.").len(), 1);
        // A trailing symbol-only clause hands its end to the clause before it.
        let c = clauses("Yes, -- .");
        assert_eq!(c, vec![Clause { text: "Yes".into(), terminator: Some('.') }]);
    }

    #[test]
    fn long_sentences_are_cut_at_clauses() {
        let long = "word ".repeat(15) + "and then, " + &"more ".repeat(40) + "end.";
        let pieces = cut_long(&squash_whitespace(&long), 120);
        assert!(pieces.len() >= 2, "{pieces:?}");
        assert!(pieces.iter().all(|p| p.chars().count() <= 120));
        assert_eq!(pieces.join(" "), squash_whitespace(&long));
        assert!(pieces[0].ends_with("then,"), "{}", pieces[0]);
    }

    #[test]
    fn phone_numbers_are_read_digit_by_digit() {
        assert_eq!(normalize("Call 555-0100 now."), "Call 5 5 5, 0 1 0 0 now.");
        assert_eq!(normalize("Call +1 (415) 555-0100."), "Call plus 1, 4 1 5, 5 5 5, 0 1 0 0.");
        assert_eq!(normalize("Dial 1-800-555-0199"), "Dial 1, 8 0 0, 5 5 5, 0 1 9 9");
        assert_eq!(normalize("at 4155550100"), "at 4 1 5, 5 5 5, 0 1 0 0");
        assert_eq!(normalize("(415) 555 0100"), "4 1 5, 5 5 5, 0 1 0 0");
    }

    #[test]
    fn other_numbers_are_left_to_espeak() {
        for text in [
            "On 2024-01-15 at 3:30",
            "Version 1.2.3",
            "Pay 1,000,000 now",
            "It is 12345678.5 m",
            "In 2025 we had 42",
            "192.168.1.10",
            "room 12 34 56 78",
        ] {
            assert_eq!(normalize(text), text);
        }
    }

    #[test]
    fn dollar_amounts_are_read_as_money() {
        assert_eq!(normalize("It is $5.99 today"), "It is 5 dollars and 99 cents today");
        assert_eq!(normalize("Only $1."), "Only 1 dollar.");
        assert_eq!(normalize("$1,250.01 due"), "1250 dollars and 1 cent due");
        assert_eq!(normalize("$20.00"), "20 dollars");
        assert_eq!(normalize("$1.5M"), "$1.5M");
        assert_eq!(normalize("a $ sign"), "a $ sign");
    }

    #[test]
    fn sentences_keep_display_text_and_normalised_clauses() {
        let s = sentences("Call 555-0100, please. Thanks!");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].text, "Call 555-0100, please.");
        let texts: Vec<&str> = s[0].clauses.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, vec!["Call 5 5 5", "0 1 0 0", "please"]);
        assert_eq!(s[1].clauses[0].terminator, Some('!'));
    }
}
