//! Twilio's side of an inbound call, emulated: the caller dials one of our numbers, so
//! "Twilio" posts a signed `/twilio/voice` webhook, follows the `<Connect><Stream>` of the
//! TwiML we answer with, and opens the Media Stream with its `<Parameter>`s as
//! `customParameters`; later it may post signed `/twilio/status` callbacks. Tests and the
//! latency bench drive the gateway through exactly the doors a real Twilio account uses.

use std::collections::BTreeMap;

use super::peer::{self, PeerError, PeerHandle, StreamStart};
use crate::telephony::twilio::{signature, twiml};

/// Where the gateway listens and what Twilio believes its address is.
#[derive(Clone, Debug)]
pub struct TwilioSide {
    /// `http://host:port` the gateway actually listens on.
    pub listen_base: String,
    /// The gateway's `--public-url` (what signatures and TwiML URLs are made of).
    pub public_url: String,
    pub account_sid: String,
    pub auth_token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error("request to the gateway failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("/twilio/voice answered {0}")]
    Status(u16),
    #[error("the TwiML has no <Connect><Stream>: {0}")]
    NoStream(String),
    #[error(transparent)]
    Connect(#[from] PeerError),
}

/// The call a voice webhook describes (Twilio's `CallSid`, `From`, `To`, `CallStatus`,
/// `Direction`).
struct VoiceCall<'a> {
    call_sid: &'a str,
    from: &'a str,
    to: &'a str,
    status: &'a str,
    direction: &'a str,
}

/// A call whose media stream is open.
pub struct InboundCall {
    /// Our call id, from the stream's `callId` parameter.
    pub call_id: String,
    pub call_sid: String,
    pub peer: PeerHandle,
}

impl TwilioSide {
    /// Posts a webhook to `path_and_query` signed as Twilio signs it; returns the response.
    pub async fn post_signed(
        &self,
        client: &reqwest::Client,
        path_and_query: &str,
        params: &[(&str, &str)],
    ) -> Result<reqwest::Response, reqwest::Error> {
        let pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs.iter()).finish();
        let signed = signature::sign(&self.auth_token, &format!("{}{path_and_query}", self.public_url), &pairs);
        client
            .post(format!("{}{path_and_query}", self.listen_base))
            .header("x-twilio-signature", signed)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
    }

    /// A call from `from` to our number `to`, as Twilio delivers it: the voice webhook, then
    /// the stream its TwiML asks for. `call_sid` is Twilio's id for the call (`CA...`).
    pub async fn ring(
        &self,
        client: &reqwest::Client,
        from: &str,
        to: &str,
        call_sid: &str,
    ) -> Result<InboundCall, RingError> {
        let call = VoiceCall { call_sid, from, to, status: "ringing", direction: "inbound" };
        self.follow_voice_webhook(client, "/twilio/voice", call).await
    }

    /// The callee of a call we placed picks up: Twilio fetches the call's `Url` (our
    /// `/twilio/voice?callId=...`) and opens the stream its TwiML asks for.
    pub async fn answer(
        &self,
        client: &reqwest::Client,
        voice_path_and_query: &str,
        from: &str,
        to: &str,
        call_sid: &str,
    ) -> Result<InboundCall, RingError> {
        let call = VoiceCall { call_sid, from, to, status: "in-progress", direction: "outbound-api" };
        self.follow_voice_webhook(client, voice_path_and_query, call).await
    }

    /// Posts the voice webhook Twilio sends for `call` and opens the stream of its TwiML.
    async fn follow_voice_webhook(
        &self,
        client: &reqwest::Client,
        path_and_query: &str,
        call: VoiceCall<'_>,
    ) -> Result<InboundCall, RingError> {
        let call_sid = call.call_sid;
        let params = [
            ("AccountSid", self.account_sid.as_str()),
            ("CallSid", call_sid),
            ("From", call.from),
            ("To", call.to),
            ("CallStatus", call.status),
            ("Direction", call.direction),
            ("ApiVersion", "2010-04-01"),
        ];
        let response = self.post_signed(client, path_and_query, &params).await?;
        if !response.status().is_success() {
            return Err(RingError::Status(response.status().as_u16()));
        }
        let xml = response.text().await?;
        let Some(stream) = twiml::parse_connect_stream(&xml) else { return Err(RingError::NoStream(xml)) };
        let custom_parameters: BTreeMap<String, String> = stream.parameters.into_iter().collect();
        let call_id = custom_parameters.get("callId").cloned().unwrap_or_default();
        let start = StreamStart {
            url: self.local_stream_url(&stream.url),
            account_sid: self.account_sid.clone(),
            call_sid: call_sid.to_owned(),
            stream_sid: format!("MZ{}", call_sid.trim_start_matches("CA")),
            custom_parameters,
        };
        let peer = peer::connect(start).await?;
        Ok(InboundCall { call_id, call_sid: call_sid.to_owned(), peer })
    }

    /// The TwiML's stream URL points at the public address; here it is reached locally.
    fn local_stream_url(&self, url: &str) -> String {
        let ws = |base: &str| base.replacen("https://", "wss://", 1).replacen("http://", "ws://", 1);
        let public = ws(&self.public_url);
        match url.strip_prefix(&public) {
            Some(rest) => format!("{}{rest}", ws(&self.listen_base)),
            None => url.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_stream_url_is_dialled_at_the_listening_address() {
        let side = TwilioSide {
            listen_base: "http://127.0.0.1:4000".into(),
            public_url: "https://gw.example.com".into(),
            account_sid: "AC1".into(),
            auth_token: "t".into(),
        };
        assert_eq!(side.local_stream_url("wss://gw.example.com/twilio/stream"), "ws://127.0.0.1:4000/twilio/stream");
        assert_eq!(side.local_stream_url("wss://elsewhere/twilio/stream"), "wss://elsewhere/twilio/stream");
    }
}
