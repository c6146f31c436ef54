//! Human or answering machine, decided in the first seconds after an outbound call is
//! answered, before the bot says anything. Pure: fed the caller's speech starts and ends
//! (from the endpointer), transcripts, detected beeps and keypresses, each with an `Instant`.
//!
//! The signals, after the usual answering-machine-detection practice:
//! - **Speech pattern.** A person says a short "Hello?" and waits: speech shorter than
//!   `max_greeting` followed by `after_greeting_silence` of quiet is a human. A machine talks
//!   on: speech (gaps shorter than `after_greeting_silence` do not break it) lasting
//!   `max_greeting` or more is a machine.
//! - **Words.** "leave a message", "after the tone", "voicemail", "you have reached" in a
//!   transcript mean a machine, even after a human verdict while `revision_window` lasts (a
//!   short recorded greeting can pass for a person). Weaker phrases a person might also say
//!   ("not available", "can't take your call") count only before the verdict.
//! - **Beep.** A beep (see `beep`) within `revision_window` is a machine.
//! - **Silence or a key.** Nobody speaking for `max_initial_silence`, a keypress, or no decision
//!   by `max_analysis` count as a human: a person who waits for us to speak first hears the
//!   greeting, and a silent machine still gives itself away by words or a beep later.

use std::time::{Duration, Instant};

use super::text::{Pattern, words};

#[derive(Debug, Clone, PartialEq)]
pub struct MachineConfig {
    pub max_initial_silence: Duration,
    pub max_greeting: Duration,
    pub after_greeting_silence: Duration,
    pub max_analysis: Duration,
    pub revision_window: Duration,
}

impl Default for MachineConfig {
    fn default() -> Self {
        Self {
            max_initial_silence: Duration::from_millis(2500),
            max_greeting: Duration::from_millis(3500),
            after_greeting_silence: Duration::from_millis(800),
            max_analysis: Duration::from_millis(5000),
            revision_window: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Human(HumanSign),
    Machine(MachineSign),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HumanSign {
    /// A short greeting, then quiet.
    ShortGreeting,
    /// Nobody spoke.
    Silence,
    Keypress,
    /// No sign either way by `max_analysis`.
    Undecided,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineSign {
    /// Continuous speech longer than a person's greeting.
    LongGreeting,
    /// Voicemail words in the transcript.
    Words,
    Beep,
}

impl MachineSign {
    pub fn describe(self) -> &'static str {
        match self {
            MachineSign::LongGreeting => "a long recorded greeting",
            MachineSign::Words => "voicemail greeting words",
            MachineSign::Beep => "a beep",
        }
    }
}

#[derive(Debug, Clone)]
pub struct MachineDetector {
    config: MachineConfig,
    answered_at: Instant,
    /// Start of the current stretch of speech (gaps shorter than `after_greeting_silence` join).
    run_start: Option<Instant>,
    in_speech: bool,
    last_speech_end: Option<Instant>,
    verdict: Option<Verdict>,
}

impl MachineDetector {
    pub fn new(config: MachineConfig, answered_at: Instant) -> Self {
        Self { config, answered_at, run_start: None, in_speech: false, last_speech_end: None, verdict: None }
    }

    pub fn verdict(&self) -> Option<Verdict> {
        self.verdict
    }

    pub fn in_speech(&self) -> bool {
        self.in_speech
    }

    pub fn last_speech_end(&self) -> Option<Instant> {
        self.last_speech_end
    }

    /// Each returns the verdict when it is made or changes (human -> machine), else `None`.
    pub fn speech_started(&mut self, now: Instant) -> Option<Verdict> {
        let joins_run = self
            .last_speech_end
            .is_some_and(|end| now.saturating_duration_since(end) < self.config.after_greeting_silence);
        if self.run_start.is_none() || !joins_run {
            self.run_start = Some(now);
        }
        self.in_speech = true;
        self.tick(now)
    }

    pub fn speech_ended(&mut self, now: Instant) -> Option<Verdict> {
        self.in_speech = false;
        self.last_speech_end = Some(now);
        if self.verdict.is_none()
            && let Some(start) = self.run_start
            && now.saturating_duration_since(start) >= self.config.max_greeting
        {
            return self.decide(Verdict::Machine(MachineSign::LongGreeting));
        }
        self.tick(now)
    }

    pub fn transcript(&mut self, text: &str, now: Instant) -> Option<Verdict> {
        if !self.revisable(now) {
            return None;
        }
        let w = words(text);
        let strong = strong_words().iter().any(|p| p.find(&w).is_some());
        let weak = self.verdict.is_none() && weak_words().iter().any(|p| p.find(&w).is_some());
        if strong || weak {
            return self.decide(Verdict::Machine(MachineSign::Words));
        }
        self.tick(now)
    }

    pub fn beep(&mut self, now: Instant) -> Option<Verdict> {
        if !self.revisable(now) {
            return None;
        }
        self.decide(Verdict::Machine(MachineSign::Beep))
    }

    pub fn keypress(&mut self, _now: Instant) -> Option<Verdict> {
        if self.verdict.is_some() {
            return None;
        }
        self.decide(Verdict::Human(HumanSign::Keypress))
    }

    /// Time passing: the speech-pattern and silence rules.
    pub fn tick(&mut self, now: Instant) -> Option<Verdict> {
        if self.verdict.is_some() {
            return None;
        }
        let c = &self.config;
        let since_answer = now.saturating_duration_since(self.answered_at);
        if let Some(start) = self.run_start {
            if self.in_speech && now.saturating_duration_since(start) >= c.max_greeting {
                return self.decide(Verdict::Machine(MachineSign::LongGreeting));
            }
            if !self.in_speech
                && let Some(end) = self.last_speech_end
                && now.saturating_duration_since(end) >= c.after_greeting_silence
            {
                return self.decide(Verdict::Human(HumanSign::ShortGreeting));
            }
        } else if since_answer >= c.max_initial_silence {
            return self.decide(Verdict::Human(HumanSign::Silence));
        }
        if since_answer >= c.max_analysis {
            return self.decide(Verdict::Human(HumanSign::Undecided));
        }
        None
    }

    /// The next moment `tick` could decide something, for the caller's timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.verdict.is_some() {
            return None;
        }
        let c = &self.config;
        let mut at = self.answered_at + c.max_analysis;
        match (self.run_start, self.in_speech, self.last_speech_end) {
            (None, _, _) => at = at.min(self.answered_at + c.max_initial_silence),
            (Some(start), true, _) => at = at.min(start + c.max_greeting),
            (Some(_), false, Some(end)) => at = at.min(end + c.after_greeting_silence),
            (Some(_), false, None) => {}
        }
        Some(at)
    }

    fn revisable(&self, now: Instant) -> bool {
        !matches!(self.verdict, Some(Verdict::Machine(_)))
            && now.saturating_duration_since(self.answered_at) < self.config.revision_window
    }

    fn decide(&mut self, verdict: Verdict) -> Option<Verdict> {
        self.verdict = Some(verdict);
        Some(verdict)
    }
}

/// Words only a recorded greeting says.
fn strong_words() -> &'static [Pattern] {
    static P: std::sync::OnceLock<Vec<Pattern>> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        [
            "leave|record ~ message|name|number|details",
            "after|at the tone|beep|signal",
            "voicemail|voicemails|mailbox|answerphone",
            "voice mail",
            "mail box",
            "answering machine|service",
            "you have reached",
            "you reached",
            "press pound|hash",
            "finished recording",
            "missed your call",
            "not available ~ leave",
        ]
        .into_iter()
        .map(Pattern::new)
        .collect()
    })
}

/// Words a recorded greeting says but a person at the phone might too.
fn weak_words() -> &'static [Pattern] {
    static P: std::sync::OnceLock<Vec<Pattern>> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        [
            "not available",
            "unavailable",
            "can not|unable to? take|answer|come ~ call|phone",
            "get back to you",
            "away from ~ phone|desk",
            "number|person you ~ called|dialed|dialled|calling",
            "as soon as possible",
        ]
        .into_iter()
        .map(Pattern::new)
        .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    /// Runs ticks every 20 ms up to `until_ms`, applying scripted events; returns the first
    /// verdict and when it came.
    fn run(events: &[(u64, &str)], until_ms: u64) -> Option<(Verdict, u64)> {
        let t0 = Instant::now();
        let mut d = MachineDetector::new(MachineConfig::default(), t0);
        let mut t = 0;
        while t <= until_ms {
            for &(at, what) in events.iter().filter(|(at, _)| *at == t) {
                let v = match what {
                    "start" => d.speech_started(ms(t0, at)),
                    "end" => d.speech_ended(ms(t0, at)),
                    "beep" => d.beep(ms(t0, at)),
                    "key" => d.keypress(ms(t0, at)),
                    text => d.transcript(text, ms(t0, at)),
                };
                if let Some(v) = v {
                    return Some((v, t));
                }
            }
            if let Some(v) = d.tick(ms(t0, t)) {
                return Some((v, t));
            }
            t += 20;
        }
        None
    }

    #[test]
    fn short_hello_then_quiet_is_a_human() {
        let v = run(&[(400, "start"), (1000, "end")], 6000);
        assert_eq!(v, Some((Verdict::Human(HumanSign::ShortGreeting), 1800)));
        // "Hello? ... Hello?": human at the first long enough pause.
        let v = run(&[(300, "start"), (800, "end"), (1800, "start"), (2300, "end")], 6000);
        assert_eq!(v, Some((Verdict::Human(HumanSign::ShortGreeting), 1600)));
        // A shorter pause joins the two into one stretch, still short: human after the second.
        let v = run(&[(300, "start"), (800, "end"), (1400, "start"), (1900, "end")], 6000);
        assert_eq!(v, Some((Verdict::Human(HumanSign::ShortGreeting), 2700)));
    }

    #[test]
    fn long_continuous_greeting_is_a_machine() {
        let v = run(&[(300, "start"), (6000, "end")], 8000);
        assert_eq!(v, Some((Verdict::Machine(MachineSign::LongGreeting), 3800)));
        // Words with short gaps count as one stretch of speech.
        let v =
            run(&[(300, "start"), (1500, "end"), (1900, "start"), (3000, "end"), (3300, "start"), (5000, "end")], 8000);
        assert_eq!(v, Some((Verdict::Machine(MachineSign::LongGreeting), 3800)));
    }

    #[test]
    fn silence_keys_and_indecision_are_human() {
        assert_eq!(run(&[], 6000), Some((Verdict::Human(HumanSign::Silence), 2500)));
        assert_eq!(run(&[(500, "key")], 6000), Some((Verdict::Human(HumanSign::Keypress), 500)));
        // Speech that starts late and is still short at the analysis limit.
        let v = run(&[(2400, "start"), (4000, "end"), (4600, "start")], 6000);
        assert_eq!(v, Some((Verdict::Human(HumanSign::Undecided), 5000)));
    }

    #[test]
    fn voicemail_words_and_beeps_are_a_machine() {
        let v = run(&[(300, "start"), (1200, "Hi, leave a message after the tone.")], 6000);
        assert_eq!(v, Some((Verdict::Machine(MachineSign::Words), 1200)));
        let v = run(&[(300, "start"), (1200, "You've reached the voicemail of John.")], 6000);
        assert_eq!(v, Some((Verdict::Machine(MachineSign::Words), 1200)));
        let v = run(&[(200, "beep")], 6000);
        assert_eq!(v, Some((Verdict::Machine(MachineSign::Beep), 200)));
    }

    #[test]
    fn strong_words_revise_a_human_verdict_weak_ones_do_not() {
        let t0 = Instant::now();
        let mut d = MachineDetector::new(MachineConfig::default(), t0);
        d.speech_started(ms(t0, 300));
        d.speech_ended(ms(t0, 1500));
        assert_eq!(d.tick(ms(t0, 2300)), Some(Verdict::Human(HumanSign::ShortGreeting)));
        assert_eq!(d.transcript("Sorry, he's not available right now.", ms(t0, 3000)), None, "a person may say that");
        assert_eq!(
            d.transcript("Please leave your name and number.", ms(t0, 4000)),
            Some(Verdict::Machine(MachineSign::Words))
        );
        assert_eq!(d.beep(ms(t0, 5000)), None, "already a machine");

        let mut d = MachineDetector::new(MachineConfig::default(), t0);
        assert_eq!(d.tick(ms(t0, 2500)), Some(Verdict::Human(HumanSign::Silence)));
        assert_eq!(d.beep(ms(t0, 16_000)), None, "after the revision window");
        assert_eq!(d.beep(ms(t0, 9000)), Some(Verdict::Machine(MachineSign::Beep)));
    }

    #[test]
    fn weak_words_decide_before_a_verdict() {
        let v = run(&[(300, "start"), (900, "end"), (1300, "The person you called is not available.")], 6000);
        assert_eq!(v, Some((Verdict::Machine(MachineSign::Words), 1300)));
        let v = run(&[(300, "start"), (900, "end"), (1000, "Hello, who is this?")], 6000);
        assert_eq!(v, Some((Verdict::Human(HumanSign::ShortGreeting), 1700)));
    }

    #[test]
    fn deadlines_point_at_the_next_decision() {
        let t0 = Instant::now();
        let mut d = MachineDetector::new(MachineConfig::default(), t0);
        assert_eq!(d.next_deadline(), Some(ms(t0, 2500)));
        d.speech_started(ms(t0, 300));
        assert_eq!(d.next_deadline(), Some(ms(t0, 3800)));
        d.speech_ended(ms(t0, 1000));
        assert_eq!(d.next_deadline(), Some(ms(t0, 1800)));
        assert_eq!(d.tick(ms(t0, 1800)), Some(Verdict::Human(HumanSign::ShortGreeting)));
        assert_eq!(d.next_deadline(), None);
    }
}
