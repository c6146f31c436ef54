//! Webhooks: signing, the SSRF guard and the retry schedule (pure parts, tested here);
//! endpoints, the transactional outbox and the delivery relay build on them.

pub mod retry;
pub mod signing;
pub mod ssrf;
