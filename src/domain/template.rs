//! Call templates: ordered steps whose text may hold `{variable}` placeholders.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StepType {
    Greeting,
    Information,
    Question,
    Response,
    Closing,
}

/// One line of the script. During a call the steps run in order; `question` steps (and
/// `greeting` or `closing` steps that end with "?") then listen for an answer, which the
/// caller may speak or key in:
///
/// | digit | answer |
/// |---|---|
/// | 1 | yes |
/// | 2 | no |
/// | 3 | call me back |
/// | 9 | do not call me again (opt-out) |
/// | 0 | repeat the question |
///
/// An AI-voice disclosure or a recording notice is an `information` step like any other.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Step {
    /// Assigned by the server ("1", "2", ...) unless given.
    #[schema(example = "1")]
    pub id: String,
    #[serde(rename = "type")]
    pub step_type: StepType,
    #[schema(example = "Hello, this is {companyName}. Am I speaking with {contactName}?")]
    pub content: String,
    /// Where the call goes after this step, by the caller's answer; without it the next
    /// step in order follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<StepNext>,
}

/// The step ids to continue at after a step, by the caller's answer (spoken, or keyed:
/// 1 = yes, 2 = no, 3 = call back, 9 = opt-out, 0 = repeat). Each is optional; an answer
/// without a target goes to `default`, and without `default` to the next step in order
/// (after a "no", `response` steps right after the step are skipped: they answer a "yes").
///
/// `optOut` and `callback` end the call: their step is said instead of the built-in
/// goodbye, then the call hangs up (an opt-out also marks the contact do-not-call).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"yes": "4", "no": "6", "default": "5"}))]
pub struct StepNext {
    /// The caller agreed ("yes", "sure", key 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yes: Option<String>,
    /// The caller declined ("no", "not interested", key 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no: Option<String>,
    /// The caller asked not to be called again ("stop calling me", key 9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_out: Option<String>,
    /// The caller asked to be called back ("call me tomorrow at 3", key 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<String>,
    /// The answer stayed unclear, or the caller stayed silent, after one re-prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unclear: Option<String>,
    /// Any answer without its own target; on steps that do not listen, simply the next step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

impl StepNext {
    /// The targets with their wire names, for validation and error messages.
    pub fn targets(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("yes", &self.yes),
            ("no", &self.no),
            ("optOut", &self.opt_out),
            ("callback", &self.callback),
            ("unclear", &self.unclear),
            ("default", &self.default),
        ]
        .into_iter()
        .filter_map(|(name, target)| target.as_deref().map(|t| (name, t)))
    }

    pub fn is_empty(&self) -> bool {
        self.targets().next().is_none()
    }
}

/// The `{name}` placeholders of a text, in order of first appearance.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = after[..close].trim();
                if is_variable_name(name) && !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
                rest = &after[close + 1..];
            }
            None => break,
        }
    }
    names
}

pub fn is_variable_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Replaces every `{name}` whose value is known; unknown placeholders stay as written.
pub fn fill(text: &str, value_of: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = after[..close].trim();
                match value_of(name) {
                    Some(v) => out.push_str(&v),
                    None => out.push_str(&rest[open..open + close + 2]),
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_placeholders() {
        assert_eq!(
            placeholders("Hello, this is {companyName}. Am I speaking with {contactName}? {companyName} {bad name} {"),
            vec!["companyName", "contactName"]
        );
    }

    #[test]
    fn fills_known_values_only() {
        let out = fill("Hi {a}, {b}!", |n| (n == "a").then(|| "Ann".to_owned()));
        assert_eq!(out, "Hi Ann, {b}!");
    }
}
