//! Datagrams on a call's RTP port (anyone can send them): sorted by payload type, audio
//! through the jitter buffer, telephone events through the RFC 4733 receiver. The input is
//! split into datagrams at each 0xFE byte so one run plays a stream. Nothing may panic.
#![no_main]

use std::time::{Duration, Instant};

use callcenter::media::jitter::{JitterBuffer, JitterConfig};
use callcenter::telephony::sip::dtmf::DtmfReceiver;
use callcenter::telephony::sip::rtp::{Incoming, PayloadTypes, classify};
use libfuzzer_sys::fuzz_target;

const TYPES: PayloadTypes = PayloadTypes { audio: 0, events: Some(101), comfort_noise: Some(13) };

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut buffer = JitterBuffer::new(JitterConfig::default());
    let mut dtmf = DtmfReceiver::default();
    for (i, datagram) in data.split(|&b| b == 0xFE).enumerate() {
        match classify(datagram, TYPES) {
            Ok(Incoming::Audio(packet)) => buffer.push(packet, start + Duration::from_millis(20 * i as u64)),
            Ok(Incoming::Event { timestamp, payload, .. }) => {
                let _ = dtmf.push(timestamp, &payload);
            }
            _ => {}
        }
        let _ = buffer.pop();
        assert!(buffer.len() <= JitterConfig::default().capacity);
    }
    let _ = dtmf.flush();
});
