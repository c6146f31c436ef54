//! Any text a client sends on `/twilio/stream` goes through `Inbound::parse` (before `start`
//! and on every media frame): it must answer, never panic, whatever the bytes.
#![no_main]

use callcenter::telephony::twilio::stream::Inbound;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Inbound::parse(text);
    }
});
