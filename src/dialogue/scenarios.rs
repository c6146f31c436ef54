//! Scripted conversations through the engine: event sequences in, actions checked. Time is an
//! `Instant` moved by hand, so timeouts run without sleeping.

use std::time::{Duration, Instant};

use super::answer::Expect;
use super::engine::{Action, Dialogue, DialogueConfig, Event, LineId, Summary};
use super::script::Script;
use super::when::{CallbackTime, Day, TimeOfDay};
use crate::domain::status::Outcome;
use crate::domain::template::{Step, StepNext, StepType};

fn step(id: &str, kind: StepType, content: &str) -> Step {
    Step { id: id.into(), step_type: kind, content: content.into(), next: None }
}

/// The spec's example template, filled.
fn sales() -> Vec<Step> {
    vec![
        step("1", StepType::Greeting, "Hello, this is {companyName}. Am I speaking with {contactName}?"),
        step("2", StepType::Information, "I'm calling to tell you about our new {productName}."),
        step("3", StepType::Question, "Do you have a few minutes to discuss how this could benefit your company?"),
        step("4", StepType::Response, "Great! Let me tell you about our key features..."),
        step(
            "5",
            StepType::Closing,
            "Thank you for your time. Would you like to schedule a follow-up call with one of our specialists?",
        ),
    ]
}

fn value(name: &str) -> Option<String> {
    match name {
        "companyName" => Some("Acme".into()),
        "contactName" => Some("John".into()),
        "productName" => Some("Premium Widget".into()),
        _ => None,
    }
}

struct Call {
    dialogue: Dialogue,
    t0: Instant,
    now: Instant,
    /// Everything the engine asked for, in order.
    log: Vec<Action>,
}

impl Call {
    fn new(steps: &[Step], voicemail: Option<&str>, config: DialogueConfig) -> Call {
        let script = Script::new(steps, voicemail, value).expect("script");
        let t0 = Instant::now();
        Call { dialogue: Dialogue::new(script, config), t0, now: t0, log: Vec::new() }
    }

    fn inbound(steps: &[Step]) -> Call {
        Call::new(steps, None, DialogueConfig::default())
    }

    fn at_ms(&mut self, ms: u64) -> &mut Self {
        let t = self.t0 + Duration::from_millis(ms);
        assert!(t >= self.now, "time goes forward");
        self.now = t;
        self
    }

    fn after_ms(&mut self, ms: u64) -> &mut Self {
        self.now += Duration::from_millis(ms);
        self
    }

    fn send(&mut self, event: Event) -> Vec<Action> {
        let actions = self.dialogue.handle(event, self.now);
        self.log.extend(actions.iter().cloned());
        actions
    }

    /// Plays the current line to its end.
    fn line_done(&mut self) -> Vec<Action> {
        let line = self.dialogue.speaking().expect("a line is playing");
        self.after_ms(1500);
        self.send(Event::LineDone(line))
    }

    /// The caller says something: speech start, end, transcript.
    fn say(&mut self, text: &str) -> Vec<Action> {
        self.after_ms(300);
        let mut all = self.send(Event::CallerSpeechStarted);
        self.after_ms(700);
        all.extend(self.send(Event::CallerSpeechEnded));
        self.after_ms(300);
        all.extend(self.send(Event::CallerTurn { text: text.into(), confidence: 0.9 }));
        all
    }

    /// Ticks every 100 ms for `ms`.
    fn wait_ms(&mut self, ms: u64) -> Vec<Action> {
        let mut all = Vec::new();
        for _ in 0..ms / 100 {
            self.after_ms(100);
            all.extend(self.send(Event::Tick));
        }
        all
    }

    fn summary(&self) -> Summary {
        let finishes: Vec<&Summary> =
            self.log.iter().filter_map(|a| if let Action::Finish(s) = a { Some(s) } else { None }).collect();
        assert_eq!(finishes.len(), 1, "exactly one Finish in {:#?}", self.log);
        assert!(matches!(self.log.last(), Some(Action::Finish(_))), "Finish comes last");
        finishes[0].clone()
    }

    fn hung_up(&self) -> bool {
        self.log.contains(&Action::HangUp)
    }

    fn lines_said(&self) -> Vec<String> {
        self.log
            .iter()
            .filter_map(|a| if let Action::Say { text, .. } = a { Some(text.clone()) } else { None })
            .collect()
    }
}

fn said(actions: &[Action]) -> Option<&str> {
    actions.iter().find_map(|a| if let Action::Say { text, .. } = a { Some(text.as_str()) } else { None })
}

fn said_step(actions: &[Action]) -> Option<&str> {
    actions.iter().find_map(|a| if let Action::Say { step, .. } = a { step.as_deref() } else { None })
}

fn listens(actions: &[Action]) -> Option<Expect> {
    actions.iter().find_map(|a| if let Action::Listen { expect, .. } = a { Some(*expect) } else { None })
}

#[test]
fn agree_path_runs_the_spec_template_in_order() {
    let mut c = Call::inbound(&sales());
    let a = c.send(Event::Answered);
    assert_eq!(said(&a), Some("Hello, this is Acme. Am I speaking with John?"));
    assert!(matches!(a[0], Action::Say { interruptible: true, line: LineId(1), .. }));
    // The greeting asks, so it listens (open, short timeout).
    assert_eq!(listens(&c.line_done()), Some(Expect::Open));
    let a = c.say("Yes, speaking.");
    assert_eq!(said_step(&a), Some("2"), "{a:?}");
    let a = c.line_done();
    assert_eq!(said_step(&a), Some("3"));
    assert_eq!(listens(&c.line_done()), Some(Expect::YesNo));
    let a = c.say("Yeah, sure.");
    assert_eq!(said_step(&a), Some("4"));
    assert_eq!(said_step(&c.line_done()), Some("5"));
    // The closing asks too: its answer is recorded, then a farewell and the hang-up.
    assert_eq!(listens(&c.line_done()), Some(Expect::YesNo));
    let a = c.say("Sure, why not.");
    assert_eq!(said(&a), Some("Thank you. Goodbye."));
    assert!(matches!(a.last(), Some(Action::Say { interruptible: false, .. })));
    let a = c.line_done();
    assert_eq!(a[0], Action::HangUp);
    let s = c.summary();
    assert_eq!(s.outcome, Outcome::Successful);
    assert_eq!(s.notes, "Caller agreed at step 3 (\"Yeah, sure.\").");
    assert_eq!(s.callback, None);
    assert!(c.dialogue.is_finished());
    assert_eq!(c.send(Event::Tick), vec![], "nothing after the end");
}

#[test]
fn decline_skips_the_response_and_closes() {
    let mut c = Call::inbound(&sales());
    c.send(Event::Answered);
    c.line_done();
    c.say("Yes.");
    c.line_done();
    c.line_done();
    let a = c.say("No, I'm not interested.");
    assert_eq!(said_step(&a), Some("5"), "response step 4 answers a yes: skipped");
    c.line_done();
    c.say("No.");
    c.line_done();
    let s = c.summary();
    assert_eq!(s.outcome, Outcome::Rejected);
    assert_eq!(s.notes, "Caller declined at step 3 (\"No, I'm not interested.\").");
    assert!(!c.lines_said().iter().any(|l| l.contains("key features")));
}

#[test]
fn opt_out_mid_call_by_barge_in() {
    let mut c = Call::inbound(&sales());
    c.send(Event::Answered);
    c.line_done();
    let a = c.say("Yes");
    assert_eq!(said_step(&a), Some("2"));
    let info_line = c.dialogue.speaking().unwrap();
    // The caller talks over the information line.
    c.after_ms(800);
    let a = c.send(Event::CallerSpeechStarted);
    assert_eq!(a[0], Action::StopSpeaking);
    assert_eq!(listens(&a), Some(Expect::Open));
    // The cleared line's mark comes back: ignored.
    assert_eq!(c.send(Event::LineDone(info_line)), vec![]);
    c.after_ms(900);
    c.send(Event::CallerSpeechEnded);
    let a = c.send(Event::CallerTurn { text: "Stop calling me.".into(), confidence: 0.8 });
    assert!(a.contains(&Action::SetDoNotCall));
    assert_eq!(said(&a), Some("Understood. We won't call you again. Sorry for the trouble, goodbye."));
    // The goodbye cannot be interrupted.
    assert_eq!(c.send(Event::CallerSpeechStarted), vec![]);
    c.line_done();
    assert!(c.hung_up());
    let s = c.summary();
    assert_eq!(s.outcome, Outcome::OptedOut);
    assert_eq!(s.notes, "Caller asked not to be called again at step 2 (\"Stop calling me.\"); marked do-not-call.");
    assert_eq!(c.log.iter().filter(|a| **a == Action::SetDoNotCall).count(), 1);
}

#[test]
fn callback_with_a_time() {
    let mut c = Call::inbound(&sales());
    c.send(Event::Answered);
    c.line_done();
    c.say("yes");
    c.line_done();
    c.line_done();
    let a = c.say("I'm busy, call me back tomorrow at 3.");
    assert_eq!(said(&a), Some("Of course. We'll call you back tomorrow at 3 pm. Thank you, goodbye."));
    c.line_done();
    let s = c.summary();
    assert_eq!(s.outcome, Outcome::CallbackRequested);
    assert_eq!(s.notes, "Caller asked to be called back tomorrow at 3 pm (at step 3).");
    let when = CallbackTime::At { day: Day::Tomorrow, time: Some(TimeOfDay::Clock { hour: 15, minute: 0 }) };
    assert_eq!(s.callback, Some(Some(when)));
}

#[test]
fn callback_without_a_time_asks_for_one() {
    let mut c = Call::inbound(&sales());
    c.send(Event::Answered);
    c.line_done();
    c.say("yes");
    c.line_done();
    c.line_done();
    let a = c.say("Sorry, I'm driving right now.");
    assert_eq!(said(&a), Some("Of course. When would be a good time to call you back?"));
    assert_eq!(listens(&c.line_done()), Some(Expect::CallbackTime));
    let a = c.say("In an hour.");
    assert_eq!(said(&a), Some("Of course. We'll call you back in an hour. Thank you, goodbye."));
    c.line_done();
    let s = c.summary();
    assert_eq!(s.outcome, Outcome::CallbackRequested);
    assert_eq!(s.notes, "Caller asked to be called back in an hour (at step 3).");
    assert_eq!(s.callback, Some(Some(CallbackTime::After { minutes: 60 })));

    // Silence after the callback question: a callback without a time.
    let mut c = Call::inbound(&sales());
    c.send(Event::Answered);
    c.line_done();
    c.say("yes");
    c.line_done();
    c.line_done();
    c.send(Event::Dtmf('3'));
    c.line_done();
    let a = c.wait_ms(6000);
    assert_eq!(said(&a), Some("Of course. We'll call you back later. Thank you, goodbye."));
    c.line_done();
    let s = c.summary();
    assert_eq!(s.outcome, Outcome::CallbackRequested);
    assert_eq!(s.callback, Some(None));
    assert_eq!(s.notes, "Caller asked to be called back, without a time (at step 3).");
}

#[test]
fn repeat_request_says_the_line_again() {
    let mut c = Call::inbound(&sales());
    c.send(Event::Answered);
    c.line_done();
    c.say("yes");
    c.line_done();
    assert_eq!(listens(&c.line_done()), Some(Expect::YesNo), "the question's line ended: listening");
    let a = c.say("Sorry, can you repeat that?");
    assert_eq!(said(&a), Some("Do you have a few minutes to discuss how this could benefit your company?"));
    assert_eq!(said_step(&a), Some("3"));
    c.line_done();
    let a = c.say("What?");
    assert_eq!(said_step(&a), Some("3"), "a second repeat");
    c.line_done();
    // The third is treated as unclear: one re-prompt, then on.
    let a = c.say("Huh?");
    assert_eq!(
        said(&a),
        Some("Sorry, I didn't catch that. Do you have a few minutes to discuss how this could benefit your company?")
    );
    c.line_done();
    let a = c.say("Yes.");
    assert_eq!(said_step(&a), Some("4"));
}

#[test]
fn unclear_twice_moves_on() {
    let mut c = Call::inbound(&sales());
    c.send(Event::Answered);
    c.line_done();
    c.say("yes");
    c.line_done();
    c.line_done();
    let a = c.say("The weather is nice in Paris.");
    assert_eq!(
        said(&a),
        Some("Sorry, I didn't catch that. Do you have a few minutes to discuss how this could benefit your company?")
    );
    c.line_done();
    let a = c.say("Purple elephant.");
    assert_eq!(said_step(&a), Some("4"), "on without an answer");
    c.line_done();
    c.line_done();
    c.wait_ms(6000);
    c.line_done();
    c.wait_ms(6000);
    c.line_done();
    let s = c.summary();
    assert_eq!(s.outcome, Outcome::Unsuccessful);
    assert_eq!(s.notes, "Script completed without a clear answer at step 3.");
}

#[test]
fn low_confidence_is_unclear_but_an_opt_out_still_counts() {
    let mut c = Call::inbound(&sales());
    c.send(Event::Answered);
    c.line_done();
    c.say("yes");
    c.line_done();
    c.line_done();
    let a = c.send(Event::CallerTurn { text: "Yes.".into(), confidence: 0.1 });
    assert!(said(&a).is_some_and(|t| t.starts_with("Sorry, I didn't catch that.")));
    c.line_done();
    let a = c.send(Event::CallerTurn { text: "remove me from your list".into(), confidence: 0.1 });
    assert!(a.contains(&Action::SetDoNotCall));
}

#[test]
fn silence_reprompts_then_moves_on_then_ends() {
    let mut c = Call::inbound(&sales());
    c.send(Event::Answered);
    c.line_done();
    // Nobody answers the greeting: after the greeting timeout it goes on, without a re-prompt.
    let a = c.wait_ms(3000);
    assert_eq!(said_step(&a), Some("2"));
    c.line_done();
    c.line_done();
    let a = c.wait_ms(5900);
    assert_eq!(a, vec![], "not yet");
    let a = c.wait_ms(100);
    assert_eq!(
        said(&a),
        Some("Are you still there? Do you have a few minutes to discuss how this could benefit your company?")
    );
    c.line_done();
    let a = c.wait_ms(6000);
    assert_eq!(said_step(&a), Some("4"), "second silence: on");
    c.line_done();
    c.line_done();
    // The closing asks; a third silence in a row ends the call.
    let a = c.wait_ms(6000);
    assert_eq!(said(&a), Some("I can't hear you, so I'll let you go. Goodbye."));
    c.line_done();
    let s = c.summary();
    assert_eq!(s.outcome, Outcome::Unsuccessful);
    assert_eq!(s.notes, "Caller stopped responding at step 5.");
}

#[test]
fn speech_pauses_the_silence_timer() {
    let mut c = Call::inbound(&sales());
    c.send(Event::Answered);
    c.line_done();
    c.say("yes");
    c.line_done();
    c.line_done();
    c.after_ms(5000);
    c.send(Event::CallerSpeechStarted);
    assert_eq!(c.wait_ms(8000), vec![], "a long turn is not silence");
    c.send(Event::CallerSpeechEnded);
    assert_eq!(c.dialogue.next_deadline(), Some(c.now + Duration::from_secs(6)));
    let a = c.send(Event::CallerTurn { text: "Absolutely.".into(), confidence: 0.9 });
    assert_eq!(said_step(&a), Some("4"));
}

#[test]
fn dtmf_only_call() {
    let mut c = Call::inbound(&sales());
    c.send(Event::Answered);
    c.line_done();
    let a = c.send(Event::Dtmf('1'));
    assert_eq!(said_step(&a), Some("2"));
    c.line_done();
    c.line_done();
    // '#' means nothing; '0' repeats the question; '1' is yes.
    assert_eq!(c.send(Event::Dtmf('#')), vec![]);
    let a = c.send(Event::Dtmf('0'));
    assert_eq!(said_step(&a), Some("3"));
    // Pressing while the question plays interrupts it and answers.
    let a = c.send(Event::Dtmf('1'));
    assert_eq!(a[0], Action::StopSpeaking);
    assert_eq!(said_step(&a), Some("4"));
    c.line_done();
    c.line_done();
    let a = c.send(Event::Dtmf('2'));
    assert_eq!(said(&a), Some("Thank you. Goodbye."));
    c.line_done();
    let s = c.summary();
    assert_eq!(s.outcome, Outcome::Successful, "the closing's answer does not decide the outcome");
    assert_eq!(s.notes, "Caller agreed at step 3 (pressed 1).");

    let mut c = Call::inbound(&sales());
    c.send(Event::Answered);
    let a = c.send(Event::Dtmf('9'));
    assert_eq!(a[0], Action::StopSpeaking);
    assert!(a.contains(&Action::SetDoNotCall));
    c.line_done();
    assert_eq!(c.summary().outcome, Outcome::OptedOut);
    assert_eq!(c.summary().notes, "Caller asked not to be called again at step 1 (pressed 9); marked do-not-call.");
}

#[test]
fn barge_in_during_a_question_answers_it() {
    let mut c = Call::inbound(&sales());
    c.send(Event::Answered);
    c.line_done();
    c.say("yes");
    c.line_done();
    let question = c.dialogue.speaking().unwrap();
    c.after_ms(500);
    let a = c.send(Event::CallerSpeechStarted);
    assert_eq!(a[0], Action::StopSpeaking);
    assert_eq!(listens(&a), Some(Expect::YesNo));
    assert_eq!(c.send(Event::LineDone(question)), vec![], "the cleared line's mark");
    c.after_ms(600);
    c.send(Event::CallerSpeechEnded);
    let a = c.send(Event::CallerTurn { text: "Yeah go ahead".into(), confidence: 0.9 });
    assert_eq!(said_step(&a), Some("4"));
}

#[test]
fn barge_in_during_information_resumes_once_then_moves_on() {
    let mut c = Call::inbound(&sales());
    c.send(Event::Answered);
    c.line_done();
    c.say("yes");
    let a = c.say("Uh-huh.");
    assert_eq!(a[0], Action::StopSpeaking);
    assert_eq!(said(&a), Some("As I was saying: I'm calling to tell you about our new Premium Widget."));
    let a = c.say("Okay.");
    assert_eq!(a[0], Action::StopSpeaking);
    assert_eq!(said_step(&a), Some("3"), "interrupted twice: skip ahead");
    // A decline while a step plays goes to the closing.
    let mut c = Call::inbound(&sales());
    c.send(Event::Answered);
    c.line_done();
    c.say("yes");
    let a = c.say("No thanks, not interested.");
    assert_eq!(said_step(&a), Some("5"));
    c.line_done();
    c.say("no");
    c.line_done();
    let s = c.summary();
    assert_eq!(s.outcome, Outcome::Rejected);
    assert_eq!(s.notes, "Caller declined at step 2 (\"No thanks, not interested.\").");
}

#[test]
fn a_stray_turn_during_a_line_is_ignored_unless_it_opts_out() {
    let mut c = Call::inbound(&sales());
    c.send(Event::Answered);
    c.line_done();
    c.say("yes");
    // The transcript of something said before this line arrives while it plays.
    assert_eq!(c.send(Event::CallerTurn { text: "Hello?".into(), confidence: 0.9 }), vec![]);
    let a = c.send(Event::CallerTurn { text: "please don't call me again".into(), confidence: 0.9 });
    assert_eq!(a[0], Action::StopSpeaking);
    assert!(a.contains(&Action::SetDoNotCall));
}

#[test]
fn branching_by_answer() {
    let mut q = step("ask", StepType::Question, "Would you like a demo?");
    q.next = Some(StepNext {
        yes: Some("book".into()),
        no: Some("email".into()),
        opt_out: Some("sorry".into()),
        ..StepNext::default()
    });
    let mut email = step("email", StepType::Question, "Can I send you an email instead?");
    email.next = Some(StepNext { default: Some("bye".into()), ..StepNext::default() });
    let steps = vec![
        step("hi", StepType::Greeting, "Hi, this is Acme."),
        q,
        step("book", StepType::Response, "Great, a specialist will call you."),
        email,
        step("bye", StepType::Closing, "Thanks, goodbye."),
        step("sorry", StepType::Closing, "We will not call again. Goodbye."),
    ];
    let run = |answer: &str| {
        let mut c = Call::inbound(&steps);
        c.send(Event::Answered);
        c.line_done(); // greeting (does not ask: straight on)
        c.line_done();
        let a = c.say(answer);
        (c, a)
    };
    let (mut c, a) = run("yes please");
    assert_eq!(said_step(&a), Some("book"));
    let a = c.line_done();
    assert_eq!(said_step(&a), Some("email"), "linear after the response");
    c.line_done();
    let a = c.say("sure");
    assert_eq!(said_step(&a), Some("bye"), "next.default");
    c.line_done();
    assert_eq!(c.summary().outcome, Outcome::Successful);
    assert_eq!(c.summary().notes, "Caller agreed at step email (\"sure\").");

    let (mut c, a) = run("no");
    assert_eq!(said_step(&a), Some("email"));
    c.line_done();
    c.say("no thanks");
    c.line_done();
    assert_eq!(c.summary().outcome, Outcome::Rejected);

    let (mut c, a) = run("take me off your list");
    assert_eq!(said(&a), Some("We will not call again. Goodbye."), "next.optOut replaces the built-in goodbye");
    assert!(a.contains(&Action::SetDoNotCall));
    c.line_done();
    assert!(c.hung_up());
    assert_eq!(c.summary().outcome, Outcome::OptedOut);
}

#[test]
fn a_next_loop_that_never_listens_is_stopped() {
    let mut a = step("a", StepType::Information, "A.");
    a.next = Some(StepNext { default: Some("b".into()), ..StepNext::default() });
    let mut b = step("b", StepType::Information, "B.");
    b.next = Some(StepNext { default: Some("a".into()), ..StepNext::default() });
    let mut c = Call::inbound(&[a, b]);
    c.send(Event::Answered);
    for _ in 0..200 {
        if c.dialogue.is_finished() {
            break;
        }
        c.line_done();
    }
    assert!(c.hung_up());
    let s = c.summary();
    assert_eq!(s.outcome, Outcome::Failed);
    assert_eq!(s.notes, "Script stopped after 100 steps: its `next` links loop.");
}

#[test]
fn information_only_script_is_a_delivered_message() {
    let steps = vec![
        step("1", StepType::Greeting, "Hello from Acme Clinic."),
        step("2", StepType::Information, "This call is made by an automated assistant and may be recorded."),
        step("3", StepType::Information, "Your appointment is tomorrow at 10."),
        step("4", StepType::Closing, "Goodbye."),
    ];
    let mut c = Call::inbound(&steps);
    c.send(Event::Answered);
    for _ in 0..4 {
        c.line_done();
    }
    assert!(c.hung_up());
    let s = c.summary();
    assert_eq!(s.outcome, Outcome::Successful);
    assert_eq!(s.notes, "Message delivered: the caller heard all 4 steps.");
}

#[test]
fn hang_ups_and_lost_connections() {
    let mut c = Call::inbound(&sales());
    c.send(Event::Answered);
    c.line_done();
    c.say("yes");
    let a = c.send(Event::HungUp);
    assert!(!a.contains(&Action::HangUp), "the caller already hung up");
    let s = c.summary();
    assert_eq!(s.outcome, Outcome::Unsuccessful, "hanging up is not saying no");
    assert_eq!(s.notes, "Caller hung up during step 2 without answering.");

    let mut c = Call::inbound(&sales());
    c.send(Event::Answered);
    c.line_done();
    c.say("yes");
    c.line_done();
    c.line_done();
    c.say("yes");
    c.send(Event::TransportLost { reason: "socket closed without stop".into() });
    assert_eq!(c.summary().outcome, Outcome::Successful, "the answer was given before the line dropped");

    let mut c = Call::inbound(&sales());
    c.send(Event::Answered);
    c.send(Event::TransportLost { reason: "socket closed without stop".into() });
    let s = c.summary();
    assert_eq!(s.outcome, Outcome::Failed);
    assert_eq!(s.notes, "Connection lost during step 1: socket closed without stop.");
}

#[test]
fn a_cancelled_call_keeps_an_answer_already_given_and_says_it_was_cancelled_otherwise() {
    let mut c = Call::inbound(&sales());
    c.send(Event::Answered);
    c.line_done();
    let a = c.send(Event::Cancelled);
    assert!(!a.contains(&Action::HangUp), "the session hangs up itself");
    let s = c.summary();
    assert_eq!(s.outcome, Outcome::Unsuccessful);
    assert_eq!(s.notes, "Call cancelled through the API during step 1, before a clear answer.");

    let mut c = Call::inbound(&sales());
    c.send(Event::Answered);
    c.line_done();
    c.say("yes");
    c.line_done();
    c.line_done();
    c.say("yes");
    c.send(Event::Cancelled);
    assert_eq!(c.summary().outcome, Outcome::Successful, "the answer was given before the cancel");
}

#[test]
fn an_end_before_the_answer() {
    let cases: [(Event, Outcome, &str); 3] = [
        (Event::HungUp, Outcome::NoAnswer, "No answer."),
        (
            Event::TransportLost { reason: "carrier error 503".into() },
            Outcome::Failed,
            "The call failed before it was answered: carrier error 503.",
        ),
        (Event::Cancelled, Outcome::NoAnswer, "Call cancelled through the API before it was answered."),
    ];
    for (end, outcome, notes) in cases {
        let mut c = Call::inbound(&sales());
        assert_eq!(c.send(Event::Tick), vec![]);
        assert_eq!(c.send(Event::CallerSpeechStarted), vec![], "nothing before the answer");
        c.send(end);
        assert!(!c.hung_up());
        let s = c.summary();
        assert_eq!((s.outcome, s.notes.as_str()), (outcome, notes));
    }
}

#[test]
fn time_limit_ends_the_call() {
    let config = DialogueConfig { max_duration: Duration::from_secs(60), ..DialogueConfig::default() };
    let mut c = Call::new(&sales(), None, config);
    c.send(Event::Answered);
    assert_eq!(c.dialogue.next_deadline(), Some(c.t0 + Duration::from_secs(60)));
    c.at_ms(60_000);
    let a = c.send(Event::Tick);
    assert_eq!(a[0], Action::StopSpeaking);
    assert_eq!(said(&a), Some("I'm sorry, we have to end the call here. Goodbye."));
    c.line_done();
    let s = c.summary();
    assert_eq!(s.outcome, Outcome::Unsuccessful);
    assert_eq!(s.notes, "Call ended at the 1-minute limit during step 1.");
}

fn outbound(voicemail: Option<&str>) -> Call {
    Call::new(&sales(), voicemail, DialogueConfig { screen_for_machine: true, ..DialogueConfig::default() })
}

#[test]
fn screening_finds_a_human_and_greets() {
    let mut c = outbound(Some("Please call Acme back."));
    let a = c.send(Event::Answered);
    assert_eq!(
        a,
        vec![Action::Listen { expect: Expect::Open, timeout: Duration::from_secs(5) }],
        "silent while screening"
    );
    assert!(c.dialogue.wants_beep());
    c.at_ms(400);
    assert_eq!(c.send(Event::CallerSpeechStarted), vec![]);
    c.at_ms(1000);
    assert_eq!(c.send(Event::CallerSpeechEnded), vec![]);
    c.at_ms(1300);
    assert_eq!(c.send(Event::CallerTurn { text: "Hello?".into(), confidence: 0.9 }), vec![]);
    assert_eq!(c.dialogue.next_deadline(), Some(c.t0 + Duration::from_millis(1800)));
    c.at_ms(1800);
    let a = c.send(Event::Tick);
    assert_eq!(said_step(&a), Some("1"), "a short hello, then quiet: a person");
}

#[test]
fn voicemail_with_beep() {
    let mut c = outbound(Some("Hi {contactName}, this is {companyName}. Please call us back."));
    c.send(Event::Answered);
    c.at_ms(300);
    c.send(Event::CallerSpeechStarted);
    let a = c.wait_ms(3600);
    assert_eq!(a, vec![], "a long greeting: a machine, so wait for the beep silently");
    assert!(c.dialogue.wants_beep());
    c.at_ms(6500);
    c.send(Event::CallerSpeechEnded);
    c.at_ms(7000);
    // The greeting's transcript arrives; no effect now.
    assert_eq!(
        c.send(Event::CallerTurn { text: "Please leave a message after the tone.".into(), confidence: 0.9 }),
        vec![]
    );
    c.at_ms(7400);
    let a = c.send(Event::Beep);
    assert_eq!(said(&a), Some("Hi John, this is Acme. Please call us back."));
    assert!(matches!(a[0], Action::Say { interruptible: false, step: None, .. }));
    c.line_done();
    assert!(c.hung_up());
    let s = c.summary();
    assert_eq!(s.outcome, Outcome::Voicemail);
    assert_eq!(s.notes, "Reached voicemail (a long recorded greeting); left the message after the beep.");
}

#[test]
fn voicemail_without_beep_speaks_after_the_quiet() {
    let mut c = outbound(Some("Please call Acme back."));
    c.send(Event::Answered);
    c.at_ms(300);
    c.send(Event::CallerSpeechStarted);
    c.at_ms(1500);
    c.send(Event::CallerSpeechEnded);
    c.at_ms(1700);
    c.send(Event::CallerTurn { text: "Hi, you've reached Anna's voicemail.".into(), confidence: 0.9 });
    assert_eq!(c.dialogue.speaking(), None);
    // Quiet for 2.5 s after the greeting ended (at 1.5 s): at 4.0 s.
    c.at_ms(3900);
    assert_eq!(c.send(Event::Tick), vec![]);
    c.at_ms(4000);
    let a = c.send(Event::Tick);
    assert_eq!(said(&a), Some("Please call Acme back."));
    c.line_done();
    assert_eq!(
        c.summary().notes,
        "Reached voicemail (voicemail greeting words); left the message without hearing a beep."
    );
}

#[test]
fn voicemail_without_a_message_hangs_up() {
    let mut c = outbound(None);
    c.send(Event::Answered);
    c.at_ms(800);
    let a = c.send(Event::Beep);
    assert_eq!(a[0], Action::HangUp);
    let s = c.summary();
    assert_eq!(s.outcome, Outcome::Voicemail);
    assert_eq!(s.notes, "Reached voicemail (a beep); no message left because the template has none.");
}

#[test]
fn machine_found_after_the_greeting_started() {
    let mut c = outbound(Some("Please call Acme back."));
    c.send(Event::Answered);
    // A short recorded greeting passes for a person ...
    c.at_ms(200);
    c.send(Event::CallerSpeechStarted);
    c.at_ms(1400);
    c.send(Event::CallerSpeechEnded);
    c.at_ms(2200);
    let a = c.send(Event::Tick);
    assert_eq!(said_step(&a), Some("1"));
    // ... until its words are transcribed: stop talking, wait for the beep.
    c.at_ms(2400);
    let a = c.send(Event::CallerTurn { text: "Leave a message.".into(), confidence: 0.8 });
    assert_eq!(a, vec![Action::StopSpeaking]);
    c.at_ms(3000);
    let a = c.send(Event::Beep);
    assert_eq!(said(&a), Some("Please call Acme back."));
    // The machine hangs up during the message.
    c.send(Event::HungUp);
    assert_eq!(
        c.summary().notes,
        "Reached voicemail (voicemail greeting words); the line closed before the message was complete."
    );
}

#[test]
fn callee_hangs_up_while_screening() {
    let mut c = outbound(None);
    c.send(Event::Answered);
    c.at_ms(900);
    c.send(Event::HungUp);
    let s = c.summary();
    assert_eq!(s.outcome, Outcome::Unsuccessful);
    assert_eq!(s.notes, "Callee hung up before the greeting.");
}

#[test]
fn keypress_while_screening_is_a_human() {
    let mut c = outbound(None);
    c.send(Event::Answered);
    c.at_ms(700);
    let a = c.send(Event::Dtmf('1'));
    assert_eq!(said_step(&a), Some("1"), "greeted; the key itself answers nothing yet");
}

// ---- understanding: confirmations, lost turns, outcomes ----

const QUESTION: &str = "Do you have a few minutes to discuss how this could benefit your company?";
const CONFIRM: &str = "Sorry, was that a yes?";

/// A call at the question of the sales template (step 3), listening.
fn at_the_question() -> Call {
    let mut c = Call::inbound(&sales());
    c.send(Event::Answered);
    c.line_done();
    c.say("Yes, speaking.");
    c.line_done();
    assert_eq!(listens(&c.line_done()), Some(Expect::YesNo));
    c
}

/// Plays the rest of the sales template: the closing is answered "no thanks".
fn finish_call(c: &mut Call) -> Summary {
    for _ in 0..6 {
        if c.dialogue.is_finished() {
            break;
        }
        let Some(line) = c.dialogue.speaking() else {
            c.say("No thanks.");
            continue;
        };
        c.after_ms(1500);
        c.send(Event::LineDone(line));
    }
    c.summary()
}

fn confirmations(c: &Call) -> usize {
    c.lines_said().iter().filter(|l| l.as_str() == CONFIRM).count()
}

#[test]
fn an_unsure_yes_is_confirmed_and_the_reply_decides() {
    let mut c = at_the_question();
    let a = c.say("Well... I guess so.");
    assert_eq!(said(&a), Some(CONFIRM), "a hedge is not taken as a yes");
    assert_eq!(listens(&c.line_done()), Some(Expect::YesNo), "the confirmation is a yes/no question");
    let a = c.say("Yes.");
    assert_eq!(said_step(&a), Some("4"), "confirmed: the response to a yes");
    let s = finish_call(&mut c);
    assert_eq!(s.outcome, Outcome::Successful);
    assert_eq!(s.notes, "Caller agreed at step 3 (\"Well... I guess so.\"; \"Yes.\" when asked to confirm).");

    let mut c = at_the_question();
    c.say("Okay.");
    c.line_done();
    let a = c.say("No, not really.");
    assert_eq!(said_step(&a), Some("5"), "a no after all: the response is skipped");
    let s = finish_call(&mut c);
    assert_eq!(s.outcome, Outcome::Rejected);
    assert_eq!(s.notes, "Caller declined at step 3 (\"Okay.\"; \"No, not really.\" when asked to confirm).");
}

#[test]
fn what_asks_for_a_confirmation() {
    for unsure in [
        "Okay.",
        "Right.",
        "Sure?",
        "I think so.",
        "Yes, no.",
        "Yeah, I can not time.",
        "That's right, so...",
        "I do I think so",
        "I guess not.",
    ] {
        let mut c = at_the_question();
        let a = c.say(unsure);
        assert_eq!(said(&a), Some(CONFIRM), "{unsure:?}");
    }
    for sure in ["Yes, sure, go ahead.", "Not right now, no.", "Go for it.", "I'll pass."] {
        let mut c = at_the_question();
        let a = c.say(sure);
        assert_ne!(said(&a), Some(CONFIRM), "{sure:?}");
    }
    // The recogniser's own doubt: a clear "yes" heard with low confidence.
    let mut c = at_the_question();
    let a = c.send(Event::CallerTurn { text: "Yes.".into(), confidence: 0.4 });
    assert_eq!(said(&a), Some(CONFIRM));
    c.line_done();
    let a = c.send(Event::CallerTurn { text: "Yes.".into(), confidence: 0.45 });
    assert_eq!(said_step(&a), Some("4"), "a low-confidence yes settles the confirmation");
}

#[test]
fn an_unclear_reply_to_the_confirmation_moves_on_as_unclear() {
    for reply in ["Hmm, the door.", "Yes?", "Yes, no."] {
        let mut c = at_the_question();
        c.say("I guess.");
        c.line_done();
        let a = c.say(reply);
        assert_eq!(said_step(&a), Some("4"), "{reply:?}: on, without asking again");
        let s = finish_call(&mut c);
        assert_eq!(s.outcome, Outcome::Unsuccessful, "{reply:?}");
        assert_eq!(s.notes, "Script completed without a clear answer at step 3.");
        assert_eq!(confirmations(&c), 1);
    }
    // Silence after the confirmation: the same.
    let mut c = at_the_question();
    c.say("Mm-hmm.");
    c.line_done();
    let a = c.wait_ms(6000);
    assert_eq!(said_step(&a), Some("4"));
    assert_eq!(finish_call(&mut c).outcome, Outcome::Unsuccessful);
}

#[test]
fn a_confirmation_is_asked_once_per_step() {
    // Unclear, re-prompted, then unsure: confirmed (the first confirmation of this step).
    let mut c = at_the_question();
    let a = c.say("Purple elephant.");
    assert!(said(&a).is_some_and(|t| t.starts_with("Sorry, I didn't catch that.")));
    c.line_done();
    let a = c.say("Okay.");
    assert_eq!(said(&a), Some(CONFIRM));
    // "Sorry?" says the confirmation again: a repeat, not a second confirmation.
    c.line_done();
    let a = c.say("Sorry?");
    assert_eq!(said(&a), Some(CONFIRM));
    c.line_done();
    let a = c.say("Yep.");
    assert_eq!(said_step(&a), Some("4"));
    assert_eq!(finish_call(&mut c).outcome, Outcome::Successful);

    // A barge-in on the confirmation answers it.
    let mut c = at_the_question();
    c.say("Right.");
    c.after_ms(300);
    let a = c.send(Event::CallerSpeechStarted);
    assert_eq!(a[0], Action::StopSpeaking);
    let a = c.send(Event::CallerTurn { text: "Yes, yes.".into(), confidence: 0.9 });
    assert_eq!(said_step(&a), Some("4"));

    // The closing asks too, and gets its own confirmation.
    let mut c = at_the_question();
    c.say("Yes.");
    c.line_done();
    c.line_done();
    let a = c.say("Sure?");
    assert_eq!(said(&a), Some(CONFIRM));
    c.line_done();
    let a = c.say("Yeah.");
    assert_eq!(said(&a), Some("Thank you. Goodbye."));
    assert_eq!(confirmations(&c), 1);
}

#[test]
fn opting_out_or_a_callback_in_reply_to_the_confirmation() {
    let mut c = at_the_question();
    c.say("Okay.");
    c.line_done();
    let a = c.say("Actually, just take me off your list.");
    assert!(a.contains(&Action::SetDoNotCall));
    c.line_done();
    assert_eq!(c.summary().outcome, Outcome::OptedOut);

    let mut c = at_the_question();
    c.say("I guess.");
    c.line_done();
    let a = c.say("Call me back tomorrow at 3 pm.");
    assert_eq!(said(&a), Some("Of course. We'll call you back tomorrow at 3 pm. Thank you, goodbye."));
    c.line_done();
    assert_eq!(c.summary().outcome, Outcome::CallbackRequested);
}

#[test]
fn a_misheard_refusal_never_becomes_a_sale() {
    // "I don't think so" as whisper heard it: confirmed, and the caller's no decides.
    let mut c = at_the_question();
    assert_eq!(said(&c.say("I do I think so")), Some(CONFIRM));
    c.line_done();
    c.say("No, I don't.");
    assert_eq!(finish_call(&mut c).outcome, Outcome::Rejected);

    // Words about a door: no yes in them, so no answer.
    let mut c = at_the_question();
    let a = c.say("Hold on, there's someone at the door.");
    assert!(said(&a).is_some_and(|t| t.starts_with("Sorry, I didn't catch that.")));
    c.line_done();
    let a = c.say("I'll get the door.");
    assert_eq!(said_step(&a), Some("4"));
    let s = finish_call(&mut c);
    assert_eq!(s.outcome, Outcome::Unsuccessful);
}

#[test]
fn every_phrasing_reaches_its_outcome() {
    // Sure answers decide at once; unsure ones are confirmed ("yes" to a yes, "no" to a no).
    let yes = [
        "go for it",
        "of course",
        "why not",
        "yes, sure, go ahead",
        "well... I guess so",
        "yep, I have got time",
        "sure thing",
        "that works",
    ];
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
    for (answers, outcome, reply) in [(yes, Outcome::Successful, "Yes."), (no, Outcome::Rejected, "No.")] {
        for answer in answers {
            let mut c = at_the_question();
            if said(&c.say(answer)) == Some(CONFIRM) {
                c.line_done();
                c.say(reply);
            }
            assert_eq!(finish_call(&mut c).outcome, outcome, "{answer:?}");
        }
    }
}

#[test]
fn a_lost_answer_is_asked_again_once() {
    let mut c = at_the_question();
    let a = c.send(Event::CallerTurnLost);
    assert_eq!(said(&a), Some(format!("Sorry, I didn't catch that. {QUESTION}").as_str()));
    assert_eq!(said_step(&a), Some("3"));
    c.line_done();
    let a = c.say("Yes.");
    assert_eq!(said_step(&a), Some("4"));
    assert_eq!(finish_call(&mut c).outcome, Outcome::Successful);

    // The session's older signal, an empty transcript, means the same; a second loss is an
    // unclear answer (re-prompted once), a third moves on.
    let mut c = at_the_question();
    let lost = || Event::CallerTurn { text: String::new(), confidence: 0.0 };
    assert_eq!(said(&c.send(lost())), Some(format!("Sorry, I didn't catch that. {QUESTION}").as_str()));
    c.line_done();
    assert_eq!(said(&c.send(lost())), Some(format!("Sorry, I didn't catch that. {QUESTION}").as_str()));
    c.line_done();
    assert_eq!(said_step(&c.send(lost())), Some("4"));

    // A loss after the unclear answer's re-prompt is still asked again.
    let mut c = at_the_question();
    c.say("Purple elephant.");
    c.line_done();
    let a = c.send(Event::CallerTurnLost);
    assert_eq!(said(&a), Some(format!("Sorry, I didn't catch that. {QUESTION}").as_str()));
    c.line_done();
    let a = c.say("No.");
    assert_eq!(said_step(&a), Some("5"));

    // Lost replies to the confirmation and to "when should we call back?".
    let mut c = at_the_question();
    c.say("Okay.");
    c.line_done();
    assert_eq!(said(&c.send(Event::CallerTurnLost)), Some(CONFIRM));
    let mut c = at_the_question();
    c.say("I'm driving.");
    c.line_done();
    let a = c.send(Event::CallerTurnLost);
    assert_eq!(said(&a), Some("Sorry, I didn't catch that. When would be a good time to call you back?"));
}

#[test]
fn a_lost_turn_where_it_changes_nothing() {
    // A greeting's answer only moves the call on; an aside during a line is ignored.
    let mut c = Call::inbound(&sales());
    c.send(Event::Answered);
    c.line_done();
    let a = c.send(Event::CallerTurnLost);
    assert_eq!(said_step(&a), Some("2"));
    assert_eq!(c.send(Event::CallerTurnLost), vec![], "while a line plays");
}

#[test]
fn hanging_up_without_answering_is_not_a_rejection() {
    let mut c = at_the_question();
    c.say("Purple elephant.");
    c.line_done();
    c.send(Event::HungUp);
    let s = c.summary();
    assert_eq!(s.outcome, Outcome::Unsuccessful);
    assert_eq!(s.notes, "Caller hung up during step 3 without a clear answer to step 3.");

    // Hanging up while asked to confirm: no answer either.
    let mut c = at_the_question();
    c.say("I guess so.");
    c.send(Event::HungUp);
    assert_eq!(c.summary().outcome, Outcome::Unsuccessful);

    // An explicit no before the hang-up is a rejection.
    let mut c = at_the_question();
    c.say("No, I'm not interested.");
    c.send(Event::HungUp);
    let s = c.summary();
    assert_eq!(s.outcome, Outcome::Rejected);
    assert_eq!(s.notes, "Caller declined at step 3 (\"No, I'm not interested.\").");
}

#[test]
fn callbacks_said_the_way_callers_say_them() {
    let mut c = at_the_question();
    let a = c.say("Ring me back in an hour.");
    assert_eq!(said(&a), Some("Of course. We'll call you back in an hour. Thank you, goodbye."));
    c.line_done();
    assert_eq!(c.summary().callback, Some(Some(CallbackTime::After { minutes: 60 })));

    let mut c = at_the_question();
    let a = c.say("Call me tomorrow at 3 pm.");
    assert_eq!(said(&a), Some("Of course. We'll call you back tomorrow at 3 pm. Thank you, goodbye."));
    c.line_done();
    let when = CallbackTime::At { day: Day::Tomorrow, time: Some(TimeOfDay::Clock { hour: 15, minute: 0 }) };
    assert_eq!(c.summary().callback, Some(Some(when)));
}

#[test]
fn a_snapshot_fed_the_merged_turn_behaves_like_a_fresh_call() {
    // The call core snapshots the dialogue before a turn; when the caller turns out to have
    // only paused ("Yes," ... "sure, go ahead"), it feeds the merged turn to the snapshot.
    let mut live = at_the_question();
    let mut restored = Call { dialogue: live.dialogue.clone(), t0: live.t0, now: live.now, log: live.log.clone() };
    let early = live.say("No,");
    assert_eq!(said_step(&early), Some("5"), "the first part alone reads as a no");

    let mut fresh = at_the_question();
    let merged = "No, no, go ahead.";
    assert_eq!(restored.say(merged), fresh.say(merged));
    // And they go on alike, to the same outcome.
    for call in [&mut restored, &mut fresh] {
        assert_eq!(finish_call(call).outcome, Outcome::Successful);
    }
    assert_eq!(restored.log, fresh.log);
    assert_eq!(restored.summary(), fresh.summary());
}
