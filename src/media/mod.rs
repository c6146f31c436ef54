//! Media stages of a call: codecs, resampling, VAD, endpointing, pacing and recording.

pub mod endpointer;
