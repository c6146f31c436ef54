//! # callcenter: an AI call center gateway
//!
//! One crate serves the REST API (`api`), persists to SQLite or PostgreSQL
//! (`store`), and, in later stages, bridges phone audio through the speech
//! pipeline and delivers signed webhooks.
//!
//! - `config`: layered configuration (flags, env, file), validated at start.
//! - `app`: `AppState`, the router, start-up and graceful shutdown.
//! - `serve`: the HTTP accept loop (connection cap, header-read timeout).
//! - `api`: `/v1` handlers per resource, auth, rate limit, idempotency, errors, OpenAPI.
//! - `store`: sqlx persistence, one module per aggregate; schema in `migrations/`.
//! - `domain`: parsed newtypes (ids, E.164 phones, timestamps, schedules, statuses).
//! - `media`: per-call audio stages (codecs, resampling, endpointer, pacer, recorder).
//! - `speech`: the models (Silero VAD, whisper STT, Piper TTS), loaded once and pooled.
//! - `dialogue`: the per-call step engine, answer classifier, voicemail and beep detection (pure).
//! - `campaigns`: the dialer that calls campaign audiences on schedule (pure plan + task).
//! - `session`: one task per call (media, dialogue, recorder), the dispatcher, inbound calls.
//! - `process`: the process's own resident memory (for `/metrics` and the benches).
//! - `telephony`: transports and carriers: Twilio (stream codec, webhooks, REST), the simulator.

pub mod api;
pub mod app;
pub mod campaigns;
pub mod clock;
pub mod config;
pub mod dialogue;
pub mod domain;
pub mod media;
pub mod process;
pub mod secrets;
pub mod serve;
pub mod session;
pub mod speech;
pub mod store;
pub mod telephony;
pub mod webhooks;
