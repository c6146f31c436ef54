//! Opus packets from the network: any bytes, split into packets by a one-byte length prefix so
//! one decoder meets a sequence of them (state left by one packet is used by the next), each
//! decoded, used for FEC and followed by concealment of a fuzzer-chosen length.
#![no_main]

use callcenter::media::opus::{OpusDecoder, frame_len_20ms};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else { return };
    let rate = [8000, 16000, 48000][usize::from(selector % 3)];
    let Ok(mut decoder) = OpusDecoder::new(rate) else { return };
    let mut out = vec![0i16; decoder.max_frame_len()];
    while let Some((&len, tail)) = rest.split_first() {
        let (packet, next) = tail.split_at(usize::from(len).min(tail.len()));
        let _ = decoder.decode_into(packet, &mut out);
        let _ = decoder.decode_fec_into(packet, &mut out[..frame_len_20ms(rate)]);
        // Any length up to the buffer, legal or not.
        let conceal_len = (usize::from(len) * 23) % (out.len() + 1);
        let _ = decoder.conceal_into(&mut out[..conceal_len]);
        rest = next;
    }
});
