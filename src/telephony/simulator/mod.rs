//! The simulator carrier's parts: Twilio's end of a Media Stream, emulated, so calls run end
//! to end on one machine with no carrier account.
//!
//! - `playback`: Twilio's playback queue (`media`, `mark`, `clear` semantics), pure.
//! - `peer`: a WebSocket client speaking Twilio's side of the stream protocol.
//! - `persona`: who answers each simulator number and what they reply to what the bot said,
//!   pure.
//! - `ear`: when a line of the bot's has ended (its `mark` came back), pure.
//! - `callee`: the personas behind the simulator's numbers, talking through a `peer`.
//! - `twilio_side`: Twilio's webhooks and stream for an inbound call to one of our numbers.

pub mod callee;
pub mod ear;
pub mod peer;
pub mod persona;
pub mod playback;
pub mod twilio_side;
