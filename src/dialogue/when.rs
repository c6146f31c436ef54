//! When a caller wants to be called back, from what they said: "in an hour", "tomorrow at
//! 3", "Monday morning", "later". Pure: the words in, a [`CallbackTime`] out; turning it into
//! a date needs the callee's clock and zone, which [`CallbackTime::resolve`] takes as input.
//!
//! An hour said without am/pm follows office habits: 1 to 7 mean the afternoon ("at 3" is
//! 3 pm), 8 to 11 the morning, unless "morning", "afternoon", "evening" or "tonight" says
//! otherwise.

use std::fmt;

use jiff::civil::{Date, Weekday};
use jiff::{Span, Zoned};

use super::text::word_matches;

/// A callback time as the caller gave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallbackTime {
    /// "in 20 minutes", "in an hour and a half": minutes from now.
    After { minutes: u32 },
    /// "tomorrow at 3 pm", "Monday morning", "tonight", "at 5".
    At { day: Day, time: Option<TimeOfDay> },
    /// "later", "another time": a callback, no time said.
    Later,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Day {
    Today,
    Tomorrow,
    DayAfterTomorrow,
    /// The next such day after today.
    Weekday(Weekday),
    /// Monday of next week.
    NextWeek,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeOfDay {
    /// A clock time, 24-hour.
    Clock {
        hour: u8,
        minute: u8,
    },
    Morning,
    Afternoon,
    Evening,
}

impl TimeOfDay {
    /// The hour and minute a part of the day stands for when a date must be picked.
    fn hour_minute(self) -> (i8, i8) {
        match self {
            TimeOfDay::Clock { hour, minute } => (hour.min(23) as i8, minute.min(59) as i8),
            TimeOfDay::Morning => (9, 0),
            TimeOfDay::Afternoon => (14, 0),
            TimeOfDay::Evening => (18, 0),
        }
    }
}

impl CallbackTime {
    /// The moment meant, given the callee's current time (and so their zone). `Later`
    /// has none. A time of today that has passed moves to tomorrow; a day without a time
    /// gets 10 am, "later today" two hours from now.
    pub fn resolve(&self, now: &Zoned) -> Option<Zoned> {
        match *self {
            CallbackTime::Later => None,
            CallbackTime::After { minutes } => now.checked_add(Span::new().minutes(i64::from(minutes))).ok(),
            CallbackTime::At { day, time } => {
                let today = now.date();
                let date: Date = match day {
                    Day::Today => today,
                    Day::Tomorrow => today.tomorrow().ok()?,
                    Day::DayAfterTomorrow => today.checked_add(Span::new().days(2)).ok()?,
                    Day::Weekday(w) => today.nth_weekday(1, w).ok()?,
                    // The Monday on or before a week from tomorrow.
                    Day::NextWeek => {
                        today.checked_add(Span::new().days(8)).ok()?.nth_weekday(-1, Weekday::Monday).ok()?
                    }
                };
                let Some(time) = time else {
                    if day == Day::Today {
                        return now.checked_add(Span::new().hours(2)).ok();
                    }
                    return date.at(10, 0, 0, 0).to_zoned(now.time_zone().clone()).ok();
                };
                let (h, m) = time.hour_minute();
                let at = date.at(h, m, 0, 0).to_zoned(now.time_zone().clone()).ok()?;
                if at <= *now && day == Day::Today {
                    return at.tomorrow().ok();
                }
                Some(at)
            }
        }
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TimeOfDay::Clock { hour: 12, minute: 0 } => f.write_str("noon"),
            TimeOfDay::Clock { hour, minute } => {
                let suffix = if hour >= 12 { "pm" } else { "am" };
                let h12 = match hour % 12 {
                    0 => 12,
                    h => h,
                };
                if minute == 0 { write!(f, "{h12} {suffix}") } else { write!(f, "{h12}:{minute:02} {suffix}") }
            }
            TimeOfDay::Morning => f.write_str("morning"),
            TimeOfDay::Afternoon => f.write_str("afternoon"),
            TimeOfDay::Evening => f.write_str("evening"),
        }
    }
}

fn weekday_name(w: Weekday) -> &'static str {
    match w {
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
        Weekday::Sunday => "Sunday",
    }
}

/// As said back to the caller and written in the call's notes: "tomorrow at 3 pm",
/// "in an hour", "on Monday morning", "later".
impl fmt::Display for CallbackTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CallbackTime::Later => f.write_str("later"),
            CallbackTime::After { minutes } => match minutes {
                60 => f.write_str("in an hour"),
                m if m % 1440 == 0 && m >= 2880 => write!(f, "in {} days", m / 1440),
                1440 => f.write_str("in a day"),
                m if m % 60 == 0 => write!(f, "in {} hours", m / 60),
                1 => f.write_str("in a minute"),
                m => write!(f, "in {m} minutes"),
            },
            CallbackTime::At { day, time } => {
                let part = |t: TimeOfDay| !matches!(t, TimeOfDay::Clock { .. });
                match (day, time) {
                    (Day::Today, None) => f.write_str("later today"),
                    (Day::Today, Some(t)) if part(t) => write!(f, "this {t}"),
                    (Day::Today, Some(t)) => write!(f, "today at {t}"),
                    (Day::Tomorrow, None) => f.write_str("tomorrow"),
                    (Day::Tomorrow, Some(t)) if part(t) => write!(f, "tomorrow {t}"),
                    (Day::Tomorrow, Some(t)) => write!(f, "tomorrow at {t}"),
                    (Day::DayAfterTomorrow, None) => f.write_str("the day after tomorrow"),
                    (Day::DayAfterTomorrow, Some(t)) if part(t) => write!(f, "the day after tomorrow in the {t}"),
                    (Day::DayAfterTomorrow, Some(t)) => write!(f, "the day after tomorrow at {t}"),
                    (Day::Weekday(w), None) => write!(f, "on {}", weekday_name(w)),
                    (Day::Weekday(w), Some(t)) if part(t) => write!(f, "on {} {t}", weekday_name(w)),
                    (Day::Weekday(w), Some(t)) => write!(f, "on {} at {t}", weekday_name(w)),
                    (Day::NextWeek, None) => f.write_str("next week"),
                    (Day::NextWeek, Some(t)) if part(t) => write!(f, "next week in the {t}"),
                    (Day::NextWeek, Some(t)) => write!(f, "next week at {t}"),
                }
            }
        }
    }
}

/// The callback time in normalised words (see `text::words`), if any is said.
pub fn parse(words: &[String]) -> Option<CallbackTime> {
    let words = &without_negated(words)[..];
    if let Some(minutes) = find_relative(words) {
        return Some(CallbackTime::After { minutes });
    }
    let day = find_day(words);
    let part = find_part(words);
    let clock = find_clock(words, part);
    if day.is_some() || part.is_some() || clock.is_some() {
        let day = day.unwrap_or(Day::Today);
        return Some(CallbackTime::At { day, time: clock.or(part) });
    }
    if has(words, &["later"]) || has_seq(words, &["another", "time"]) || has_seq(words, &["other", "time"]) {
        return Some(CallbackTime::Later);
    }
    None
}

/// Whether the words name a day, a part of the day or a delay ("tomorrow", "tonight",
/// "in an hour"), which on its own, as an answer, asks for a callback. A bare clock time
/// ("at 3") does not: "yes, at 3 I'm free" is still a yes.
pub fn mentions_day_or_delay(words: &[String]) -> bool {
    let kept = without_negated(words);
    find_relative(&kept).is_some() || find_day(&kept).is_some() || find_part(&kept).is_some()
}

/// Drops the word after each "not": "not today, tomorrow" names tomorrow.
fn without_negated(words: &[String]) -> Vec<String> {
    words.iter().enumerate().filter(|(i, _)| *i == 0 || words[i - 1] != "not").map(|(_, w)| w.clone()).collect()
}

fn has(words: &[String], any: &[&str]) -> bool {
    words.iter().any(|w| any.contains(&w.as_str()))
}

fn has_seq(words: &[String], seq: &[&str]) -> bool {
    words.windows(seq.len()).any(|win| win.iter().zip(seq).all(|(w, s)| w == s))
}

fn small_number(word: &str) -> Option<u32> {
    if let Ok(n) = word.parse::<u32>() {
        return Some(n);
    }
    Some(match word {
        "one" => 1,
        "two" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        "ten" => 10,
        "eleven" => 11,
        "twelve" => 12,
        "fifteen" => 15,
        "twenty" => 20,
        "thirty" => 30,
        "forty" | "fourty" => 40,
        "fifty" => 50,
        "sixty" => 60,
        "ninety" => 90,
        _ => return None,
    })
}

/// A number at `i`, words or digits, "twenty five" as one; returns it and the next index.
fn number_at(words: &[String], i: usize) -> Option<(u32, usize)> {
    let first = small_number(words.get(i)?)?;
    if matches!(first, 20 | 30 | 40 | 50)
        && let Some(ones) = words.get(i + 1).and_then(|w| small_number(w))
        && (1..=9).contains(&ones)
    {
        return Some((first + ones, i + 2));
    }
    Some((first, i + 1))
}

/// Minutes per unit word ("our" is how recognisers often hear "hour" after "an").
fn unit_minutes(word: &str) -> Option<u32> {
    Some(match word {
        "minute" | "minutes" | "min" | "mins" => 1,
        "hour" | "hours" | "hr" | "hrs" | "our" | "ours" => 60,
        "day" | "days" => 1440,
        "week" | "weeks" => 10080,
        _ => return None,
    })
}

/// An amount ("an", "two", "a couple of", "a few") at `i`; returns it and the next index.
fn amount_at(words: &[String], i: usize) -> Option<(Amount, usize)> {
    let w = words.get(i)?.as_str();
    let mut j = i;
    if w == "a" || w == "an" {
        j += 1;
        match words.get(j).map(String::as_str) {
            Some("couple") => {
                j += 1;
                if words.get(j).is_some_and(|w| w == "of") {
                    j += 1;
                }
                return Some((Amount::Count(2), j));
            }
            Some("few") => return Some((Amount::Few, j + 1)),
            _ => return Some((Amount::Count(1), j)),
        }
    }
    match w {
        "couple" => {
            j += 1;
            if words.get(j).is_some_and(|w| w == "of") {
                j += 1;
            }
            Some((Amount::Count(2), j))
        }
        "few" => Some((Amount::Few, j + 1)),
        _ => number_at(words, i).map(|(n, next)| (Amount::Count(n), next)),
    }
}

enum Amount {
    Count(u32),
    /// "a few": five minutes, three hours or days.
    Few,
}

/// "in an hour", "in 20 minutes", "in half an hour", "in an hour and a half", "after two
/// hours", "an hour from now", "in a few minutes": the delay in minutes.
fn find_relative(words: &[String]) -> Option<u32> {
    for i in 0..words.len() {
        let introduced = matches!(words[i].as_str(), "in" | "after" | "within");
        let start = if introduced { i + 1 } else { i };
        let Some((minutes, end)) = delay_at(words, start) else { continue };
        let from_now = words.get(end).is_some_and(|w| w == "from") && words.get(end + 1).is_some_and(|w| w == "now");
        if introduced || from_now {
            return Some(minutes);
        }
    }
    None
}

fn delay_at(words: &[String], i: usize) -> Option<(u32, usize)> {
    let w = |k: usize| words.get(k).map(String::as_str);
    // "half an hour", "half hour", "a half hour"
    let h = if w(i) == Some("a") && w(i + 1) == Some("half") { i + 1 } else { i };
    if w(h) == Some("half") {
        let j = if matches!(w(h + 1), Some("an" | "a")) { h + 2 } else { h + 1 };
        return w(j).and_then(unit_minutes).map(|u| (u / 2, j + 1));
    }
    // "a quarter of an hour", "quarter hour"
    let q = if w(i) == Some("a") { i + 1 } else { i };
    if w(q) == Some("quarter") {
        let mut j = q + 1;
        if w(j) == Some("of") {
            j += 1;
        }
        if matches!(w(j), Some("an" | "a")) {
            j += 1;
        }
        return (w(j).and_then(unit_minutes) == Some(60)).then_some((15, j + 1));
    }
    let (amount, j) = amount_at(words, i)?;
    let unit = w(j).and_then(unit_minutes)?;
    let mut minutes = match amount {
        Amount::Count(n) => n.saturating_mul(unit),
        Amount::Few if unit == 1 => 5,
        Amount::Few => 3 * unit,
    };
    let mut end = j + 1;
    // "... and a half"
    if w(end) == Some("and") && w(end + 1) == Some("a") && w(end + 2) == Some("half") {
        minutes = minutes.saturating_add(unit / 2);
        end += 3;
    }
    (minutes > 0).then_some((minutes, end))
}

fn weekday_of(word: &str) -> Option<Weekday> {
    let base = word.strip_suffix('s').unwrap_or(word);
    Some(match base {
        "monday" => Weekday::Monday,
        "tuesday" | "tues" => Weekday::Tuesday,
        "wednesday" | "wendsday" | "wensday" => Weekday::Wednesday,
        "thursday" | "thurs" => Weekday::Thursday,
        "friday" => Weekday::Friday,
        "saturday" | "weekend" => Weekday::Saturday,
        "sunday" => Weekday::Sunday,
        _ => return None,
    })
}

fn is_tomorrow(word: &str) -> bool {
    word == "tmrw" || word == "tmr" || word_matches("tomorrow", word)
}

fn find_day(words: &[String]) -> Option<Day> {
    let w = |k: usize| words.get(k).map(String::as_str);
    for (i, word) in words.iter().enumerate() {
        let word = word.as_str();
        if word == "day" && w(i + 1) == Some("after") && w(i + 2).is_some_and(is_tomorrow) {
            return Some(Day::DayAfterTomorrow);
        }
        if is_tomorrow(word) || (word == "to" && w(i + 1) == Some("morrow")) {
            return Some(Day::Tomorrow);
        }
        if word == "next" && w(i + 1) == Some("week") {
            return Some(Day::NextWeek);
        }
        if let Some(d) = weekday_of(word) {
            return Some(Day::Weekday(d));
        }
        if matches!(word, "today" | "tonight" | "tonite") || (word == "later" && w(i + 1) == Some("today")) {
            return Some(Day::Today);
        }
    }
    None
}

fn find_part(words: &[String]) -> Option<TimeOfDay> {
    for (i, word) in words.iter().enumerate() {
        match word.as_str() {
            "morning" => return Some(TimeOfDay::Morning),
            "afternoon" => return Some(TimeOfDay::Afternoon),
            "evening" | "tonight" | "tonite" => return Some(TimeOfDay::Evening),
            "night" if i > 0 && words[i - 1] == "at" => return Some(TimeOfDay::Evening),
            _ => {}
        }
    }
    None
}

/// A clock time: "at 3", "3 pm", "3:30", "three thirty pm", "half past four", "quarter to
/// five", "noon", "10 o'clock". A bare number counts only after "at", "around", "about",
/// "after", "by", "before" or "say", or before am/pm/o'clock.
fn find_clock(words: &[String], part: Option<TimeOfDay>) -> Option<TimeOfDay> {
    let w = |k: usize| words.get(k).map(String::as_str);
    for i in 0..words.len() {
        let word = words[i].as_str();
        if matches!(word, "noon" | "midday" | "lunchtime") || (word == "lunch" && w(i + 1) == Some("time")) {
            return Some(TimeOfDay::Clock { hour: 12, minute: 0 });
        }
        // "half past four", "quarter past four", "quarter to five"
        if matches!(word, "half" | "quarter")
            && matches!(w(i + 1), Some("past" | "after" | "to" | "before"))
            && let Some((h, _)) = number_at(words, i + 2)
            && (1..=12).contains(&h)
        {
            let (hour, minute) = match (word, w(i + 1)) {
                ("half", _) => (h, 30),
                (_, Some("past" | "after")) => (h, 15),
                _ => (if h == 1 { 12 } else { h - 1 }, 45),
            };
            return Some(TimeOfDay::Clock { hour: infer_meridiem(hour, None, part), minute: minute as u8 });
        }
        if let Some((h, m)) = word.split_once(':') {
            let (Ok(h), Ok(m)) = (h.parse::<u32>(), m.parse::<u32>()) else { continue };
            if h <= 23 && m <= 59 {
                let meridiem = meridiem_at(words, i + 1);
                return Some(TimeOfDay::Clock { hour: infer_meridiem(h, meridiem, part), minute: m as u8 });
            }
            continue;
        }
        let introduced =
            i > 0 && matches!(words[i - 1].as_str(), "at" | "around" | "about" | "after" | "by" | "before" | "say");
        let Some((h, mut j)) = number_at(words, i) else { continue };
        if h > 23 {
            continue;
        }
        // minutes: "three thirty", "3 15", "four forty five"
        let mut minute = 0;
        if let Some((m, next)) = number_at(words, j)
            && (10..=59).contains(&m)
            && h <= 12
        {
            minute = m;
            j = next;
        }
        let oclock = w(j) == Some("o") && w(j + 1) == Some("clock");
        if oclock {
            j += 2;
        }
        let meridiem = meridiem_at(words, j);
        if introduced || oclock || meridiem.is_some() {
            return Some(TimeOfDay::Clock { hour: infer_meridiem(h, meridiem, part), minute: minute as u8 });
        }
    }
    None
}

#[derive(Clone, Copy, PartialEq)]
enum Meridiem {
    Am,
    Pm,
}

fn meridiem_at(words: &[String], i: usize) -> Option<Meridiem> {
    let w = |k: usize| words.get(k).map(String::as_str);
    match (w(i), w(i + 1)) {
        (Some("am"), _) | (Some("a"), Some("m")) => Some(Meridiem::Am),
        (Some("pm"), _) | (Some("p"), Some("m")) => Some(Meridiem::Pm),
        _ => None,
    }
}

/// The 24-hour hour: am/pm if said, else the part of the day, else office habits.
fn infer_meridiem(hour: u32, meridiem: Option<Meridiem>, part: Option<TimeOfDay>) -> u8 {
    let h = hour.min(23) as u8;
    if h > 12 {
        return h;
    }
    let pm = match (meridiem, part) {
        (Some(m), _) => m == Meridiem::Pm,
        (None, Some(TimeOfDay::Morning)) => false,
        (None, Some(TimeOfDay::Afternoon | TimeOfDay::Evening)) => true,
        _ => (1..=7).contains(&h),
    };
    match (h, pm) {
        (12, false) if meridiem == Some(Meridiem::Am) => 0,
        (12, _) => 12,
        (h, true) => h + 12,
        (h, false) => h,
    }
}

#[cfg(test)]
mod tests {
    use super::super::text::words;
    use super::*;

    fn when(text: &str) -> Option<CallbackTime> {
        parse(&words(text))
    }

    fn clock(hour: u8, minute: u8) -> Option<TimeOfDay> {
        Some(TimeOfDay::Clock { hour, minute })
    }

    #[test]
    fn relative_delays() {
        let cases = [
            ("call me back in an hour", 60),
            ("in a hour please", 60),
            ("maybe in an our", 60),
            ("in one hour", 60),
            ("try again in 20 minutes", 20),
            ("in twenty five minutes", 25),
            ("in half an hour", 30),
            ("in a half hour", 30),
            ("in an hour and a half", 90),
            ("in a quarter of an hour", 15),
            ("in two hours", 120),
            ("after 2 hrs", 120),
            ("in a couple of hours", 120),
            ("in a few minutes", 5),
            ("an hour from now", 60),
            ("in 10min", 10),
            ("in three days", 4320),
        ];
        for (text, minutes) in cases {
            assert_eq!(when(text), Some(CallbackTime::After { minutes }), "{text}");
        }
        assert_eq!(when("I have a few minutes"), None, "an amount without 'in' is not a delay");
    }

    #[test]
    fn days_and_clock_times() {
        use CallbackTime::At;
        let cases = [
            ("call me back tomorrow at 3", At { day: Day::Tomorrow, time: clock(15, 0) }),
            ("Tomorrow at 3 p.m.", At { day: Day::Tomorrow, time: clock(15, 0) }),
            ("tomorow at three pm", At { day: Day::Tomorrow, time: clock(15, 0) }),
            ("to morrow at 10", At { day: Day::Tomorrow, time: clock(10, 0) }),
            ("tomorrow morning", At { day: Day::Tomorrow, time: Some(TimeOfDay::Morning) }),
            ("tomorrow at 9 in the morning", At { day: Day::Tomorrow, time: clock(9, 0) }),
            ("at 3:30", At { day: Day::Today, time: clock(15, 30) }),
            ("around 4 30", At { day: Day::Today, time: clock(16, 30) }),
            ("at four thirty", At { day: Day::Today, time: clock(16, 30) }),
            ("at 11", At { day: Day::Today, time: clock(11, 0) }),
            ("at 8 tonight", At { day: Day::Today, time: clock(20, 0) }),
            ("5 o'clock", At { day: Day::Today, time: clock(17, 0) }),
            ("at 15:00", At { day: Day::Today, time: clock(15, 0) }),
            ("half past four", At { day: Day::Today, time: clock(16, 30) }),
            ("quarter to five", At { day: Day::Today, time: clock(16, 45) }),
            ("around noon", At { day: Day::Today, time: clock(12, 0) }),
            ("tonight", At { day: Day::Today, time: Some(TimeOfDay::Evening) }),
            ("this afternoon", At { day: Day::Today, time: Some(TimeOfDay::Afternoon) }),
            ("later today", At { day: Day::Today, time: None }),
            ("on Monday", At { day: Day::Weekday(Weekday::Monday), time: None }),
            ("friday afternoon at 2", At { day: Day::Weekday(Weekday::Friday), time: clock(14, 0) }),
            ("Wednesday at 10am", At { day: Day::Weekday(Weekday::Wednesday), time: clock(10, 0) }),
            ("next week", At { day: Day::NextWeek, time: None }),
            ("the day after tomorrow", At { day: Day::DayAfterTomorrow, time: None }),
            ("at 7 am", At { day: Day::Today, time: clock(7, 0) }),
            ("at 12 am", At { day: Day::Today, time: clock(0, 0) }),
        ];
        for (text, expected) in cases {
            assert_eq!(when(text), Some(expected), "{text}");
        }
        assert_eq!(when("later"), Some(CallbackTime::Later));
        assert_eq!(when("some other time"), Some(CallbackTime::Later));
        assert_eq!(when("yes I have 3 kids"), None, "a bare number is not a time");
        assert_eq!(when("no thanks"), None);
        assert_eq!(when("not today, tomorrow"), Some(At { day: Day::Tomorrow, time: None }));
    }

    #[test]
    fn describes_times_as_said_back() {
        let cases = [
            ("tomorrow at 3", "tomorrow at 3 pm"),
            ("in an hour", "in an hour"),
            ("in 90 minutes", "in 90 minutes"),
            ("in two hours", "in 2 hours"),
            ("monday morning", "on Monday morning"),
            ("at 3:05", "today at 3:05 pm"),
            ("at noon tomorrow", "tomorrow at noon"),
            ("tonight", "this evening"),
            ("later", "later"),
            ("next week", "next week"),
        ];
        for (text, said) in cases {
            assert_eq!(when(text).map(|t| t.to_string()).as_deref(), Some(said), "{text}");
        }
    }

    #[test]
    fn resolves_against_the_callees_clock() {
        // Wednesday 2025-05-21 16:00 in New York.
        let now: Zoned = "2025-05-21T16:00[America/New_York]".parse().unwrap();
        let at = |text: &str| when(text).and_then(|t| t.resolve(&now)).map(|z| z.datetime().to_string());
        assert_eq!(at("tomorrow at 3").as_deref(), Some("2025-05-22T15:00:00"));
        assert_eq!(at("in an hour").as_deref(), Some("2025-05-21T17:00:00"));
        assert_eq!(at("at 3").as_deref(), Some("2025-05-22T15:00:00"), "3 pm today has passed");
        assert_eq!(at("at 5").as_deref(), Some("2025-05-21T17:00:00"));
        assert_eq!(at("on wednesday").as_deref(), Some("2025-05-28T10:00:00"), "the next Wednesday, not today");
        assert_eq!(at("friday morning").as_deref(), Some("2025-05-23T09:00:00"));
        assert_eq!(at("next week").as_deref(), Some("2025-05-26T10:00:00"), "Monday of next week");
        assert_eq!(at("later today").as_deref(), Some("2025-05-21T18:00:00"));
        assert_eq!(at("later"), None);
    }
}
