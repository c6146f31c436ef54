//! The media path: what happens to a call's audio between the transport and the speech
//! pipeline, one 20 ms frame at a time.
//!
//! Inbound, a transport hands over G.711 (or, later, Opus) frames that are decoded to PCM16,
//! resampled and fed to VAD, whose probabilities the endpointer turns into caller turns for
//! STT; outbound, TTS audio is queued in the pacer, which releases one frame per tick to be
//! encoded and sent. Both directions are written to the recorder.
//!
//! Every stage here is pure and sized up front: no clock of its own (time is an `Instant`
//! argument), no I/O but the `Write + Seek` the recorder is given, and no allocation per frame,
//! so one core can carry hundreds of calls and each stage is tested without sockets or sleeps.
//!
//! - `g711`: µ-law and A-law encode/decode, bit-exact with ITU-T G.191.
//! - `decode`: whole WAV/MP3 files to mono f32 (symphonia) and one-shot clip resampling.
//! - `pcm`: i16 <-> f32 and little-endian byte conversions.
//! - `opus`: mono Opus encode/decode (libopus via audiopus), packet-loss concealment and FEC.
//! - `resample`: 20 ms frames between 8, 16, 22.05, 24 and 48 kHz (rubato FFT, 10 ms delay).
//! - `endpointer`: VAD probabilities -> `SpeechStarted`, `SpeechEnded { audio, silence_ms }`, `BargeIn`.
//! - `pacer`: releases queued frames on a drift-free 20 ms schedule; `clear()` for barge-in.
//! - `recorder`: stereo WAV (caller left, bot right) written incrementally, crash-tolerant.

pub mod decode;
pub mod endpointer;
pub mod g711;
pub mod jitter;
pub mod opus;
pub mod pacer;
pub mod pcm;
pub mod recorder;
pub mod resample;
