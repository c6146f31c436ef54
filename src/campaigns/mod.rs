//! Campaign dialing: every gateway node runs a [`dialer`] that starts campaigns whose schedule
//! has come, calls their audiences within calling hours, the concurrency limit and the retry
//! rules, and completes them. What to do is decided by the pure [`plan`]; the rows it reads
//! and writes are in `store::campaign_dialing`.

pub mod dialer;
pub mod plan;

pub use dialer::Dialer;
