//! Uploaded audio files: any bytes through `decode_bytes`, with and without a format hint.
//!
//! `decode_bytes` contains panics raised inside symphonia (they become `DecodeError::Malformed`,
//! see `media::decode`), so this target tests that contract: a panic that escapes it aborts as
//! a crash, while a contained one only has its location printed, once per site, so a run still
//! lists the parser bugs it met. (libfuzzer-sys' own hook would abort on contained ones too.)
#![no_main]

use std::collections::BTreeSet;
use std::sync::{Mutex, Once};

use callcenter::media::decode::decode_bytes;
use libfuzzer_sys::fuzz_target;

fn report_contained_panics_once_per_site() {
    static INSTALL: Once = Once::new();
    static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    INSTALL.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let site = info.location().map_or_else(|| "unknown".to_owned(), |l| format!("{}:{}", l.file(), l.line()));
            if SEEN.lock().map(|mut seen| seen.insert(site)).unwrap_or(true) {
                eprintln!("contained panic (decode_bytes returns Malformed): {info}");
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    report_contained_panics_once_per_site();
    let hint = match data.first().map(|b| b % 3) {
        Some(0) => Some("wav"),
        Some(1) => Some("mp3"),
        _ => None,
    };
    if let Ok(audio) = decode_bytes(data.to_vec(), hint) {
        assert!(audio.sample_rate > 0 && audio.channels > 0 && !audio.samples.is_empty());
    }
});
