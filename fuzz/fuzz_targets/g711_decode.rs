//! G.711 payloads from the network into a buffer of a fuzzer-chosen length, both laws; the
//! decoded length must be the shorter of the two.
#![no_main]

use callcenter::media::g711::Law;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&out_len, payload)) = data.split_first() else { return };
    let mut out = vec![0i16; usize::from(out_len) * 4];
    for law in [Law::Ulaw, Law::Alaw] {
        let n = law.decode(payload, &mut out);
        assert_eq!(n, payload.len().min(out.len()));
    }
});
