//! An SDP offer or answer as a SIP peer may send it (anyone who can reach the SIP port): the
//! answer we would make, and the reading of an answer to our offer. Neither may panic, and an
//! answer we make must read back.
#![no_main]

use callcenter::telephony::sip::sdp::{Codec, LocalMedia, answer, read_answer};
use libfuzzer_sys::fuzz_target;

const ALL: &[Codec] = &[Codec::Pcmu, Codec::Pcma, Codec::Opus];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let local = LocalMedia { address: "192.0.2.10".parse().unwrap(), port: 20_000, session_id: 1, version: 1 };
    if let Ok((_, sdp)) = answer(text, &local, ALL) {
        assert!(read_answer(&sdp, ALL).is_ok(), "our own answer reads back: {sdp}");
    }
    let _ = read_answer(text, ALL);
});
