//! Webhooks: event types and `emit` (the outbox's one door), signing, the SSRF guard,
//! the retry schedule, and the relay that delivers.

pub mod events;
pub mod relay;
pub mod retry;
pub mod signing;
pub mod ssrf;

pub use events::{EventType, emit};
