//! `/v1/analytics`: every number checked against calls seeded with known outcomes,
//! durations and dates.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::campaigns::{SeedCall, account_id, create_campaign, seed_call, seed_template, spawn_busy_app};
use crate::helpers::*;

struct Seeded {
    app: TestApp,
    a: String,
    b: String,
    c: String,
}

/// Campaigns A, B, C (created in that order) and nine calls:
///
/// | # | effective time        | status    | outcome           | duration | campaign |
/// |---|-----------------------|-----------|-------------------|----------|----------|
/// | 1 | 2025-04-30T10:00:00Z  | completed | successful        | 100      | A        |
/// | 2 | 2025-05-01T00:00:00Z  | completed | successful        | 201      | A        |
/// | 3 | 2025-05-01T23:59:59Z  | completed | noAnswer          | -        | B        |
/// | 4 | 2025-05-04T12:00:00Z  | completed | voicemail         | 30       | A        |
/// | 5 | 2025-05-05T08:00:00Z  | completed | rejected          | 7        | B        |
/// | 6 | 2025-05-05T09:00:00Z  | failed    | failed            | -        | -        |
/// | 7 | 2025-05-06T10:00:00Z  | scheduled | -                 | -        | A        |
/// | 8 | 2025-05-31T23:59:59Z  | completed | callbackRequested | -        | -        |
/// | 9 | 2025-06-01T00:00:00Z  | completed | successful        | 1000     | B        |
///
/// 2025-05-04 is a Sunday and 2025-05-05 a Monday; 2025-05-31 is a Saturday.
async fn seeded(b: Backend) -> Seeded {
    let app = spawn_busy_app(b).await;
    let acme = account_id(&app, "acme").await;
    let template = seed_template(&app, &acme).await;
    let a = create_campaign(&app, &app.key, "A", &template, &[]).await;
    let bb = create_campaign(&app, &app.key, "B", &template, &[]).await;
    let c = create_campaign(&app, &app.key, "C", &template, &[]).await;
    let rows = [
        (Some("A"), "2025-04-30T10:00:00Z", "completed", Some("successful"), Some(100)),
        (Some("A"), "2025-05-01T00:00:00Z", "completed", Some("successful"), Some(201)),
        (Some("B"), "2025-05-01T23:59:59Z", "completed", Some("noAnswer"), None),
        (Some("A"), "2025-05-04T12:00:00Z", "completed", Some("voicemail"), Some(30)),
        (Some("B"), "2025-05-05T08:00:00Z", "completed", Some("rejected"), Some(7)),
        (None, "2025-05-05T09:00:00Z", "failed", Some("failed"), None),
        (Some("A"), "2025-05-06T10:00:00Z", "scheduled", None, None),
        (None, "2025-05-31T23:59:59Z", "completed", Some("callbackRequested"), None),
        (Some("B"), "2025-06-01T00:00:00Z", "completed", Some("successful"), Some(1000)),
    ];
    for (campaign, at, status, outcome, duration) in rows {
        let campaign_id = campaign.map(|n| if n == "A" { a.as_str() } else { bb.as_str() });
        let seed = if status == "scheduled" {
            SeedCall { campaign_id, status, outcome, duration, started_at: None, effective_at: at }
        } else {
            SeedCall { campaign_id, status, outcome, duration, started_at: Some(at), effective_at: at }
        };
        seed_call(&app, &acme, seed).await;
    }
    Seeded { app, a, b: bb, c }
}

fn outcomes(pairs: &[(&str, i64)]) -> Value {
    let mut all = json!({
        "successful": 0, "unsuccessful": 0, "noAnswer": 0, "busy": 0, "voicemail": 0,
        "rejected": 0, "callbackRequested": 0, "optedOut": 0, "failed": 0
    });
    for (k, v) in pairs {
        all[*k] = json!(v);
    }
    all
}

fn buckets(pairs: &[(&str, i64)]) -> Value {
    Value::Array(pairs.iter().map(|(d, n)| json!({"date": d, "calls": n})).collect())
}

async fn call_statistics_numbers_and_buckets(b: Backend) {
    let s = seeded(b).await;
    let app = &s.app;
    let r = app.get("/v1/analytics/calls?startDate=2025-04-30&endDate=2025-05-31").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalCalls"], 8);
    assert_eq!(r.body["completedCalls"], 6);
    assert_eq!(r.body["avgDuration"], 85, "338 / 4 = 84.5 rounds up");
    assert_eq!(r.body["successRate"], 33.3, "2 of 6 completed");
    assert_eq!(
        r.body["callsByOutcome"],
        outcomes(&[
            ("successful", 2),
            ("noAnswer", 1),
            ("voicemail", 1),
            ("rejected", 1),
            ("failed", 1),
            ("callbackRequested", 1)
        ])
    );
    assert_eq!(
        r.body["callsByTime"],
        buckets(&[
            ("2025-04-30", 1),
            ("2025-05-01", 2),
            ("2025-05-04", 1),
            ("2025-05-05", 2),
            ("2025-05-06", 1),
            ("2025-05-31", 1)
        ]),
        "groupBy defaults to day"
    );
    let r = app.get("/v1/analytics/calls?startDate=2025-04-30&endDate=2025-05-31&groupBy=day").await;
    assert_eq!(r.body["callsByTime"].as_array().unwrap().len(), 6);

    let r = app.get("/v1/analytics/calls?startDate=2025-04-30&endDate=2025-05-31&groupBy=week").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["callsByTime"],
        buckets(&[("2025-04-28", 4), ("2025-05-05", 3), ("2025-05-26", 1)]),
        "ISO weeks from Monday; Sunday 05-04 belongs to the week of 04-28"
    );
    assert_eq!(r.body["totalCalls"], 8, "grouping does not change the totals");

    let r = app.get("/v1/analytics/calls?startDate=2025-04-30&endDate=2025-05-31&groupBy=month").await;
    assert_eq!(r.body["callsByTime"], buckets(&[("2025-04-01", 1), ("2025-05-01", 7)]));

    // No range: everything.
    let r = app.get("/v1/analytics/calls?groupBy=month").await;
    assert_eq!(r.body["totalCalls"], 9);
    assert_eq!(r.body["completedCalls"], 7);
    assert_eq!(r.body["successRate"], 42.9, "3 of 7");
    assert_eq!(r.body["avgDuration"], 268, "1338 / 5 = 267.6");
    assert_eq!(r.body["callsByTime"], buckets(&[("2025-04-01", 1), ("2025-05-01", 7), ("2025-06-01", 1)]));
}

async fn call_statistics_date_range_and_campaign_filter(b: Backend) {
    let s = seeded(b).await;
    let app = &s.app;
    // A bare endDate covers its whole day; a bare startDate starts at midnight.
    let r = app.get("/v1/analytics/calls?startDate=2025-05-01&endDate=2025-05-01").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalCalls"], 2);
    assert_eq!(r.body["callsByTime"], buckets(&[("2025-05-01", 2)]));
    let r = app.get("/v1/analytics/calls?endDate=2025-05-01").await;
    assert_eq!(r.body["totalCalls"], 3);
    let r = app.get("/v1/analytics/calls?startDate=2025-05-31").await;
    assert_eq!(r.body["totalCalls"], 2);
    // Date-times are exact.
    let r = app.get("/v1/analytics/calls?startDate=2025-05-01T00:00:01Z&endDate=2025-05-05T08:00:00Z").await;
    assert_eq!(r.body["totalCalls"], 3, "#3, #4, #5");
    let r =
        app.get("/v1/analytics/calls?startDate=2025-05-01T02:00:00%2B02:00&endDate=2025-05-01T02:00:00%2B02:00").await;
    assert_eq!(r.body["totalCalls"], 1, "offsets are normalised to UTC: #2 at midnight UTC");

    let r = app.get(&format!("/v1/analytics/calls?campaignId={}&startDate=2025-04-30&endDate=2025-05-31", s.a)).await;
    assert_eq!(r.body["totalCalls"], 4);
    assert_eq!(r.body["completedCalls"], 3);
    assert_eq!(r.body["successRate"], 66.7);
    assert_eq!(r.body["avgDuration"], 110, "331 / 3");
    assert_eq!(r.body["callsByOutcome"], outcomes(&[("successful", 2), ("voicemail", 1)]));
    let r = app.get(&format!("/v1/analytics/calls?campaignId={}", s.c)).await;
    assert_eq!(r.body["totalCalls"], 0);
    assert_eq!(r.body["successRate"], 0.0);
    assert_eq!(r.body["avgDuration"], 0);
    assert_eq!(r.body["callsByTime"], json!([]));
    assert_eq!(r.body["callsByOutcome"], outcomes(&[]));

    for (query, field) in [
        ("groupBy=year", "groupBy"),
        ("groupBy=Day", "groupBy"),
        ("startDate=yesterday", "startDate"),
        ("endDate=2025-13-01", "endDate"),
        ("startDate=2025-05-02&endDate=2025-05-01", "endDate"),
        ("campaignId=123", "campaignId"),
        // Far-future bounds once overflowed jiff in the handler (a panic, no response).
        ("startDate=2025-05-01&endDate=9999-12-30", "endDate"),
        ("endDate=9999-12-31T23:59:59Z", "endDate"),
        ("startDate=0001-01-01", "startDate"),
    ] {
        let r = app.get(&format!("/v1/analytics/calls?{query}")).await;
        assert_eq!(r.status, 400, "{query}");
        assert_eq!(r.error_code(), "invalid_parameter");
        assert_eq!(r.body["error"]["details"]["field"], field, "{query}");
    }
}

async fn campaign_performance_numbers(b: Backend) {
    let s = seeded(b).await;
    let app = &s.app;
    let r = app.get("/v1/analytics/campaigns?startDate=2025-04-30&endDate=2025-05-31").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["campaigns"],
        json!([
            {"id": s.c, "name": "C", "totalCalls": 0, "completedCalls": 0, "successfulCalls": 0, "conversionRate": 0.0, "avgDuration": 0},
            {"id": s.b, "name": "B", "totalCalls": 2, "completedCalls": 2, "successfulCalls": 0, "conversionRate": 0.0, "avgDuration": 7},
            {"id": s.a, "name": "A", "totalCalls": 4, "completedCalls": 3, "successfulCalls": 2, "conversionRate": 66.7, "avgDuration": 110},
        ]),
        "newest first"
    );
    assert_eq!(
        r.body["overall"],
        json!({"totalCampaigns": 3, "totalCalls": 6, "avgConversionRate": 33.4, "avgDuration": 85}),
        "conversion mean over A and B (C has no completed call): 33.35 rounds up; durations 338 / 4"
    );

    let r = app.get("/v1/analytics/campaigns").await;
    let b_line = r.body["campaigns"].as_array().unwrap().iter().find(|c| c["name"] == "B").unwrap().clone();
    assert_eq!(
        b_line,
        json!({"id": s.b, "name": "B", "totalCalls": 3, "completedCalls": 3, "successfulCalls": 1, "conversionRate": 33.3, "avgDuration": 504})
    );
    assert_eq!(r.body["overall"]["totalCalls"], 7);
    assert_eq!(r.body["overall"]["avgConversionRate"], 50.0, "(66.7 + 33.3) / 2");

    let r = app.get(&format!("/v1/analytics/campaigns?campaignIds={},{}&endDate=2025-05-31", s.a, s.b)).await;
    let names: Vec<&str> =
        r.body["campaigns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["B", "A"]);
    assert_eq!(r.body["overall"]["totalCampaigns"], 2);

    // Unknown and other accounts' ids are silently absent.
    let other = app.key_for_account("globex").await;
    let globex = account_id(app, "globex").await;
    let their_template = seed_template(app, &globex).await;
    let theirs = create_campaign(app, &other, "Theirs", &their_template, &[]).await;
    let unknown = callcenter::domain::Id::generate();
    let r = app.get(&format!("/v1/analytics/campaigns?campaignIds={}, {theirs},{unknown}", s.a)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["campaigns"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["campaigns"][0]["name"], "A");
    let r = app.get(&format!("/v1/analytics/campaigns?campaignIds={unknown}")).await;
    assert_eq!(
        r.body,
        json!({"campaigns": [], "overall": {"totalCampaigns": 0, "totalCalls": 0, "avgConversionRate": 0.0, "avgDuration": 0}})
    );

    for (query, field) in [
        ("campaignIds=abc", "campaignIds"),
        (&format!("campaignIds={},nope", s.a) as &str, "campaignIds"),
        ("startDate=soon", "startDate"),
        ("startDate=2025-06-01&endDate=2025-05-01", "endDate"),
    ] {
        let r = app.get(&format!("/v1/analytics/campaigns?{query}")).await;
        assert_eq!(r.status, 400, "{query}");
        assert_eq!(r.body["error"]["details"]["field"], field, "{query}");
    }
    let many = (0..101).map(|_| callcenter::domain::Id::generate().into_string()).collect::<Vec<_>>().join(",");
    let r = app.get(&format!("/v1/analytics/campaigns?campaignIds={many}")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["details"]["field"], "campaignIds");
}

async fn analytics_are_isolated_between_accounts(b: Backend) {
    let s = seeded(b).await;
    let app = &s.app;
    let other = app.key_for_account("globex").await;
    let globex = account_id(app, "globex").await;
    let r = app.send(Method::GET, "/v1/analytics/calls", Some(&other), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"totalCalls": 0, "completedCalls": 0, "avgDuration": 0, "successRate": 0.0, "callsByOutcome": outcomes(&[]), "callsByTime": []})
    );
    let r = app.send(Method::GET, "/v1/analytics/campaigns", Some(&other), None).await;
    assert_eq!(r.body["campaigns"], json!([]));
    // Asking for my campaign by id gives them nothing either.
    let r = app.send(Method::GET, &format!("/v1/analytics/calls?campaignId={}", s.a), Some(&other), None).await;
    assert_eq!(r.body["totalCalls"], 0);
    let r = app.send(Method::GET, &format!("/v1/analytics/campaigns?campaignIds={}", s.a), Some(&other), None).await;
    assert_eq!(r.body["campaigns"], json!([]));

    // Their calls, even tagged with my campaign's id, never reach my numbers.
    seed_call(
        app,
        &globex,
        SeedCall {
            campaign_id: Some(&s.a),
            outcome: Some("successful"),
            duration: Some(9999),
            started_at: Some("2025-05-02T10:00:00Z"),
            ..Default::default()
        },
    )
    .await;
    let r = app.get("/v1/analytics/calls?startDate=2025-04-30&endDate=2025-05-31").await;
    assert_eq!(r.body["totalCalls"], 8);
    assert_eq!(r.body["avgDuration"], 85);
    let r = app.get("/v1/analytics/campaigns?startDate=2025-04-30&endDate=2025-05-31").await;
    assert_eq!(r.body["overall"]["totalCalls"], 6);
    let r = app.send(Method::GET, "/v1/analytics/calls", Some(&other), None).await;
    assert_eq!(r.body["totalCalls"], 1);
    assert_eq!(r.body["callsByTime"], buckets(&[("2025-05-02", 1)]));
}

both_backends!(
    call_statistics_numbers_and_buckets,
    call_statistics_date_range_and_campaign_filter,
    campaign_performance_numbers,
    analytics_are_isolated_between_accounts,
);
