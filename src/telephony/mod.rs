//! Telephony transports and carriers. Twilio's Media Streams is the first transport; SIP
//! follows behind the same seams.
//!
//! - `carrier`: carrier status reports in one vocabulary, and what they mean for a call.
//! - `twilio`: the Media Streams codec, request signatures, the REST client.
//! - `simulator`: Twilio's side of a stream, emulated, for the simulator carrier and tests.

pub mod carrier;
pub mod simulator;
pub mod sip;
pub mod twilio;
