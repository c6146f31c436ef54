//! Telephony edges against real sockets: the Twilio REST client against a local server that
//! speaks Twilio's documented Calls API format (the one mock allowed: Twilio is unreachable),
//! and a gateway placing, tracking and cancelling calls through it.

#[path = "../common/mod.rs"]
#[allow(dead_code)]
mod common;

mod tenants;
mod twilio_carrier;
mod twilio_rest;
