//! The API integration suite: every test runs against a real server, once on
//! SQLite and once on PostgreSQL (see `both_backends!`).

#[path = "../common/mod.rs"]
mod common;
mod helpers;

mod analytics;
mod calls;
mod campaigns;
mod carriers;
mod contact_lists;
mod contacts;
mod phone_numbers;
mod platform;
mod templates;
