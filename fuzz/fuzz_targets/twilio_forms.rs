//! The form bodies of `/twilio/voice` and `/twilio/status` as the handlers read them: decoded
//! pairs, the signature check over them, the status and TwiML parsers. Anyone can post these
//! bodies; none of it may panic.
#![no_main]

use callcenter::telephony::carrier::CarrierStatus;
use callcenter::telephony::twilio::{signature, twiml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let params: Vec<(String, String)> = form_urlencoded::parse(data).into_owned().collect();
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let duration = get("CallDuration").and_then(|d| d.parse().ok());
    if let Some(status) = get("CallStatus") {
        let _ = CarrierStatus::from_twilio(status, duration, get("AnsweredBy"));
    }
    let signed = get("Signature").unwrap_or_default();
    let _ = signature::verify("fuzz-token", "https://gw.example.com/twilio/voice", &params, signed);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = twiml::parse_connect_stream(text);
    }
});
