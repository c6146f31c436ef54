//! `/v1/webhooks`: endpoint CRUD, event validation, secret rotation, test events, the
//! delivery log and tenant isolation, on SQLite and PostgreSQL.

use std::time::Duration;

use base64::Engine;
use callcenter::webhooks::signing;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::receiver::Receiver;
use crate::support::*;

both_backends!(
    endpoints_are_created_read_updated_and_deleted,
    event_subscriptions_are_validated,
    test_event_is_delivered_and_logged,
    rotated_secret_signs_with_both_secrets,
    endpoints_are_isolated_between_accounts,
    manual_retry_of_unknown_deliveries,
);

/// Known vectors, checked independently with openssl:
/// `printf '%s' BODY | openssl dgst -sha256 -hmac SECRET` for X-Signature, and the
/// Standard Webhooks specification's own example for webhook-signature.
#[test]
fn signature_vectors() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let body = br#"{"test": 2432232314}"#;
    let (id, ts) = ("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330);
    let x = signing::x_signature(secret, body).unwrap();
    assert_eq!(x, "sha256=80ec8a89ce3cd22133a1066caecb4d04fea7467657c8514d717ec42c38a5c94c");
    let std = signing::standard_signature(secret, id, ts, body).unwrap();
    assert_eq!(std, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    signing::verify_x_signature(secret, body, &x).unwrap();
    signing::verify_standard(secret, id, ts, body, &std).unwrap();
    assert!(signing::verify_standard(secret, id, ts + 1, body, &std).is_err(), "the timestamp is signed");
    assert!(signing::verify_x_signature("", body, "sha256=").is_err(), "an empty secret verifies nothing");
}

async fn endpoints_are_created_read_updated_and_deleted(b: Backend) {
    let app = spawn_app(b, true).await;
    let rx = Receiver::start().await;
    let r = app
        .post(
            "/v1/webhooks",
            json!({"url": rx.url(), "events": ["call.completed", "campaign.started"], "description": "CRM sync"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let created = r.body.clone();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.len() == 24 && id.bytes().all(|c| c.is_ascii_hexdigit()), "{id}");
    assert_eq!(created["url"], rx.url());
    assert_eq!(created["events"], json!(["call.completed", "campaign.started"]));
    assert_eq!(created["description"], "CRM sync");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["disabledReason"], Value::Null);
    assert_time(&created["createdAt"]);
    // The secret: whsec_ + base64 of 32 random bytes, shown only now.
    let secret = created["secret"].as_str().unwrap();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64 secret");
    assert_eq!(raw.len(), 32);

    let r = app.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.get("secret").is_none(), "GET shows the secret: {}", r.body);
    assert!(!r.body.to_string().contains(secret));
    assert_eq!(r.body["events"], created["events"]);

    let r = app.get("/v1/webhooks").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["pagination"]["total"], 1);
    assert_eq!(r.body["data"][0]["id"], id.as_str());
    assert!(!r.body.to_string().contains(secret), "the list shows the secret: {}", r.body);

    let r =
        app.patch(&format!("/v1/webhooks/{id}"), json!({"events": ["*"], "description": null, "enabled": false})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["events"], json!(["*"]));
    assert_eq!(r.body["description"], Value::Null);
    assert_eq!(r.body["enabled"], false);
    assert_eq!(r.body["url"], rx.url());
    assert!(r.body.get("secret").is_none());
    let r = app.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(r.body["enabled"], false);
    assert_eq!(r.body["events"], json!(["*"]));

    let r = app.patch(&format!("/v1/webhooks/{id}"), json!({"secret": "whsec_mine"})).await;
    assert_eq!(r.status, 400, "unknown fields are refused: {}", r.body);
    app.patch(&format!("/v1/webhooks/{id}"), json!({"url": "not a url"})).await.assert_invalid("url");
    app.get("/v1/webhooks/nothex").await.assert_invalid("id");
    app.get(&format!("/v1/webhooks/{}", "0".repeat(24))).await.assert_not_found();

    let r = app.delete(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(r.status, 204, "{}", r.body);
    app.get(&format!("/v1/webhooks/{id}")).await.assert_not_found();
    app.delete(&format!("/v1/webhooks/{id}")).await.assert_not_found();
    assert_eq!(app.get("/v1/webhooks").await.body["pagination"]["total"], 0);
}

async fn event_subscriptions_are_validated(b: Backend) {
    let app = spawn_app(b, true).await;
    let url = "http://127.0.0.1:9/hook";
    for events in [json!(["call.exploded"]), json!([]), json!(["webhook.test"]), json!(["call.completed", "nope"])] {
        app.post("/v1/webhooks", json!({"url": url, "events": events})).await.assert_invalid("events");
    }
    let r = app.post("/v1/webhooks", json!({"url": url})).await;
    assert_eq!(r.status, 400, "events are required: {}", r.body);
    let r = app.post("/v1/webhooks", json!({"url": url, "events": "*"})).await;
    assert_eq!(r.status, 400, "events is a list: {}", r.body);

    let r = app.post("/v1/webhooks", json!({"url": url, "events": ["*"]})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["events"], json!(["*"]));
    let all = [
        "call.started",
        "call.completed",
        "call.failed",
        "call.transcript.available",
        "call.recording.available",
        "campaign.started",
        "campaign.completed",
        "campaign.paused",
    ];
    let r = app.post("/v1/webhooks", json!({"url": url, "events": all, "enabled": false})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["events"], json!(all));
    assert_eq!(r.body["enabled"], false);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = app.post("/v1/webhooks", json!({"url": url, "events": ["call.failed", "call.failed"]})).await;
    assert_eq!(r.body["events"], json!(["call.failed"]), "duplicates collapse");

    app.patch(&format!("/v1/webhooks/{id}"), json!({"events": ["campaign.exploded"]})).await.assert_invalid("events");
    app.patch(&format!("/v1/webhooks/{id}"), json!({"events": []})).await.assert_invalid("events");
    assert_eq!(
        app.get(&format!("/v1/webhooks/{id}")).await.body["events"],
        json!(all),
        "a refused PATCH changes nothing"
    );
}

async fn test_event_is_delivered_and_logged(b: Backend) {
    let app = spawn_app(b, true).await;
    let rx = Receiver::start().await;
    let (id, secret) = app.create_endpoint(&rx.url(), json!(["campaign.completed"])).await;
    rx.set_secret(&secret);

    let r = app.post(&format!("/v1/webhooks/{id}/test"), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["type"], "webhook.test");
    assert_event_id(&r.body["eventId"]);
    let event_id = r.body["eventId"].as_str().unwrap().to_owned();

    let got = rx.wait_for(1, Duration::from_secs(10)).await;
    rx.assert_no_problems();
    assert_eq!(got[0].webhook_id, event_id);
    assert_eq!(got[0].event_type, "webhook.test", "test events ignore the subscription list");
    assert_eq!(got[0].body["id"], event_id.as_str());
    assert_eq!(got[0].body["data"]["webhookId"], id.as_str());
    assert_time(&got[0].body["created"]);

    let attempts = app.wait_for_attempts(&id, 1).await;
    let a = &attempts[0];
    assert_eq!(a["eventId"], event_id.as_str());
    assert_eq!(a["eventType"], "webhook.test");
    assert_eq!(a["statusCode"], 200);
    assert!(a["latencyMs"].as_i64().is_some_and(|ms| (0..10_000).contains(&ms)), "{a}");
    assert_eq!(a["error"], Value::Null);
    assert_eq!(a["nextRetryAt"], Value::Null);
    assert_eq!(a["deliveryStatus"], "succeeded");
    assert_time(&a["attemptedAt"]);
    assert_eq!(a["deliveryId"].as_str().map(str::len), Some(24));
    let r = app.get(&format!("/v1/webhooks/{id}/deliveries?page=1&limit=1")).await;
    assert_eq!(r.body["pagination"]["total"], 1);
    rx.assert_stays_at(1, Duration::from_millis(400)).await;

    app.post(&format!("/v1/webhooks/{}/test", "0".repeat(24)), json!({})).await.assert_not_found();
    app.get(&format!("/v1/webhooks/{}/deliveries", "0".repeat(24))).await.assert_not_found();
}

async fn rotated_secret_signs_with_both_secrets(b: Backend) {
    let app = spawn_app(b, true).await;
    let rx = Receiver::start().await;
    let (id, old) = app.create_endpoint(&rx.url(), json!(["*"])).await;

    let r = app.post(&format!("/v1/webhooks/{id}/rotate-secret"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["id"], id.as_str());
    let new = r.body["secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whsec_") && new != old, "{new}");
    let expires = parse_time(&r.body["previousSecretExpiresAt"]);
    let in_a_day = jiff::Timestamp::now().as_second() + 24 * 3600;
    assert!((expires.as_second() - in_a_day).abs() < 60, "the old secret signs for 24 h: {expires}");
    let r = app.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(parse_time(&r.body["previousSecretExpiresAt"]), expires);
    assert!(!r.body.to_string().contains(&new));

    // The receiver insists on both: X-Signature with the new secret, webhook-signature with each.
    rx.set_secret(&new);
    rx.set_previous_secret(Some(&old));
    let event = app.send_test_event(&id).await;
    let got = rx.wait_for(1, Duration::from_secs(10)).await;
    rx.assert_no_problems();
    let d = &got[0];
    assert_eq!(d.webhook_id, event);
    let sig = d.header("webhook-signature");
    let entries: Vec<&str> = sig.split(' ').collect();
    assert_eq!(entries.len(), 2, "two signatures during the rotation: {sig}");
    assert!(entries.iter().all(|e| e.starts_with("v1,")), "{sig}");
    let raw = &d.raw;
    let ts: i64 = d.header("webhook-timestamp").parse().unwrap();
    for secret in [&new, &old] {
        signing::verify_standard(secret, &event, ts, raw, sig).expect("webhook-signature verifies");
    }
    let xsig = d.header("x-signature");
    signing::verify_x_signature(&new, raw, xsig).expect("X-Signature uses the new secret");
    assert!(signing::verify_x_signature(&old, raw, xsig).is_err(), "X-Signature must not use the old secret");

    // After 24 hours only the new secret signs.
    app.clock.advance(25 * 3600);
    rx.set_previous_secret(None);
    let later = app.send_test_event(&id).await;
    let got = rx.wait_for(2, Duration::from_secs(10)).await;
    rx.assert_no_problems();
    assert_eq!(got[1].webhook_id, later);
    let sig = got[1].header("webhook-signature");
    assert!(!sig.contains(' '), "the old secret expired: {sig}");
    let ts: i64 = got[1].header("webhook-timestamp").parse().unwrap();
    assert!(signing::verify_standard(&old, &later, ts, &got[1].raw, sig).is_err());

    app.post(&format!("/v1/webhooks/{}/rotate-secret", "0".repeat(24)), json!({})).await.assert_not_found();
}

async fn endpoints_are_isolated_between_accounts(b: Backend) {
    let app = spawn_app(b, true).await;
    let rx = Receiver::start().await;
    let (id, _) = app.create_endpoint(&rx.url(), json!(["*"])).await;
    let event = app.send_test_event(&id).await;
    let attempts = app.wait_for_attempts(&id, 1).await;
    let delivery = attempts[0]["deliveryId"].as_str().unwrap().to_owned();
    assert_eq!(attempts[0]["eventId"], event.as_str());

    let other = app.key_for_account("globex").await;
    let paths = [
        (Method::GET, format!("/v1/webhooks/{id}")),
        (Method::PATCH, format!("/v1/webhooks/{id}")),
        (Method::DELETE, format!("/v1/webhooks/{id}")),
        (Method::POST, format!("/v1/webhooks/{id}/rotate-secret")),
        (Method::POST, format!("/v1/webhooks/{id}/test")),
        (Method::GET, format!("/v1/webhooks/{id}/deliveries")),
        (Method::POST, format!("/v1/webhooks/{id}/deliveries/{delivery}/retry")),
    ];
    for (method, path) in paths {
        let body = (method == Method::PATCH).then(|| json!({"enabled": false}));
        let r = app.send(method.clone(), &path, &other, body.as_ref()).await;
        assert_eq!(r.status, 404, "{method} {path} as another account: {}", r.body);
    }
    let r = app.send(Method::GET, "/v1/webhooks", &other, None).await;
    assert_eq!(r.body["pagination"]["total"], 0, "{}", r.body);
    // Nothing of the above touched the endpoint.
    let r = app.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(r.body["enabled"], true);
    assert_eq!(r.body["previousSecretExpiresAt"], Value::Null);
    assert_eq!(app.attempts(&id).await.len(), 1);
    let r = app.send(Method::GET, "/v1/webhooks", "not-a-key", None).await;
    assert_eq!(r.status, 401);
}

async fn manual_retry_of_unknown_deliveries(b: Backend) {
    let app = spawn_app(b, true).await;
    let (id, _) = app.create_endpoint("http://127.0.0.1:9/hook", json!(["*"])).await;
    let (other_endpoint, _) = app.create_endpoint("http://127.0.0.1:9/other", json!(["*"])).await;
    app.post(&format!("/v1/webhooks/{id}/deliveries/{}/retry", "0".repeat(24)), json!({})).await.assert_not_found();
    let r = app.post(&format!("/v1/webhooks/{id}/deliveries/xyz/retry"), json!({})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    // A delivery of one endpoint cannot be retried through another.
    app.send_test_event(&id).await;
    let attempts = app.wait_for_attempts(&id, 1).await;
    let delivery = attempts[0]["deliveryId"].as_str().unwrap();
    app.post(&format!("/v1/webhooks/{other_endpoint}/deliveries/{delivery}/retry"), json!({})).await.assert_not_found();
}
