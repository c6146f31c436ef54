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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Step {
    /// Assigned by the server ("1", "2", ...) unless given.
    #[schema(example = "1")]
    pub id: String,
    #[serde(rename = "type")]
    pub step_type: StepType,
    #[schema(example = "Hello, this is {companyName}. Am I speaking with {contactName}?")]
    pub content: String,
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
