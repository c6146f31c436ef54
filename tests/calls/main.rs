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

mod cancel;
mod personas;
mod prewarm;
mod records;
mod recovery;
mod twilio_bridge;

use std::path::PathBuf;
use std::time::Duration;

use common::{Backend, TestApp, start_app};
use serde_json::{Value, json};

pub fn models_dir() -> PathBuf {
    std::env::var_os("CALLCENTER_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/models")))
}

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

impl TestApp {
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
        common::eventually_every(Duration::from_millis(250), timeout, &format!("call {id} to end"), || async {
            let (_, call) = self.get_json(&format!("/v1/calls/{id}")).await;
            matches!(call["status"].as_str(), Some("completed" | "failed" | "cancelled")).then_some(call)
        })
        .await
    }
}
