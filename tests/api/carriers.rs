//! `/v1/carriers` on both databases: create (checked with a local fake of Twilio's REST API),
//! read, rename, rotate, delete; a carrier that numbers use is not deleted; another account
//! sees none of it; the token never comes back. tests/telephony/tenants.rs covers what a
//! carrier then allows and forbids.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::fake_twilio::{FakeAccount, fake_twilio_with};
use crate::helpers::*;

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "the-real-token";
const NUMBER: &str = "+14155550123";

async fn app_with_twilio(b: Backend) -> TestApp {
    let account = FakeAccount { sid: SID, token: TOKEN, numbers: vec![NUMBER.into()], caller_ids: vec![] };
    let (api_base, _) = fake_twilio_with(vec![account]).await;
    spawn_app_with(b, |c| c.telephony.twilio_api_base = api_base).await
}

fn create_body() -> Value {
    json!({"type": "twilio", "name": "Main", "accountSid": SID, "authToken": TOKEN, "callerId": NUMBER})
}

async fn lifecycle(b: Backend) {
    let app = app_with_twilio(b).await;
    let r = app.post("/v1/carriers", create_body()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let carrier = r.body.clone();
    let mut keys: Vec<&String> = carrier.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["accountSid", "callerId", "createdAt", "id", "name", "type", "updatedAt"]);
    assert_eq!(carrier["callerId"], NUMBER);
    let id = carrier["id"].as_str().unwrap();
    let path = format!("/v1/carriers/{id}");
    assert_eq!(app.get(&path).await.body, carrier);
    assert_eq!(app.get("/v1/carriers").await.body, json!({"data": [carrier.clone()]}));

    // Rename, clear the caller ID, rotate the token (checked again): never shown.
    let r = app.patch(&path, json!({"name": "Renamed", "callerId": null, "authToken": TOKEN})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.body["name"].as_str(), &r.body["callerId"]), (Some("Renamed"), &Value::Null));
    assert!(!r.body.to_string().contains(TOKEN));
    let r = app.patch(&path, json!({"accountSid": SID})).await;
    assert_eq!(r.status, 400, "the Twilio account cannot change: {}", r.body);

    // Another account sees nothing and can touch nothing.
    let other = app.key_for_account("globex").await;
    for method in [Method::GET, Method::DELETE] {
        assert_eq!(app.send(method, &path, Some(&other), None).await.status, 404);
    }
    let r = app.send(Method::GET, "/v1/carriers", Some(&other), None).await;
    assert_eq!(r.body, json!({"data": []}));

    // A number on it keeps it; once the number is gone, it can go.
    let template = json!({"name": "T", "steps": [{"type": "greeting", "content": "Hello."}]});
    let template = app.post("/v1/templates", template).await.body["id"].as_str().unwrap().to_owned();
    let r = app.post("/v1/phone-numbers", json!({"phone": NUMBER, "templateId": template, "carrier": "twilio"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["carrierId"], id);
    let r = app.delete(&path).await;
    assert_eq!((r.status.as_u16(), r.error_code()), (409, "conflict"), "{}", r.body);
    let number = r.body.clone();
    assert_eq!(number["error"]["details"]["phoneNumbers"], 1);
    let numbers = app.get("/v1/phone-numbers").await.body;
    let number_id = numbers["data"][0]["id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("/v1/phone-numbers/{number_id}")).await.status, 204);
    assert_eq!(app.delete(&path).await.status, 204);
    assert_eq!(app.get(&path).await.status, 404);
    // Gone, so the Twilio account can be registered again.
    assert_eq!(app.post("/v1/carriers", create_body()).await.status, 201);
}

async fn bad_input_is_400_and_an_unreachable_twilio_is_502(b: Backend) {
    let app = app_with_twilio(b).await;
    let cases = [
        (json!({"type": "sip", "accountSid": SID, "authToken": TOKEN}), "type"),
        (json!({"type": "twilio", "accountSid": "AC12", "authToken": TOKEN}), "accountSid"),
        (json!({"type": "twilio", "accountSid": SID, "authToken": ""}), "authToken"),
        (json!({"type": "twilio", "accountSid": SID, "authToken": "wrong"}), "authToken"),
        (json!({"type": "twilio", "accountSid": SID, "authToken": TOKEN, "callerId": "+14155550999"}), "callerId"),
        (json!({"type": "twilio", "accountSid": SID, "authToken": TOKEN, "callerId": "nope"}), "callerId"),
    ];
    for (body, field) in cases {
        let r = app.post("/v1/carriers", body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.body["error"]["details"]["field"], field, "{body}: {}", r.body);
    }
    let r =
        app.post("/v1/carriers", json!({"type": "twilio", "accountSid": SID, "authToken": TOKEN, "extra": 1})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(app.get("/v1/carriers").await.body, json!({"data": []}), "nothing was stored");

    let unreachable = spawn_app_with(b, |c| c.telephony.twilio_api_base = "http://127.0.0.1:9".into()).await;
    let r = unreachable.post("/v1/carriers", create_body()).await;
    assert_eq!((r.status.as_u16(), r.error_code()), (502, "carrier_unavailable"), "{}", r.body);
}

both_backends!(lifecycle, bad_input_is_400_and_an_unreachable_twilio_is_502);
