//! The retry schedule (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, each with
//! +-10 % jitter), on the app's injectable clock: the test moves time instead of sleeping.

use std::time::Duration;

use serde_json::{Value, json};

use crate::both_backends;
use crate::receiver::{Mode, Receiver};
use crate::support::*;

/// The waits after attempts 1..=7 (attempt 1 is immediate; after attempt 8 the delivery fails).
const WAITS: [i64; 7] = [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600];

/// How long the relay gets to show that it does NOT send early (its poll interval is 250 ms).
const QUIET: Duration = Duration::from_millis(600);

both_backends!(
    a_failing_receiver_gets_every_scheduled_attempt_then_the_delivery_fails,
    a_receiver_that_recovers_gets_the_next_due_attempt,
    an_endpoint_failing_for_five_days_is_disabled,
);

async fn a_failing_receiver_gets_every_scheduled_attempt_then_the_delivery_fails(b: Backend) {
    let app = spawn_app(b, true).await;
    let rx = Receiver::start().await;
    rx.set_mode(Mode::Fail);
    let (id, secret) = app.create_endpoint(&rx.url(), json!(["*"])).await;
    rx.set_secret(&secret);
    let event = app.send_test_event(&id).await;

    rx.wait_for(1, Duration::from_secs(5)).await;
    for (i, wait) in WAITS.into_iter().enumerate() {
        let made = i + 1;
        // The attempt must be recorded before time moves, or it would be scheduled from the new time.
        let attempts = app.wait_for_attempts(&id, made).await;
        let last = &attempts[0];
        assert_eq!(last["statusCode"], 500, "{last}");
        assert_eq!(last["error"], "receiver answered HTTP 500", "{last}");
        assert_eq!(last["deliveryStatus"], "pending");
        let gap = parse_time(&last["nextRetryAt"]).as_second() - parse_time(&last["attemptedAt"]).as_second();
        let (low, high) = (wait * 9 / 10 - 1, wait * 11 / 10 + 1);
        assert!((low..=high).contains(&gap), "attempt {made}: next retry in {gap} s, expected ~{wait} s");
        if made <= 3 || made == WAITS.len() {
            // Not early: nothing comes before the clock reaches the retry time.
            rx.assert_stays_at(made, QUIET).await;
        }
        app.clock.advance(wait * 11 / 10 + 1);
        rx.wait_for(made + 1, Duration::from_secs(5)).await;
    }
    let attempts = app.wait_for_attempts(&id, 8).await;
    assert_eq!(attempts.len(), 8);
    let last = &attempts[0];
    assert_eq!(last["statusCode"], 500);
    assert_eq!(last["nextRetryAt"], Value::Null, "the schedule is over: {last}");
    assert_eq!(last["deliveryStatus"], "failed");
    assert!(attempts.iter().all(|a| a["eventId"] == event.as_str() && a["deliveryId"] == last["deliveryId"]));
    assert!(rx.received().iter().all(|d| d.webhook_id == event), "every retry carries the same webhook-id");

    app.clock.advance(100 * 3600);
    rx.assert_stays_at(8, QUIET).await;
    // 28 hours of failures are not yet 5 days: the endpoint stays enabled.
    let r = app.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(r.body["enabled"], true, "{}", r.body);
    assert_time(&r.body["failingSince"]);

    // Manual redelivery of the failed delivery, once the receiver works again.
    rx.set_mode(Mode::Ok);
    let delivery = last["deliveryId"].as_str().unwrap();
    let r = app.post(&format!("/v1/webhooks/{id}/deliveries/{delivery}/retry"), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["deliveryId"], delivery);
    assert_eq!(r.body["status"], "pending");
    let got = rx.wait_for(9, Duration::from_secs(5)).await;
    assert_eq!(got[8].webhook_id, event);
    let attempts = app.wait_for_attempts(&id, 9).await;
    let newest = attempts.iter().find(|a| a["statusCode"] == 200).expect("a successful attempt is logged");
    assert_eq!(newest["deliveryStatus"], "succeeded");
    assert_eq!(newest["nextRetryAt"], Value::Null);
    rx.assert_no_problems();
    let r = app.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(r.body["failingSince"], Value::Null, "a success clears the failure record: {}", r.body);

    // A delivered event can be redelivered too.
    let r = app.post(&format!("/v1/webhooks/{id}/deliveries/{delivery}/retry"), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let got = rx.wait_for(10, Duration::from_secs(5)).await;
    assert_eq!(got[9].webhook_id, event);
    rx.assert_stays_at(10, QUIET).await;
}

async fn a_receiver_that_recovers_gets_the_next_due_attempt(b: Backend) {
    let app = spawn_app(b, true).await;
    let rx = Receiver::start().await;
    rx.set_mode(Mode::Fail);
    let (id, secret) = app.create_endpoint(&rx.url(), json!(["*"])).await;
    rx.set_secret(&secret);
    let event = app.send_test_event(&id).await;
    app.wait_for_attempts(&id, 1).await;
    app.clock.advance(6);
    rx.wait_for(2, Duration::from_secs(5)).await;
    app.wait_for_attempts(&id, 2).await;

    rx.set_mode(Mode::Ok);
    rx.assert_stays_at(2, QUIET).await;
    app.clock.advance(5 * 60 * 11 / 10 + 1);
    let got = rx.wait_for(3, Duration::from_secs(5)).await;
    assert!(got.iter().all(|d| d.webhook_id == event));
    let attempts = app.wait_for_attempts(&id, 3).await;
    let codes: Vec<&Value> = attempts.iter().map(|a| &a["statusCode"]).collect();
    assert_eq!(codes.iter().filter(|c| **c == 500).count(), 2, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert!(attempts.iter().all(|a| a["deliveryStatus"] == "succeeded"));
    let ok = attempts.iter().find(|a| a["statusCode"] == 200).unwrap();
    assert_eq!(ok["nextRetryAt"], Value::Null);
    assert_eq!(ok["error"], Value::Null);

    app.clock.advance(48 * 3600);
    rx.assert_stays_at(3, QUIET).await;
    rx.assert_no_problems();
}

async fn an_endpoint_failing_for_five_days_is_disabled(b: Backend) {
    let app = spawn_app(b, true).await;
    let rx = Receiver::start().await;
    rx.set_mode(Mode::Fail);
    let (id, secret) = app.create_endpoint(&rx.url(), json!(["*"])).await;
    rx.set_secret(&secret);
    let first = app.send_test_event(&id).await;
    app.wait_for_attempts(&id, 1).await;
    let r = app.get(&format!("/v1/webhooks/{id}")).await;
    let failing_since = parse_time(&r.body["failingSince"]);

    // Four days later the receiver still fails: a new event fails too, the endpoint lives on.
    app.clock.advance(4 * 24 * 3600);
    let second = app.send_test_event(&id).await;
    rx.wait_for(3, Duration::from_secs(5)).await; // first's 2nd attempt (overdue) and second's 1st
    app.wait_for_attempts(&id, 3).await;
    let r = app.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(r.body["enabled"], true, "{}", r.body);
    assert_eq!(parse_time(&r.body["failingSince"]), failing_since, "the failure record keeps its start");

    // Past 5 days, the next failed attempt disables the endpoint.
    app.clock.advance(24 * 3600 + 3600);
    rx.wait_for(4, Duration::from_secs(5)).await;
    let r = eventually(Duration::from_secs(5), "the endpoint to be disabled", || async {
        let r = app.get(&format!("/v1/webhooks/{id}")).await;
        (r.body["enabled"] == false).then_some(r)
    })
    .await;
    let reason = r.body["disabledReason"].as_str().unwrap_or_else(|| panic!("no disabledReason: {}", r.body));
    assert!(reason.contains("5 days"), "{reason}");
    // Deliveries sent just before the disable finish; then every arrival is in the log.
    let (attempts_when_disabled, received_when_disabled) =
        eventually(Duration::from_secs(5), "the log to catch up with the receiver", || async {
            let (attempts, received) = (app.attempts(&id).await.len(), rx.count());
            (attempts == received).then_some((attempts, received))
        })
        .await;

    // Its pending deliveries are not sent any more, and new events do not queue for it.
    rx.set_mode(Mode::Ok);
    app.clock.advance(48 * 3600);
    let campaign = app.create_campaign().await;
    app.set_campaign_status(&campaign, "active").await;
    // Both deliveries came due again and were closed without being sent.
    let attempts = eventually(Duration::from_secs(5), "the pending deliveries to be abandoned", || async {
        let attempts = app.attempts(&id).await;
        attempts.iter().all(|a| a["deliveryStatus"] == "failed").then_some(attempts)
    })
    .await;
    assert_eq!(attempts.len(), attempts_when_disabled, "no attempts after disabling: {attempts:?}");
    rx.assert_stays_at(received_when_disabled, Duration::from_millis(500)).await;
    let events: std::collections::HashSet<&str> = attempts.iter().filter_map(|a| a["eventId"].as_str()).collect();
    assert!(events.contains(first.as_str()) && events.contains(second.as_str()));

    // Re-enabling clears the failure record; new events flow again.
    let r = app.patch(&format!("/v1/webhooks/{id}"), json!({"enabled": true})).await;
    assert_eq!(r.body["enabled"], true, "{}", r.body);
    assert_eq!(r.body["disabledReason"], Value::Null);
    assert_eq!(r.body["failingSince"], Value::Null);
    app.set_campaign_status(&campaign, "paused").await;
    let got = rx.wait_for(received_when_disabled + 1, Duration::from_secs(5)).await;
    assert_eq!(got.last().unwrap().event_type, "campaign.paused");
    rx.assert_no_problems();
}
