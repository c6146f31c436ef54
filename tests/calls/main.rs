//! Calls end to end on the simulator carrier: a real server, `POST /v1/calls` to a persona's
//! number, the virtual callee dialling our own `/twilio/stream` over a real WebSocket and
//! talking with the real TTS voice, the gateway hearing it with real Silero VAD and whisper,
//! and the call ending with its outcome, transcript, recording and webhooks.

#[path = "../common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "../webhooks/receiver.rs"]
#[allow(dead_code)]
mod receiver;

/// What `receiver.rs` waits with.
mod support {
    pub use crate::common::eventually;
}

mod campaigns;
mod cancel;
mod leak;
mod personas;
mod prewarm;
mod records;
mod recovery;
mod stream_protocol;
mod twilio_bridge;

use std::time::Duration;

use callcenter::config::TwilioConfig;
use callcenter::media::decode::{DecodedAudio, decode_bytes};
use callcenter::media::g711;
use callcenter::telephony::simulator::callee::to_mulaw;
use callcenter::telephony::simulator::twilio_side::TwilioSide;
use callcenter::telephony::twilio::stream::CHUNK_SAMPLES;
use common::{Backend, TestApp, start_app};
use serde_json::{Value, json};

pub use common::models_dir;

pub async fn app() -> TestApp {
    app_on(Backend::Sqlite).await
}

/// `app()` on the given database (the session and store paths must hold on both).
pub async fn app_on(backend: Backend) -> TestApp {
    start_app(backend, |config| {
        config.allow_insecure_webhooks = true;
        // The tests poll call status; the per-key limit is tested in the API suite.
        config.rate_limit_per_minute = 1_000_000;
        config.telephony.models_dir = models_dir();
        config.telephony.dispatch_calls = true;
    })
    .await
}

/// The auth token of the Twilio account `twilio_app` is configured with.
pub const TWILIO_TOKEN: &str = "test-auth-token";
/// The address Twilio believes the gateway has (signatures and TwiML URLs use it).
pub const PUBLIC_URL: &str = "https://gw.example.com";

/// A server with a Twilio account configured, for inbound calls rung through `TwilioSide`.
pub async fn twilio_app() -> TestApp {
    twilio_app_with(|_| {}).await
}

/// The Twilio account `twilio_app` is configured with, as a local fake of Twilio's REST API
/// knows it: the numbers it owns are the ones these tests ring.
fn twilio_account() -> common::fake_twilio::FakeAccount {
    common::fake_twilio::FakeAccount {
        sid: "AC0000",
        token: TWILIO_TOKEN,
        numbers: vec!["+14155550199".into(), "+14155550198".into()],
        caller_ids: vec![],
    }
}

/// `twilio_app()` with more configuration on top.
pub async fn twilio_app_with(configure: impl FnOnce(&mut callcenter::config::Config)) -> TestApp {
    // Registering a number asks Twilio's IncomingPhoneNumbers; these tests never place a call.
    let (api_base, _) = common::fake_twilio::fake_twilio_with(vec![twilio_account()]).await;
    start_app(Backend::Sqlite, |config| {
        config.telephony.models_dir = models_dir();
        config.telephony.public_url = Some(PUBLIC_URL.into());
        // The tests poll call status; the per-key limit is tested in the API suite.
        config.rate_limit_per_minute = 1_000_000;
        config.telephony.twilio = Some(TwilioConfig {
            account_sid: "AC0000".into(),
            auth_token: TWILIO_TOKEN.into(),
            caller_id: Some("+15005550006".into()),
            api_base: api_base.clone(),
        });
        config.telephony.twilio_api_base = api_base;
        configure(config);
    })
    .await
}

/// Twilio's side of calls to `app` (a `twilio_app`).
pub fn twilio_side(app: &TestApp) -> TwilioSide {
    TwilioSide {
        listen_base: app.base.clone(),
        public_url: PUBLIC_URL.into(),
        account_sid: "AC0000".into(),
        auth_token: TWILIO_TOKEN.into(),
    }
}

/// What a synthetic caller says, as the µ-law it sends: the real TTS voice, with the clip's
/// leading and trailing silence cut so that its first and last 20 ms frames are voiced
/// (louder than -40 dBFS): the first frame sent is the start of speech, and the peer's
/// `DoneSpeaking` its end.
pub async fn caller_speech(app: &TestApp, text: &str) -> Vec<u8> {
    let engine = app.state.calls.speech().await.expect("speech models load");
    let synthesis = engine.tts.synthesize(None, text).await.expect("the caller's line synthesizes");
    let mulaw = to_mulaw(&synthesis.samples, synthesis.sample_rate);
    let voiced: Vec<bool> = mulaw.chunks(CHUNK_SAMPLES).map(is_voiced).collect();
    let first = voiced.iter().position(|&v| v).expect("the caller's line has voiced audio");
    let last = voiced.iter().rposition(|&v| v).expect("checked above");
    mulaw[first * CHUNK_SAMPLES..((last + 1) * CHUNK_SAMPLES).min(mulaw.len())].to_vec()
}

/// RMS of a 20 ms frame that counts as voiced: -40 dBFS.
const VOICED_RMS: f64 = 32768.0 * 0.01;

/// Whether a µ-law frame is louder than -40 dBFS.
pub fn is_voiced(frame: &[u8]) -> bool {
    let mut pcm = vec![0i16; frame.len()];
    g711::decode_ulaw(frame, &mut pcm);
    let energy: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (energy / pcm.len().max(1) as f64).sqrt() >= VOICED_RMS
}

impl TestApp {
    /// Creates a template of `steps` and points our Twilio number `phone` at it.
    pub async fn number_running(&self, phone: &str, name: &str, steps: Value) {
        let (status, template) = self.post("/v1/templates", json!({"name": name, "steps": steps})).await;
        assert_eq!(status, 201, "{template}");
        let body = json!({"phone": phone, "templateId": template["id"], "carrier": "twilio"});
        let (status, number) = self.post("/v1/phone-numbers", body).await;
        assert_eq!(status, 201, "{number}");
    }

    pub async fn transcript(&self, id: &str) -> Value {
        let (status, body) = self.get_json(&format!("/v1/calls/{id}/transcript")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The call's recording, which must be a WAV.
    pub async fn recording(&self, id: &str) -> DecodedAudio {
        let response = self
            .client
            .get(format!("{}/v1/calls/{id}/recording", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET recording of {id}");
        assert_eq!(response.headers()["content-type"], "audio/wav");
        let bytes = response.bytes().await.unwrap().to_vec();
        decode_bytes(bytes, Some("wav")).expect("a playable WAV")
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response =
            self.client.get(format!("{}{path}", self.base)).bearer_auth(&self.key).send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The spec's sales template, with a voicemail message.
    pub async fn sales_template(&self) -> String {
        let (status, body) = self
            .post(
                "/v1/templates",
                json!({
                    "name": "Sales Outreach",
                    "voicemailMessage": "Hi {contactName}, this is Acme calling about {productName}. Please call us back.",
                    "steps": [
                        {"type": "greeting", "content": "Hello, this is Acme. Am I speaking with {contactName}?"},
                        {"type": "question", "content": "Would you like to hear about {productName}?"},
                        {"type": "response", "content": "Great, a colleague will email you the details."},
                        {"type": "closing", "content": "Thank you for your time. Goodbye."}
                    ]
                }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    pub async fn place(&self, phone: &str, template: &str) -> String {
        let (status, body) = self
            .post(
                "/v1/calls",
                json!({"phone": phone, "templateId": template,
                       "variables": {"contactName": "John", "productName": "Premium Widget"}}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Waits until the call is completed or failed; returns it.
    pub async fn finished_call(&self, id: &str, timeout: Duration) -> Value {
        // Each check is a request: poll at a human pace, not every 20 ms.
        let call =
            common::eventually_every(Duration::from_millis(250), timeout, &format!("call {id} to end"), || async {
                let (_, call) = self.get_json(&format!("/v1/calls/{id}")).await;
                matches!(call["status"].as_str(), Some("completed" | "failed" | "cancelled")).then_some(call)
            })
            .await;
        if call["status"] == "completed" && self.state.calls.active() == 0 {
            self.speech_idle().await;
        }
        call
    }

    /// Waits until no clip is being transcribed. A call's last caller turn may still be on the
    /// STT pool after the call ended, and a test process that exits while whisper.cpp computes
    /// crashes (SIGSEGV in ggml, its globals destroyed under the worker thread), failing a
    /// run whose tests all passed.
    pub async fn speech_idle(&self) {
        let engine = self.state.calls.speech().await.expect("speech models load");
        common::eventually_every(Duration::from_millis(50), Duration::from_secs(30), "the STT pool to be idle", || {
            let idle = engine.stt.in_pool() == 0;
            async move { idle.then_some(()) }
        })
        .await;
    }
}
