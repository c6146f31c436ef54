//! The dialogue: what the bot says and does during a call, as pure state machines fed with
//! events and an `Instant` (no sockets, no clock of its own, no async). The call session owns
//! the I/O and turns transport and speech events into [`Event`]s; it performs the returned
//! [`Action`]s.
//!
//! - `script`: a template for one call: `{variables}` filled from the call and the contact,
//!   `next` branches resolved, which steps listen and for what.
//! - `engine`: the step engine ([`Dialogue`]): steps in order or by branch, listening,
//!   re-prompts, repeats, barge-in, opt-out, callbacks, voicemail, outcome and notes.
//! - `answer`: a caller's turn or key -> yes / no / opt-out / callback / repeat / unclear,
//!   with a doubt when a yes or no may be wrong (hedged, a bare "okay", mixed).
//!   Keys: 1 = yes, 2 = no, 3 = call back, 9 = opt-out, 0 = repeat.
//! - `when`: "tomorrow at 3", "in an hour" -> a [`CallbackTime`], resolvable in the callee's zone.
//! - `voicemail`: human or answering machine from the first seconds (speech pattern, words, beep).
//! - `beep`: a Goertzel detector for the answering machine's beep over PCM frames.
//! - `text`: transcript normalisation and the small phrase-pattern matcher the rules use.
//!
//! An AI-voice disclosure or a recording notice needs nothing special: it is an
//! `information` step (usually right after the greeting), said like any other.

pub mod answer;
pub mod beep;
pub mod engine;
pub mod script;
pub mod text;
pub mod voicemail;
pub mod when;

#[cfg(test)]
mod scenarios;

pub use answer::{Answer, Doubt, Expect, Reading, classify, classify_dtmf, read};
pub use beep::{Beep, BeepConfig, BeepDetector};
pub use engine::{Action, Dialogue, DialogueConfig, Event, LineId, Phrases, Summary};
pub use script::{Script, ScriptError, ScriptStep};
pub use voicemail::{MachineConfig, MachineDetector, Verdict};
pub use when::CallbackTime;
