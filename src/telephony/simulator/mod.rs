//! The simulator carrier's parts: Twilio's end of a Media Stream, emulated, so calls run end
//! to end on one machine with no carrier account.
//!
//! - `playback`: Twilio's playback queue (`media`, `mark`, `clear` semantics), pure.
//! - `peer`: a WebSocket client speaking Twilio's side of the stream protocol.
//! - `persona`: who answers each simulator number and what they reply to what the bot said,
//!   pure (the table of numbers is in `callee`'s docs and the README).
//! - `ear`: when a line of the bot's has ended (its `mark` came back), pure.
//! - `hearing`: what a line said, by the node's STT, transcribed once per distinct audio.
//! - `callee`: the personas behind the simulator's numbers, listening and talking through a
//!   `peer`.
//! - `twilio_side`: Twilio's webhooks and stream for an inbound call to one of our numbers.

pub mod callee;
pub mod ear;
pub mod hearing;
pub mod peer;
pub mod persona;
pub mod playback;
pub mod twilio_side;
