//! Two accounts on one gateway, each with its own Twilio account (`/v1/carriers`), against a
//! local fake of Twilio's REST API (Accounts, IncomingPhoneNumbers, OutgoingCallerIds, Calls
//! in their documented wire format). Neither may register, ring or dial with the other's
//! numbers and caller IDs, and a webhook signed by one Twilio account reaches only its owner.

use std::time::Duration;

use callcenter::store::accounts;
use callcenter::telephony::simulator::twilio_side::TwilioSide;
use serde_json::{Value, json};

use crate::common::{self, Backend, TestApp, start_app};
use crate::twilio_rest::{FakeAccount, Seen, fake_twilio_with};

const PUBLIC: &str = "https://gw.example.com";
const SID_A: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const TOKEN_A: &str = "token-of-a";
const SID_B: &str = "ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const TOKEN_B: &str = "token-of-b";
/// A's bought number, and a caller ID A verified.
const NUMBER_A: &str = "+14155550101";
const CALLER_ID_A: &str = "+14155550111";
const NUMBER_B: &str = "+14155550202";

struct Tenants {
    app: TestApp,
    seen: Seen,
    /// API keys of the two accounts.
    key_a: String,
    key_b: String,
}

async fn tenants() -> Tenants {
    let (api_base, seen) = fake_twilio_with(vec![
        FakeAccount {
            sid: SID_A,
            token: TOKEN_A,
            numbers: vec![NUMBER_A.into()],
            caller_ids: vec![CALLER_ID_A.into()],
        },
        FakeAccount { sid: SID_B, token: TOKEN_B, numbers: vec![NUMBER_B.into()], caller_ids: vec![] },
    ])
    .await;
    let app = start_app(Backend::Sqlite, |config| {
        config.rate_limit_per_minute = 1_000_000;
        config.telephony.public_url = Some(PUBLIC.into());
        config.telephony.models_dir = common::models_dir();
        config.telephony.dispatch_calls = true;
        // No default Twilio account: each account brings its own.
        config.telephony.twilio = None;
        config.telephony.twilio_api_base = api_base;
    })
    .await;
    let key_a = app.key.clone();
    let globex = accounts::ensure_account(&app.state.db, "globex").await.unwrap();
    let (_, key_b) = accounts::create_key(&app.state.db, &globex, Some("test")).await.unwrap();
    Tenants { app, seen, key_a, key_b }
}

impl Tenants {
    async fn send(&self, method: reqwest::Method, key: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.app.client.request(method, format!("{}{path}", self.app.base)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, key, path, Some(body)).await
    }

    async fn get(&self, key: &str, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, key, path, None).await
    }

    async fn add_carrier(&self, key: &str, sid: &str, token: &str) -> (u16, Value) {
        self.post(key, "/v1/carriers", json!({"type": "twilio", "name": "Ours", "accountSid": sid, "authToken": token}))
            .await
    }

    async fn template(&self, key: &str) -> String {
        let body = json!({"name": "Desk", "steps": [
            {"type": "greeting", "content": "Hello, this is the front desk."},
            {"type": "closing", "content": "Goodbye."}
        ]});
        let (status, template) = self.post(key, "/v1/templates", body).await;
        assert_eq!(status, 201, "{template}");
        template["id"].as_str().unwrap().to_owned()
    }

    fn twilio(&self, sid: &str, token: &str) -> TwilioSide {
        TwilioSide {
            listen_base: self.app.base.clone(),
            public_url: PUBLIC.into(),
            account_sid: sid.into(),
            auth_token: token.into(),
        }
    }
}

fn assert_invalid(status: u16, body: &Value, field: &str) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_parameter", "{body}");
    assert_eq!(body["error"]["details"]["field"], field, "{body}");
}

#[tokio::test]
async fn carrier_credentials_are_checked_sealed_and_never_shown() {
    let t = tenants().await;

    let (status, body) = t.add_carrier(&t.key_a, SID_A, "wrong-token").await;
    assert_invalid(status, &body, "authToken");
    let (status, body) = t.add_carrier(&t.key_a, "AC123", TOKEN_A).await;
    assert_invalid(status, &body, "accountSid");

    let (status, carrier) = t.add_carrier(&t.key_a, SID_A, TOKEN_A).await;
    assert_eq!(status, 201, "{carrier}");
    assert_eq!((carrier["type"].as_str(), carrier["accountSid"].as_str()), (Some("twilio"), Some(SID_A)));
    assert!(!carrier.to_string().contains(TOKEN_A), "the token is never returned: {carrier}");
    let (_, listed) = t.get(&t.key_a, "/v1/carriers").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(TOKEN_A));

    // At rest the token is sealed, not stored as given.
    let row = sqlx::query("SELECT auth_token_sealed FROM carriers").fetch_one(&t.app.state.db.read).await.unwrap();
    let sealed: String = sqlx::Row::get(&row, "auth_token_sealed");
    assert!(sealed.starts_with("v1:") && !sealed.contains(TOKEN_A), "{sealed}");

    // One Twilio carrier per account, and a Twilio account belongs to one account.
    let (status, body) = t.add_carrier(&t.key_a, SID_B, TOKEN_B).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = t.add_carrier(&t.key_b, SID_A, TOKEN_A).await;
    assert_eq!((status, body["error"]["details"]["field"].as_str()), (409, Some("accountSid")), "{body}");
    // Another account cannot even see it.
    let id = carrier["id"].as_str().unwrap();
    assert_eq!(t.get(&t.key_b, &format!("/v1/carriers/{id}")).await.0, 404);

    // A rotated token is checked too; a caller ID must be the Twilio account's.
    let path = format!("/v1/carriers/{id}");
    let (status, body) = t.send(reqwest::Method::PATCH, &t.key_a, &path, Some(json!({"authToken": "nope"}))).await;
    assert_invalid(status, &body, "authToken");
    let (status, body) = t.send(reqwest::Method::PATCH, &t.key_a, &path, Some(json!({"callerId": NUMBER_B}))).await;
    assert_invalid(status, &body, "callerId");
    let patch = json!({"callerId": CALLER_ID_A, "authToken": TOKEN_A});
    let (status, body) = t.send(reqwest::Method::PATCH, &t.key_a, &path, Some(patch)).await;
    assert_eq!((status, body["callerId"].as_str()), (200, Some(CALLER_ID_A)), "{body}");
}

#[tokio::test]
async fn tenants_cannot_use_each_others_numbers_or_caller_ids() {
    let t = tenants().await;
    let (template_a, template_b) = (t.template(&t.key_a).await, t.template(&t.key_b).await);

    // Without a Twilio account there is nothing a Twilio number could belong to.
    let number = |phone: &str, template: &str| json!({"phone": phone, "templateId": template, "carrier": "twilio"});
    let (status, body) = t.post(&t.key_b, "/v1/phone-numbers", number(NUMBER_A, &template_b)).await;
    assert_invalid(status, &body, "carrier");

    assert_eq!(t.add_carrier(&t.key_a, SID_A, TOKEN_A).await.0, 201);
    assert_eq!(t.add_carrier(&t.key_b, SID_B, TOKEN_B).await.0, 201);

    // B cannot take A's number, first come or not; A can, and B can take its own.
    let (status, body) = t.post(&t.key_b, "/v1/phone-numbers", number(NUMBER_A, &template_b)).await;
    assert_invalid(status, &body, "phone");
    assert_eq!(body["error"]["details"]["accountSid"], SID_B);
    let (status, registered) = t.post(&t.key_a, "/v1/phone-numbers", number(NUMBER_A, &template_a)).await;
    assert_eq!(status, 201, "{registered}");
    assert!(registered["carrierId"].is_string(), "{registered}");
    assert_eq!(t.post(&t.key_b, "/v1/phone-numbers", number(NUMBER_B, &template_b)).await.0, 201);
    // A simulator number of B's does not block anything of A's either.
    let simulated = json!({"phone": NUMBER_A, "templateId": template_b, "carrier": "simulator"});
    assert_eq!(t.post(&t.key_b, "/v1/phone-numbers", simulated).await.0, 201);

    // Caller IDs: A's verified one works for A only.
    let call = |caller_id: &str, template: &str| json!({"phone": "+14155550100", "templateId": template, "callerId": caller_id});
    let (status, body) = t.post(&t.key_b, "/v1/calls", call(CALLER_ID_A, &template_b)).await;
    assert_invalid(status, &body, "callerId");
    let (status, body) = t.post(&t.key_b, "/v1/calls", call(NUMBER_A, &template_b)).await;
    assert_invalid(status, &body, "callerId");
    let campaign = json!({"name": "Borrowed", "templateId": template_b, "contacts": [],
        "callSettings": {"callerId": CALLER_ID_A}});
    let (status, body) = t.post(&t.key_b, "/v1/campaigns", campaign).await;
    assert_invalid(status, &body, "callSettings.callerId");

    // A's own call goes out on A's Twilio account, from A's caller ID.
    let (status, placed) = t.post(&t.key_a, "/v1/calls", call(CALLER_ID_A, &template_a)).await;
    assert_eq!(status, 201, "{placed}");
    let (account, form) = common::eventually(Duration::from_secs(20), "the call placed on Twilio", || async {
        let requests = t.seen.requests();
        let at = requests.iter().position(|(path, _)| path == "Calls.json")?;
        Some((t.seen.accounts()[at].clone(), requests[at].1.clone()))
    })
    .await;
    assert_eq!(account, SID_A);
    let from = form.iter().find(|(k, _)| k == "From").map(|(_, v)| v.as_str());
    assert_eq!(from, Some(CALLER_ID_A));

    // B's Twilio account cannot report on A's call: the status is ignored.
    let id = placed["id"].as_str().unwrap();
    common::eventually(Duration::from_secs(10), "ringing", || async {
        (t.get(&t.key_a, &format!("/v1/calls/{id}")).await.1["status"] == "ringing").then_some(())
    })
    .await;
    let status_path = format!("/twilio/status?callId={id}");
    let forged = [("AccountSid", SID_B), ("CallSid", "CA9999"), ("CallStatus", "busy")];
    let response = t.twilio(SID_B, TOKEN_B).post_signed(&t.app.client, &status_path, &forged).await.unwrap();
    assert!(response.status().is_success());
    assert_eq!(t.get(&t.key_a, &format!("/v1/calls/{id}")).await.1["status"], "ringing");
    let real = [("AccountSid", SID_A), ("CallSid", "CA0001"), ("CallStatus", "busy")];
    t.twilio(SID_A, TOKEN_A).post_signed(&t.app.client, &status_path, &real).await.unwrap();
    let ended = t.get(&t.key_a, &format!("/v1/calls/{id}")).await.1;
    assert_eq!((ended["status"].as_str(), ended["outcome"].as_str()), (Some("failed"), Some("busy")), "{ended}");
}

#[tokio::test]
async fn inbound_calls_route_by_the_signing_twilio_account_and_the_number() {
    let t = tenants().await;
    let template_a = t.template(&t.key_a).await;
    assert_eq!(t.add_carrier(&t.key_a, SID_A, TOKEN_A).await.0, 201);
    assert_eq!(t.add_carrier(&t.key_b, SID_B, TOKEN_B).await.0, 201);
    let number = json!({"phone": NUMBER_A, "templateId": template_a, "carrier": "twilio"});
    assert_eq!(t.post(&t.key_a, "/v1/phone-numbers", number).await.0, 201);

    let voice = |sid: &'static str, call_sid: &'static str| {
        [("AccountSid", sid), ("CallSid", call_sid), ("From", "+14155550177"), ("To", NUMBER_A)]
    };
    // Signed by B's Twilio account: A's number is not B's to ring.
    let response =
        t.twilio(SID_B, TOKEN_B).post_signed(&t.app.client, "/twilio/voice", &voice(SID_B, "CA0100")).await.unwrap();
    assert_eq!(response.status(), 200);
    let twiml = response.text().await.unwrap();
    assert!(!twiml.contains("<Stream"), "{twiml}");
    // A's SID with B's token: the signature does not check out.
    let response =
        t.twilio(SID_A, TOKEN_B).post_signed(&t.app.client, "/twilio/voice", &voice(SID_A, "CA0101")).await.unwrap();
    assert_eq!(response.status(), 403);
    // Signed by A's Twilio account: answered, and the call is A's.
    let response =
        t.twilio(SID_A, TOKEN_A).post_signed(&t.app.client, "/twilio/voice", &voice(SID_A, "CA0102")).await.unwrap();
    let twiml = response.text().await.unwrap();
    assert!(twiml.contains("<Stream"), "{twiml}");
    let (_, calls_a) = t.get(&t.key_a, "/v1/calls").await;
    let (_, calls_b) = t.get(&t.key_b, "/v1/calls").await;
    assert_eq!(calls_a["pagination"]["total"], 1, "{calls_a}");
    assert_eq!(calls_b["pagination"]["total"], 0, "{calls_b}");
}
