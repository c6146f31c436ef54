//! A template made ready for one call: `{variables}` filled, branch targets resolved to
//! step positions, and for each step whether it listens and for what kind of answer.

use thiserror::Error;

use super::answer::Expect;
use crate::domain::template::{Step, StepType, fill, placeholders};

#[derive(Debug, Error, PartialEq)]
pub enum ScriptError {
    #[error("the template has no steps")]
    NoSteps,
    #[error("no value for the template variable(s): {}", .0.join(", "))]
    MissingValues(Vec<String>),
    #[error("step '{step}' sends '{answer}' to step '{target}', which does not exist")]
    UnknownTarget { step: String, answer: &'static str, target: String },
}

/// Where a step goes by answer, as positions in the script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Branches {
    pub yes: Option<usize>,
    pub no: Option<usize>,
    pub opt_out: Option<usize>,
    pub callback: Option<usize>,
    pub unclear: Option<usize>,
    pub default: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScriptStep {
    pub id: String,
    pub kind: StepType,
    /// The content with its `{variables}` filled.
    pub text: String,
    pub next: Branches,
    /// Questions listen; so do greetings and closings that end with a question mark.
    pub listens: bool,
    /// What kind of answer the step asks for.
    pub expect: Expect,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    steps: Vec<ScriptStep>,
    voicemail_message: Option<String>,
}

impl Script {
    /// Fills and checks a template's steps. `value_of` gives a variable's value: usually
    /// [`values`] over the call's variables and the contact's fields.
    pub fn new(
        steps: &[Step],
        voicemail_message: Option<&str>,
        value_of: impl Fn(&str) -> Option<String>,
    ) -> Result<Script, ScriptError> {
        if steps.is_empty() {
            return Err(ScriptError::NoSteps);
        }
        let mut missing: Vec<String> = Vec::new();
        let texts = steps.iter().map(|s| s.content.as_str()).chain(voicemail_message);
        for name in texts.flat_map(placeholders) {
            if value_of(&name).is_none() && !missing.contains(&name) {
                missing.push(name);
            }
        }
        if !missing.is_empty() {
            return Err(ScriptError::MissingValues(missing));
        }
        let position =
            |step: &Step, answer: &'static str, target: &Option<String>| -> Result<Option<usize>, ScriptError> {
                let Some(target) = target else { return Ok(None) };
                steps.iter().position(|s| &s.id == target).map(Some).ok_or_else(|| ScriptError::UnknownTarget {
                    step: step.id.clone(),
                    answer,
                    target: target.clone(),
                })
            };
        let mut out = Vec::with_capacity(steps.len());
        for step in steps {
            let next = match &step.next {
                None => Branches::default(),
                Some(n) => Branches {
                    yes: position(step, "yes", &n.yes)?,
                    no: position(step, "no", &n.no)?,
                    opt_out: position(step, "optOut", &n.opt_out)?,
                    callback: position(step, "callback", &n.callback)?,
                    unclear: position(step, "unclear", &n.unclear)?,
                    default: position(step, "default", &n.default)?,
                },
            };
            let text = fill(&step.content, &value_of);
            let asks = text.trim_end().ends_with('?');
            let listens = match step.step_type {
                StepType::Question => true,
                StepType::Greeting | StepType::Closing => asks,
                StepType::Information | StepType::Response => false,
            };
            let expect = if step.step_type == StepType::Greeting {
                Expect::Open
            } else if is_yes_no_question(&text) {
                Expect::YesNo
            } else {
                Expect::Open
            };
            out.push(ScriptStep { id: step.id.clone(), kind: step.step_type, text, next, listens, expect });
        }
        let voicemail_message = voicemail_message.map(|m| fill(m, &value_of)).filter(|m| !m.trim().is_empty());
        Ok(Script { steps: out, voicemail_message })
    }

    pub fn steps(&self) -> &[ScriptStep] {
        &self.steps
    }

    pub fn voicemail_message(&self) -> Option<&str> {
        self.voicemail_message.as_deref()
    }
}

/// Whether the last question in a text asks for yes or no: it opens with an auxiliary verb
/// ("Do you...", "Would you...", "Is this...").
fn is_yes_no_question(text: &str) -> bool {
    let Some(end) = text.rfind('?') else { return false };
    let before = &text[..end];
    let start = before.rfind(['.', '!', '?', ':', ';']).map(|i| i + 1).unwrap_or(0);
    let question = before[start..].trim().to_lowercase();
    let first = question.split(|c: char| !c.is_alphanumeric() && c != '\'').find(|w| !w.is_empty()).unwrap_or("");
    matches!(
        first,
        "do" | "does"
            | "did"
            | "are"
            | "is"
            | "was"
            | "were"
            | "am"
            | "can"
            | "could"
            | "would"
            | "will"
            | "shall"
            | "should"
            | "have"
            | "has"
            | "had"
            | "may"
            | "might"
            | "must"
            | "don't"
            | "won't"
            | "isn't"
            | "aren't"
            | "wouldn't"
            | "shouldn't"
            | "can't"
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::template::StepNext;

    fn step(id: &str, kind: StepType, content: &str) -> Step {
        Step { id: id.into(), step_type: kind, content: content.into(), next: None }
    }

    /// A variable's value from the call's own variables, else from the contact's fields (as
    /// `session::setup` looks them up).
    fn values<'a>(
        call: &'a BTreeMap<String, String>,
        contact: Option<&'a BTreeMap<String, String>>,
    ) -> impl Fn(&str) -> Option<String> + 'a {
        move |name: &str| call.get(name).or_else(|| contact.and_then(|c| c.get(name))).cloned()
    }

    #[test]
    fn fills_variables_from_the_call_then_the_contact() {
        let call = BTreeMap::from([("companyName".to_string(), "Acme".to_string())]);
        let contact = BTreeMap::from([
            ("contactName".to_string(), "John".to_string()),
            ("companyName".to_string(), "Contact Corp".to_string()),
        ]);
        let steps = [step("1", StepType::Greeting, "Hello, this is {companyName}. Am I speaking with {contactName}?")];
        let s = Script::new(&steps, Some("Hi {contactName}, call {companyName} back."), values(&call, Some(&contact)))
            .unwrap();
        assert_eq!(s.steps()[0].text, "Hello, this is Acme. Am I speaking with John?");
        assert!(s.steps()[0].listens, "a greeting that asks listens");
        assert_eq!(s.voicemail_message(), Some("Hi John, call Acme back."));
        let err = Script::new(&steps, Some("{agent}"), values(&call, None)).unwrap_err();
        assert_eq!(err, ScriptError::MissingValues(vec!["contactName".into(), "agent".into()]));
        assert_eq!(err.to_string(), "no value for the template variable(s): contactName, agent");
    }

    #[test]
    fn resolves_branches_and_listening() {
        let mut q = step("q", StepType::Question, "Great. Do you have a few minutes?");
        q.next = Some(StepNext { yes: Some("pitch".into()), no: Some("bye".into()), ..StepNext::default() });
        let steps = [
            step("hi", StepType::Greeting, "Hello from Acme."),
            q,
            step("pitch", StepType::Response, "Here it is."),
            step("open", StepType::Question, "Which day works best for you?"),
            step("bye", StepType::Closing, "Thanks, bye."),
        ];
        let s = Script::new(&steps, None, |_| None).unwrap();
        let st = s.steps();
        assert!(!st[0].listens);
        assert_eq!(st[1].next, Branches { yes: Some(2), no: Some(4), ..Branches::default() });
        assert!(st[1].listens);
        assert_eq!(st[1].expect, Expect::YesNo);
        assert_eq!(st[3].expect, Expect::Open, "a wh-question is open");
        assert!(!st[2].listens && !st[4].listens);
        assert_eq!(s.voicemail_message(), None);

        let mut bad = step("q", StepType::Question, "Ok?");
        bad.next = Some(StepNext { default: Some("nope".into()), ..StepNext::default() });
        assert_eq!(
            Script::new(&[bad], None, |_| None).unwrap_err(),
            ScriptError::UnknownTarget { step: "q".into(), answer: "default", target: "nope".into() }
        );
        assert_eq!(Script::new(&[], None, |_| None).unwrap_err(), ScriptError::NoSteps);
    }

    #[test]
    fn yes_no_questions_by_their_first_word() {
        assert!(is_yes_no_question("Do you have a minute?"));
        assert!(is_yes_no_question("Thanks! Would you like a follow-up call?"));
        assert!(is_yes_no_question("Is this John?"));
        assert!(!is_yes_no_question("When is a good time?"));
        assert!(!is_yes_no_question("Thanks."));
    }
}
