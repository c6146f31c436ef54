//! Campaigns that dial: the dialer calls a campaign's audience through the simulator carrier
//! (real calls, real speech), within its concurrency limit, skips do-not-call contacts,
//! retries the unreached after `retryInterval` and calls back at the time a callee asked for
//! (the test clock moves time forward), and completes the campaign; schedules start campaigns and keep them within calling hours and
//! dates; the lease lets one node dial a campaign at a time.

use std::time::Duration;

use callcenter::clock::Clock;
use callcenter::domain::{Id, Timestamp};
use callcenter::store::campaign_dialing;
use serde_json::{Value, json};

use crate::app;
use crate::common::{Backend, eventually_every, start_app, start_app_on};
use crate::receiver::Receiver;

async fn contact(app: &crate::common::TestApp, name: &str, phone: &str, do_not_call: bool) -> String {
    let (status, body) = app
        .post(
            "/v1/contacts",
            json!({"name": name, "phone": phone, "doNotCall": do_not_call,
                   "customFields": {"productName": "Premium Widget"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn campaign_calls(app: &crate::common::TestApp, campaign: &str) -> Vec<Value> {
    let (status, body) = app.get_json(&format!("/v1/calls?campaignId={campaign}&limit=100")).await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

fn ended(call: &Value) -> bool {
    matches!(call["status"].as_str(), Some("completed" | "failed" | "cancelled"))
}

#[tokio::test]
async fn a_campaign_calls_its_audience_within_its_limit_retries_the_unreached_and_completes() {
    let app = app().await;
    let receiver = Receiver::start().await;
    let (status, hook) = app
        .post(
            "/v1/webhooks",
            json!({"url": receiver.url(), "events": ["campaign.started", "campaign.completed", "campaign.paused"]}),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    receiver.set_secret(hook["secret"].as_str().unwrap());
    let template = app.sales_template().await;
    let agrees = contact(&app, "John Smith", "+15550100001", false).await;
    let callback = contact(&app, "Carl Later", "+15550100004", false).await;
    // Three that ring 4 s unanswered: calls under way without loading the speech models.
    let mut unanswered = Vec::new();
    for name in ["Nick Noanswer", "Nell Noanswer", "Ned Noanswer"] {
        unanswered.push(contact(&app, name, "+15550100007", false).await);
    }
    let busy = contact(&app, "Bob Busy", "+15550100008", false).await;
    let do_not_call = contact(&app, "Dora Never", "+15550100005", true).await;
    let audience = [&agrees, &callback, &unanswered[0], &unanswered[1], &unanswered[2], &busy, &do_not_call];

    let (status, campaign) = app
        .post(
            "/v1/campaigns",
            json!({"name": "Widgets", "templateId": template, "contacts": audience,
                   "callSettings": {"maxConcurrentCalls": 2, "callerId": "+15559876543",
                                    "retrySettings": {"maxAttempts": 2, "retryInterval": 5}}}),
        )
        .await;
    assert_eq!(status, 201, "{campaign}");
    let id = campaign["id"].as_str().unwrap().to_owned();
    // Without a schedule it waits to be activated.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(campaign_calls(&app, &id).await.is_empty(), "a scheduled campaign without a schedule dialed");
    let (status, body) = app.post(&format!("/v1/campaigns/{id}/status"), json!({"status": "active"})).await;
    assert_eq!(status, 200, "{body}");

    // Until the first attempts are over, never more than two calls of the campaign at once
    // (five of them last seconds, so an ignored limit shows).
    let most_at_once = std::cell::Cell::new(0);
    let first_round =
        eventually_every(Duration::from_millis(200), Duration::from_secs(180), "the first attempts", || async {
            let calls = campaign_calls(&app, &id).await;
            most_at_once.set(most_at_once.get().max(calls.iter().filter(|c| !ended(c)).count()));
            (calls.len() == 6 && calls.iter().all(ended)).then_some(calls)
        })
        .await;
    let most_at_once = most_at_once.get();
    assert!(most_at_once <= 2, "{most_at_once} calls at once with maxConcurrentCalls 2");
    let by_contact = |calls: &[Value], contact: &str| -> Vec<Value> {
        calls.iter().filter(|c| c["contactId"] == contact).cloned().collect()
    };
    for call in &first_round {
        assert_eq!(call["campaignId"], id.as_str(), "{call}");
        assert_eq!(call["templateId"], template.as_str(), "{call}");
        assert_eq!(call["callerId"], "+15559876543", "{call}");
        assert_eq!(call["variables"]["productName"], "Premium Widget", "{call}");
    }
    assert!(by_contact(&first_round, &do_not_call).is_empty(), "a do-not-call contact was called");
    assert_eq!(by_contact(&first_round, &agrees)[0]["outcome"], "successful", "{first_round:#?}");
    for contact in &unanswered {
        assert_eq!(by_contact(&first_round, contact)[0]["outcome"], "noAnswer", "{first_round:#?}");
    }
    assert_eq!(by_contact(&first_round, &callback)[0]["outcome"], "callbackRequested", "{first_round:#?}");
    assert_eq!(by_contact(&first_round, &busy)[0]["outcome"], "busy", "{first_round:#?}");
    // "Can you call me back tomorrow at 3 pm?": no schedule, so 15:00 UTC the next day.
    let asked = &by_contact(&first_round, &callback)[0];
    let ended_at = Timestamp::parse(asked["endedAt"].as_str().unwrap()).unwrap();
    let tomorrow = ended_at.as_jiff().to_zoned(jiff::tz::TimeZone::UTC).date().tomorrow().unwrap();
    assert_eq!(asked["callbackAt"], format!("{tomorrow}T15:00:00Z"), "{asked}");
    let callback_at = Timestamp::parse(asked["callbackAt"].as_str().unwrap()).unwrap();
    assert!(by_contact(&first_round, &agrees)[0].get("callbackAt").is_none(), "callbackAt only with a callback");

    // The unreached are tried again only once retryInterval (5 min) has passed.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(campaign_calls(&app, &id).await.len(), 6, "retried before retryInterval");
    let (_, now_campaign) = app.get_json(&format!("/v1/campaigns/{id}")).await;
    assert_eq!(now_campaign["status"], "active", "{now_campaign}");
    app.clock.advance(5 * 60 + 1);
    let all = eventually_every(Duration::from_millis(250), Duration::from_secs(60), "the retry", || async {
        let calls = campaign_calls(&app, &id).await;
        (calls.len() == 10 && calls.iter().all(ended)).then_some(calls)
    })
    .await;
    for contact in unanswered.iter().chain([&busy]) {
        let calls = by_contact(&all, contact);
        assert_eq!(calls.len(), 2, "{all:#?}");
        assert_eq!(calls[0]["outcome"], calls[1]["outcome"], "{calls:#?}");
    }

    // The callback is made when asked for (the clock moved past it), once: the callee asks
    // again, and maxAttempts (2) is reached.
    app.clock.advance(callback_at.seconds_since(app.clock.now()) + 1);
    let all = eventually_every(Duration::from_millis(250), Duration::from_secs(120), "the callback", || async {
        let calls = campaign_calls(&app, &id).await;
        (calls.len() == 11 && calls.iter().all(ended)).then_some(calls)
    })
    .await;
    let callback_calls = by_contact(&all, &callback);
    assert_eq!(callback_calls.len(), 2, "{all:#?}");
    let started_at = Timestamp::parse(callback_calls[0]["startedAt"].as_str().unwrap()).unwrap();
    assert!(started_at >= callback_at, "called back at {started_at}, asked for {callback_at}");

    // Nobody is left, and the campaign completes.
    let done = eventually_every(Duration::from_millis(250), Duration::from_secs(20), "completion", || async {
        let (_, c) = app.get_json(&format!("/v1/campaigns/{id}")).await;
        (c["status"] == "completed").then_some(c)
    })
    .await;
    assert_eq!(done["totalContacts"], 7, "{done}");
    assert_eq!(done["completedCalls"], 3, "{done}");
    assert_eq!(done["successfulCalls"], 1, "{done}");
    assert_eq!(done["progress"], 42.9, "{done}");
    assert!(done["startedAt"].is_string() && done["lastRunAt"].is_string(), "{done}");
    // Nothing more is dialed after completion, even much later.
    app.clock.advance(3600);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(campaign_calls(&app, &id).await.len(), 11);

    let received = receiver.wait_for(2, Duration::from_secs(20)).await;
    let events: Vec<(&str, &Value)> = received.iter().map(|r| (r.event_type.as_str(), &r.body["data"])).collect();
    assert_eq!(events.iter().map(|e| e.0).collect::<Vec<_>>(), ["campaign.started", "campaign.completed"]);
    assert_eq!(events[1].1["campaignId"], id.as_str(), "{:?}", events[1]);
    assert_eq!(events[1].1["status"], "completed", "{:?}", events[1]);
    assert_eq!(events[1].1["totalContacts"], 7, "{:?}", events[1]);
    assert_eq!(events[1].1["completedCalls"], 3, "{:?}", events[1]);
    assert_eq!(events[1].1["successfulCalls"], 1, "{:?}", events[1]);
    receiver.assert_no_problems();
}

/// A schedule that started an hour ago but has no calling day today: the campaign becomes
/// active on its own and calls nobody; once its `endDate` passes it completes, uncalled.
#[tokio::test]
async fn a_schedule_starts_the_campaign_keeps_it_to_its_days_and_ends_it() {
    let app = app().await;
    let template = app.sales_template().await;
    let person = contact(&app, "John Smith", "+15550100001", false).await;
    let now = Timestamp::now();
    let today = now.as_jiff().to_zoned(jiff::tz::TimeZone::UTC).weekday().to_monday_one_offset();
    let other_days: Vec<i8> = (1..=7).filter(|d| *d != today).collect();
    let (status, campaign) = app
        .post(
            "/v1/campaigns",
            json!({"name": "Not today", "templateId": template, "contacts": [person],
                   "schedule": {"startDate": now.plus_seconds(-3600).to_string(),
                                "endDate": now.plus_seconds(600).to_string(),
                                "timeZone": "UTC", "callHours": {"start": "00:00", "end": "23:59"},
                                "daysOfWeek": other_days}}),
        )
        .await;
    assert_eq!(status, 201, "{campaign}");
    let id = campaign["id"].as_str().unwrap().to_owned();
    let started = eventually_every(Duration::from_millis(200), Duration::from_secs(10), "the start", || async {
        let (_, c) = app.get_json(&format!("/v1/campaigns/{id}")).await;
        (c["status"] == "active").then_some(c)
    })
    .await;
    assert!(started["startedAt"].is_string(), "{started}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(campaign_calls(&app, &id).await.is_empty(), "called outside its days");

    app.clock.advance(601);
    let done = eventually_every(Duration::from_millis(200), Duration::from_secs(10), "the end", || async {
        let (_, c) = app.get_json(&format!("/v1/campaigns/{id}")).await;
        (c["status"] == "completed").then_some(c)
    })
    .await;
    assert_eq!(done["completedCalls"], 0, "{done}");
    assert!(campaign_calls(&app, &id).await.is_empty());
}

/// One node dials a campaign at a time: the lease is the node's until it runs out.
#[tokio::test]
async fn the_dialing_lease_is_held_by_one_node_until_it_runs_out() {
    // No dialer of its own: the test plays two nodes.
    let app = start_app(Backend::Postgres, |config| config.telephony.dispatch_calls = false).await;
    let template = app.sales_template().await;
    let person = contact(&app, "John Smith", "+15550100001", false).await;
    let (status, campaign) =
        app.post("/v1/campaigns", json!({"name": "Lease", "templateId": template, "contacts": [person]})).await;
    assert_eq!(status, 201, "{campaign}");
    let id = Id::from_trusted(campaign["id"].as_str().unwrap().to_owned());
    let db = &app.state.db;
    let now = Timestamp::now();
    // Only an active campaign can be leased.
    assert!(!campaign_dialing::claim(db, &id, "node-a", now, now.plus_seconds(15)).await.unwrap());
    sqlx::query("UPDATE campaigns SET status = 'active' WHERE id = $1")
        .bind(id.as_str())
        .execute(&db.write)
        .await
        .unwrap();
    let t = now;
    assert!(campaign_dialing::claim(db, &id, "node-a", t, t.plus_seconds(15)).await.unwrap());
    assert!(!campaign_dialing::claim(db, &id, "node-b", t.plus_seconds(5), t.plus_seconds(20)).await.unwrap());
    assert!(campaign_dialing::claim(db, &id, "node-a", t.plus_seconds(5), t.plus_seconds(20)).await.unwrap());
    assert!(!campaign_dialing::claim(db, &id, "node-b", t.plus_seconds(19), t.plus_seconds(34)).await.unwrap());
    assert!(campaign_dialing::claim(db, &id, "node-b", t.plus_seconds(21), t.plus_seconds(36)).await.unwrap());
    assert!(!campaign_dialing::claim(db, &id, "node-a", t.plus_seconds(22), t.plus_seconds(37)).await.unwrap());
}

/// Two gateway nodes on one PostgreSQL database, both dialing: every contact is called exactly
/// once. The numbers are no simulator persona and no carrier is configured, so each call
/// fails at once ("no carrier") and the dialers race through the audience.
#[tokio::test]
async fn two_nodes_on_one_database_call_each_contact_once() {
    let first = crate::app_on(Backend::Postgres).await;
    let second = start_app_on(first.database_url.clone(), |config| {
        config.rate_limit_per_minute = 1_000_000;
        config.telephony.models_dir = crate::models_dir();
        config.telephony.dispatch_calls = true;
    })
    .await;
    let template = first.sales_template().await;
    let mut audience = Vec::new();
    for i in 0..30 {
        audience.push(contact(&first, &format!("Person {i}"), &format!("+1555020{i:04}"), false).await);
    }
    let (status, campaign) = first
        .post(
            "/v1/campaigns",
            json!({"name": "Two nodes", "templateId": template, "contacts": audience,
                   "callSettings": {"maxConcurrentCalls": 5,
                                    "retrySettings": {"maxAttempts": 1, "retryInterval": 1}}}),
        )
        .await;
    assert_eq!(status, 201, "{campaign}");
    let id = campaign["id"].as_str().unwrap().to_owned();
    let (status, body) = second.post(&format!("/v1/campaigns/{id}/status"), json!({"status": "active"})).await;
    assert_eq!(status, 200, "{body}");
    let done = eventually_every(Duration::from_millis(250), Duration::from_secs(90), "completion", || async {
        let (_, c) = second.get_json(&format!("/v1/campaigns/{id}")).await;
        (c["status"] == "completed").then_some(c)
    })
    .await;
    let calls = campaign_calls(&first, &id).await;
    assert_eq!(calls.len(), 30, "{done}");
    let mut called: Vec<&str> = calls.iter().map(|c| c["contactId"].as_str().unwrap()).collect();
    called.sort_unstable();
    called.dedup();
    assert_eq!(called.len(), 30, "a contact was called twice");
    assert!(calls.iter().all(|c| c["status"] == "failed"), "{calls:#?}");
    assert_eq!(done["completedCalls"], 0, "{done}");
}
