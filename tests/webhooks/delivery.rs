//! What arrives: campaign events in the spec's payload shape, signed headers, the
//! subscription filter, and receivers that hang or are down.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::both_backends;
use crate::receiver::{Mode, Receiver};
use crate::support::*;

both_backends!(campaign_transitions_emit_campaign_events);

async fn campaign_transitions_emit_campaign_events(b: Backend) {
    let app = spawn_app(b, true).await;
    let all = Receiver::start().await;
    let (all_id, secret) =
        app.create_endpoint(&all.url(), json!(["campaign.started", "campaign.paused", "campaign.completed"])).await;
    all.set_secret(&secret);
    let completed_only = Receiver::start().await;
    let (_, secret) = app.create_endpoint(&completed_only.url(), json!(["campaign.completed"])).await;
    completed_only.set_secret(&secret);
    let calls_only = Receiver::start().await;
    let (_, secret) = app.create_endpoint(&calls_only.url(), json!(["call.completed"])).await;
    calls_only.set_secret(&secret);
    let disabled = Receiver::start().await;
    let (disabled_id, secret) = app.create_endpoint(&disabled.url(), json!(["*"])).await;
    disabled.set_secret(&secret);
    let r = app.patch(&format!("/v1/webhooks/{disabled_id}"), json!({"enabled": false})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Another account's endpoint hears nothing of acme's campaigns.
    let foreign = Receiver::start().await;
    let other_key = app.key_for_account("globex").await;
    let r = app
        .send(reqwest::Method::POST, "/v1/webhooks", &other_key, Some(&json!({"url": foreign.url(), "events": ["*"]})))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    foreign.set_secret(r.body["secret"].as_str().unwrap());

    let campaign = app.create_campaign().await;
    // Waiting for each event before the next transition makes the order observable.
    let steps = [
        ("active", "campaign.started", "scheduled"),
        ("paused", "campaign.paused", "active"),
        ("active", "campaign.started", "paused"),
        ("completed", "campaign.completed", "active"),
    ];
    for (i, (status, event_type, previous)) in steps.into_iter().enumerate() {
        let before = jiff::Timestamp::now().as_second();
        app.set_campaign_status(&campaign, status).await;
        let got = all.wait_for(i + 1, Duration::from_secs(10)).await;
        let d = &got[i];
        assert_eq!(d.event_type, event_type);
        let body = &d.body;
        let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 4, "exactly id, type, created, data: {body}");
        assert_event_id(&body["id"]);
        assert_eq!(body["type"], event_type);
        assert_time(&body["created"]);
        let created = parse_time(&body["created"]).as_second();
        assert!((before - 1..=before + 5).contains(&created), "created {created} vs {before}");
        assert_eq!(body["data"]["campaignId"], campaign.as_str(), "{body}");
        assert_eq!(body["data"]["status"], status, "{body}");
        assert_eq!(body["data"]["previousStatus"], previous, "{body}");
        // Where the campaign stands (no calls in this one).
        assert_eq!(body["data"]["totalContacts"], 0, "{body}");
        assert_eq!(body["data"]["completedCalls"], 0, "{body}");
        assert_eq!(body["data"]["successfulCalls"], 0, "{body}");
        assert_eq!(d.webhook_id, body["id"].as_str().unwrap());

        let xsig = d.header("x-signature");
        let hex = xsig.strip_prefix("sha256=").unwrap_or_else(|| panic!("X-Signature {xsig}"));
        assert!(hex.len() == 64 && hex.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)), "{xsig}");
        assert!(d.header("user-agent").starts_with("callcenter/"), "{}", d.header("user-agent"));
        assert_eq!(d.header("content-type"), "application/json");
        let sig = d.header("webhook-signature");
        assert!(sig.starts_with("v1,") && !sig.contains(' '), "one signature outside rotations: {sig}");
    }
    let got = all.received();
    let ids: std::collections::HashSet<&str> = got.iter().map(|d| d.webhook_id.as_str()).collect();
    assert_eq!(ids.len(), 4, "each transition is its own event");
    all.assert_no_problems();

    let only = completed_only.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(only[0].event_type, "campaign.completed");
    assert_eq!(only[0].webhook_id, got[3].webhook_id, "one event, the same id at every endpoint");
    completed_only.assert_no_problems();
    let attempts = app.wait_for_attempts(&all_id, 4).await;
    assert!(attempts.iter().all(|a| a["statusCode"] == 200 && a["deliveryStatus"] == "succeeded"), "{attempts:?}");

    // An illegal transition commits nothing, so it emits nothing.
    let r = app.post(&format!("/v1/campaigns/{campaign}/status"), json!({"status": "paused"})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    all.assert_stays_at(4, Duration::from_millis(500)).await;
    completed_only.assert_stays_at(1, Duration::ZERO).await;
    calls_only.assert_stays_at(0, Duration::ZERO).await;
    disabled.assert_stays_at(0, Duration::ZERO).await;
    foreign.assert_stays_at(0, Duration::ZERO).await;

    // Cancelling is the other way a campaign ends: campaign.completed with status cancelled.
    let second = app.create_campaign().await;
    app.set_campaign_status(&second, "cancelled").await;
    let only = completed_only.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(only[1].body["data"]["campaignId"], second.as_str());
    assert_eq!(only[1].body["data"]["status"], "cancelled");
    let got = all.wait_for(5, Duration::from_secs(10)).await;
    assert_eq!(got[4].event_type, "campaign.completed");
}

/// A receiver that never answers costs its own deliveries 10 s each, and nobody else anything.
#[tokio::test]
async fn a_hanging_receiver_times_out_without_delaying_others() {
    let app = spawn_app(Backend::Sqlite, true).await;
    let slow = Receiver::start().await;
    slow.set_mode(Mode::Hang);
    let (slow_id, secret) = app.create_endpoint(&slow.url(), json!(["*"])).await;
    slow.set_secret(&secret);
    let fast = Receiver::start().await;
    let (fast_id, secret) = app.create_endpoint(&fast.url(), json!(["*"])).await;
    fast.set_secret(&secret);

    let campaign = app.create_campaign().await;
    let started = Instant::now();
    // More events than the slow endpoint's concurrency, so its queue backs up.
    app.set_campaign_status(&campaign, "active").await;
    for _ in 0..12 {
        app.set_campaign_status(&campaign, "paused").await;
        app.set_campaign_status(&campaign, "active").await;
    }
    let got = fast.wait_for(25, Duration::from_secs(5)).await;
    assert!(got.iter().all(|d| d.at - started < Duration::from_secs(5)), "the fast receiver waited for the slow one");
    slow.wait_for(1, Duration::from_secs(3)).await;
    let fast_attempts = app.wait_for_attempts(&fast_id, 25).await;
    assert!(fast_attempts.iter().all(|a| a["statusCode"] == 200));

    let attempts = app.wait_for_attempts(&slow_id, 1).await;
    assert!(started.elapsed() >= Duration::from_secs(9), "the relay gave up before 10 s");
    let a = &attempts[0];
    assert_eq!(a["statusCode"], Value::Null, "{a}");
    assert!(a["error"].as_str().is_some_and(|e| e.contains("timed out")), "{a}");
    assert!(a["latencyMs"].as_i64().is_some_and(|ms| (9_000..12_000).contains(&ms)), "{a}");
    assert!(a["nextRetryAt"].is_string(), "{a}");
    assert_eq!(a["deliveryStatus"], "pending");
    slow.assert_no_problems();
    fast.assert_no_problems();
}

/// A receiver whose port is closed: the attempt is logged with the connection error and
/// retried; once it is back, the retry gets through.
#[tokio::test]
async fn a_receiver_that_is_down_gets_the_retry_once_it_is_back() {
    let app = spawn_app(Backend::Sqlite, true).await;
    let rx = Receiver::start().await;
    let (id, secret) = app.create_endpoint(&rx.url(), json!(["*"])).await;
    rx.set_secret(&secret);
    rx.down().await;
    let event = app.send_test_event(&id).await;
    let attempts = app.wait_for_attempts(&id, 1).await;
    let a = &attempts[0];
    assert_eq!(a["statusCode"], Value::Null, "{a}");
    assert!(a["error"].as_str().is_some_and(|e| e.starts_with("connection failed")), "{a}");
    assert_eq!(a["deliveryStatus"], "pending");

    rx.up().await;
    app.clock.advance(6);
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].webhook_id, event);
    rx.assert_no_problems();
    let attempts = app.wait_for_attempts(&id, 2).await;
    assert!(attempts.iter().any(|a| a["statusCode"] == 200 && a["deliveryStatus"] == "succeeded"), "{attempts:?}");
}

/// Deliveries already claimed and queued behind a slow endpoint's concurrency limit are
/// not sent once the endpoint is disabled.
#[tokio::test]
async fn disabling_an_endpoint_stops_its_queued_deliveries() {
    let app = spawn_app(Backend::Sqlite, true).await;
    let rx = Receiver::start().await;
    rx.set_mode(Mode::Slow(Duration::from_millis(1500)));
    let (id, secret) = app.create_endpoint(&rx.url(), json!(["*"])).await;
    rx.set_secret(&secret);
    for _ in 0..40 {
        app.send_test_event(&id).await;
    }
    // The first wave (the per-endpoint concurrency limit) is in flight, the rest queued.
    let in_flight = eventually(Duration::from_secs(5), "the first wave of deliveries", || async {
        let n = rx.count();
        tokio::time::sleep(Duration::from_millis(300)).await;
        (n > 0 && rx.count() == n).then_some(n)
    })
    .await;
    assert!(in_flight < 40, "no queue formed: {in_flight} deliveries at once");
    let r = app.patch(&format!("/v1/webhooks/{id}"), json!({"enabled": false})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.wait_for_attempts(&id, in_flight).await;
    rx.assert_stays_at(in_flight, Duration::from_millis(1000)).await;
    rx.assert_no_problems();
}
