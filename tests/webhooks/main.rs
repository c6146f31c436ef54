//! The webhook system end to end: a real receiver that verifies both signatures, real
//! servers (in-process on an injectable clock, and the real binary as child processes),
//! real SQLite files and real PostgreSQL databases.

#[path = "../common/mod.rs"]
mod common;
mod support;

mod delivery;
mod management;
mod processes;
mod receiver;
mod retries;
mod ssrf;
