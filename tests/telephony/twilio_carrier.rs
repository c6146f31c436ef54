//! A gateway with Twilio configured places its calls on a local fake of Twilio's Calls API;
//! "Twilio" then drives them as it would: signed status callbacks, the answered call's
//! `/twilio/voice` and Media Stream, and the hang-up a cancel sends back to the Calls API.

use std::time::Duration;

use callcenter::config::TwilioConfig;
use callcenter::telephony::simulator::peer::{PeerCommand, PeerEvent};
use callcenter::telephony::simulator::twilio_side::TwilioSide;
use serde_json::{Value, json};

use crate::common::{self, Backend, TestApp, start_app};
use crate::twilio_rest::{SID, Seen, TOKEN, fake_twilio};

const PUBLIC: &str = "https://gw.example.com";

struct Gateway {
    app: TestApp,
    seen: Seen,
    twilio: TwilioSide,
    template: String,
}

async fn gateway() -> Gateway {
    let (api_base, seen) = fake_twilio().await;
    let app = start_app(Backend::Sqlite, |config| {
        config.rate_limit_per_minute = 1_000_000;
        config.telephony.public_url = Some(PUBLIC.into());
        config.telephony.models_dir = common::models_dir();
        config.telephony.dispatch_calls = true;
        config.telephony.twilio = Some(TwilioConfig {
            account_sid: SID.into(),
            auth_token: TOKEN.into(),
            caller_id: Some("+15005550006".into()),
            api_base,
        });
    })
    .await;
    let twilio = TwilioSide {
        listen_base: app.base.clone(),
        public_url: PUBLIC.into(),
        account_sid: SID.into(),
        auth_token: TOKEN.into(),
    };
    let response = app
        .client
        .post(format!("{}/v1/templates", app.base))
        .bearer_auth(&app.key)
        .json(&json!({"name": "Reminder", "steps": [
            {"type": "greeting", "content": "Hello, this is Acme with a reminder about your appointment tomorrow."},
            {"type": "question", "content": "Will you be able to make it?"},
            {"type": "closing", "content": "Thank you. Goodbye."}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let template = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    Gateway { app, seen, twilio, template }
}

impl Gateway {
    async fn place(&self, phone: &str) -> String {
        let response = self
            .app
            .client
            .post(format!("{}/v1/calls", self.app.base))
            .bearer_auth(&self.app.key)
            .json(&json!({"phone": phone, "templateId": self.template}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    }

    async fn call(&self, id: &str) -> Value {
        let response =
            self.app.client.get(format!("{}/v1/calls/{id}", self.app.base)).bearer_auth(&self.app.key).send().await;
        response.unwrap().json().await.unwrap()
    }

    async fn cancel(&self, id: &str) -> (u16, Value) {
        let url = format!("{}/v1/calls/{id}/cancel", self.app.base);
        let response = self.app.client.post(url).bearer_auth(&self.app.key).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    async fn wait_status(&self, id: &str, status: &str) -> Value {
        common::eventually_every(
            Duration::from_millis(100),
            Duration::from_secs(60),
            &format!("{id} {status}"),
            || async {
                let call = self.call(id).await;
                (call["status"] == status).then_some(call)
            },
        )
        .await
    }

    /// The form of the Calls API request that created call number `n` (1-based).
    fn created(&self, n: usize) -> Vec<(String, String)> {
        self.seen.requests().into_iter().filter(|(path, _)| path == "Calls.json").nth(n - 1).expect("call created").1
    }

    async fn status_callback(&self, status_callback_url: &str, call_sid: &str, status: &str, extra: &[(&str, &str)]) {
        let path = status_callback_url.strip_prefix(PUBLIC).expect("a public URL");
        let mut params = vec![("AccountSid", SID), ("CallSid", call_sid), ("CallStatus", status)];
        params.extend_from_slice(extra);
        let response = self.twilio.post_signed(&self.app.client, path, &params).await.unwrap();
        assert!(response.status().is_success(), "status callback {status}: {}", response.status());
    }
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no {name} in {form:?}"))
}

#[tokio::test]
async fn status_callbacks_move_a_placed_call_through_its_states() {
    let gw = gateway().await;

    // Answered: queued -> ringing (placed) -> in-progress (stream) -> completed (hang-up).
    let id = gw.place("+14155550100").await;
    gw.wait_status(&id, "ringing").await;
    let form = common::eventually(Duration::from_secs(10), "the call placed", || async {
        gw.seen.requests().iter().any(|(p, _)| p == "Calls.json").then(|| gw.created(1))
    })
    .await;
    assert_eq!(field(&form, "To"), "+14155550100");
    assert_eq!(field(&form, "From"), "+15005550006");
    let voice = field(&form, "Url").to_owned();
    let status_callback = field(&form, "StatusCallback").to_owned();
    assert_eq!(voice, format!("{PUBLIC}/twilio/voice?callId={id}"));
    for status in ["initiated", "ringing"] {
        gw.status_callback(&status_callback, "CA0001", status, &[]).await;
    }
    assert_eq!(gw.call(&id).await["status"], "ringing");
    let mut answered = gw
        .twilio
        .answer(&gw.app.client, voice.strip_prefix(PUBLIC).unwrap(), "+15005550006", "+14155550100", "CA0001")
        .await
        .expect("the answered call streams");
    assert_eq!(answered.call_id, id);
    gw.status_callback(&status_callback, "CA0001", "in-progress", &[("AnsweredBy", "human")]).await;
    let call = gw.wait_status(&id, "in-progress").await;
    assert!(call["startedAt"].is_string(), "{call}");
    // The greeting plays; the callee hangs up during it, and Twilio reports the end.
    let greeting = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(event) = answered.peer.events.recv().await {
            if let PeerEvent::Heard { audible: true, .. } = event {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(greeting.ok(), Some(true), "the greeting is heard");
    answered.peer.commands.send(PeerCommand::HangUp).await.unwrap();
    gw.status_callback(&status_callback, "CA0001", "completed", &[("CallDuration", "3")]).await;
    let call = gw.wait_status(&id, "completed").await;
    assert_eq!(call["outcome"], "unsuccessful", "hung up without answering is not a no: {call}");

    // Never answered: the carrier's final status is the call's end.
    for (n, (twilio_status, outcome)) in
        [("busy", "busy"), ("no-answer", "noAnswer"), ("failed", "failed")].into_iter().enumerate()
    {
        let id = gw.place("+14155550101").await;
        gw.wait_status(&id, "ringing").await;
        let sid = format!("CA{:04}", n + 2);
        let callback = common::eventually(Duration::from_secs(10), "the call placed", || async {
            (gw.seen.requests().iter().filter(|(p, _)| p == "Calls.json").count() > n + 1)
                .then(|| field(&gw.created(n + 2), "StatusCallback").to_owned())
        })
        .await;
        gw.status_callback(&callback, &sid, "ringing", &[]).await;
        gw.status_callback(&callback, &sid, twilio_status, &[]).await;
        let call = gw.wait_status(&id, "failed").await;
        assert_eq!(call["outcome"], outcome, "{twilio_status}: {call}");
    }
    assert_eq!(gw.app.state.calls.active(), 0, "every call slot is free again");
}

#[tokio::test]
async fn cancelling_a_ringing_call_hangs_it_up_at_the_carrier() {
    let gw = gateway().await;
    let id = gw.place("+14155550100").await;
    gw.wait_status(&id, "ringing").await;
    common::eventually(Duration::from_secs(10), "the call placed", || async {
        gw.seen.requests().iter().any(|(p, _)| p == "Calls.json").then_some(())
    })
    .await;
    // Twilio's call sid is stored once the Calls API answers.
    common::eventually(Duration::from_secs(10), "the carrier call id stored", || async {
        callcenter::store::call_sessions::leg(&gw.app.state.db, &callcenter::domain::Id::parse(&id).unwrap())
            .await
            .unwrap()
            .and_then(|leg| leg.carrier_call_id)
    })
    .await;

    let (status, body) = gw.cancel(&id).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"id": id, "status": "cancelled", "message": "Call successfully cancelled"}));

    let hang_up = gw.seen.requests().into_iter().find(|(path, _)| path == "Calls/CA0001.json").expect("hang-up sent");
    assert_eq!(field(&hang_up.1, "Status"), "canceled");
    let call = gw.call(&id).await;
    assert_eq!(call["status"], "cancelled");
    assert!(call["endedAt"].is_string(), "{call}");
    assert!(call["outcome"].is_null(), "{call}");
    assert_eq!(gw.app.state.calls.active(), 0, "the slot is free");

    // Twilio confirms; nothing changes. A second cancel is a conflict.
    let callback = field(&gw.created(1), "StatusCallback").to_owned();
    gw.status_callback(&callback, "CA0001", "canceled", &[]).await;
    assert_eq!(gw.call(&id).await["status"], "cancelled");
    assert_eq!(gw.cancel(&id).await.0, 409);
}
