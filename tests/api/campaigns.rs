//! `/v1/campaigns`. Templates, contact lists and calls are seeded with SQL (their
//! endpoints are built elsewhere); contacts go through `POST /v1/contacts`.

use callcenter::domain::{Id, Timestamp};
use callcenter::store::accounts;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::*;

/// A server whose rate limit does not get in the way of tests that make many requests.
pub(crate) async fn spawn_busy_app(b: Backend) -> TestApp {
    spawn_app_with(b, |c| c.rate_limit_per_minute = 100_000).await
}

pub(crate) async fn account_id(app: &TestApp, name: &str) -> String {
    accounts::find_account(&app.state.db, name).await.unwrap().expect("account exists").into_string()
}

/// `2025-05-20T15:30:00Z` in the database's time format.
pub(crate) fn db_time(rfc3339: &str) -> String {
    Timestamp::parse(rfc3339).expect("test time").to_db()
}

pub(crate) async fn seed_template(app: &TestApp, account: &str) -> String {
    let id = Id::generate().into_string();
    let now = Timestamp::now().to_db();
    sqlx::query(
        "INSERT INTO templates (id, account_id, name, description, industry, steps, variables, created_at, updated_at) \
         VALUES ($1, $2, $3, NULL, $4, $5, $6, $7, $8)",
    )
    .bind(id.clone())
    .bind(account.to_owned())
    .bind("Sales Outreach")
    .bind("sales")
    .bind(r#"[{"id":"1","type":"greeting","content":"Hello"}]"#)
    .bind("[]")
    .bind(now.clone())
    .bind(now)
    .execute(&app.state.db.write)
    .await
    .expect("seed template");
    id
}

pub(crate) async fn seed_list(app: &TestApp, account: &str, members: &[&str]) -> String {
    let id = Id::generate().into_string();
    let now = Timestamp::now().to_db();
    sqlx::query(
        "INSERT INTO contact_lists (id, account_id, name, description, created_at, updated_at) \
         VALUES ($1, $2, $3, NULL, $4, $5)",
    )
    .bind(id.clone())
    .bind(account.to_owned())
    .bind("Leads")
    .bind(now.clone())
    .bind(now.clone())
    .execute(&app.state.db.write)
    .await
    .expect("seed list");
    for member in members {
        sqlx::query("INSERT INTO contact_list_members (list_id, contact_id, added_at) VALUES ($1, $2, $3)")
            .bind(id.clone())
            .bind((*member).to_owned())
            .bind(now.clone())
            .execute(&app.state.db.write)
            .await
            .expect("seed list member");
    }
    id
}

/// A contact of the key's account, created through the API.
pub(crate) async fn create_contact(app: &TestApp, key: &str, n: u32) -> String {
    let body = json!({"name": format!("Contact {n}"), "phone": format!("+1555100{n:04}")});
    let r = app.send(Method::POST, "/v1/contacts", Some(key), Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

/// A call row as the call path would leave it.
#[derive(Clone, Debug)]
pub(crate) struct SeedCall<'a> {
    pub campaign_id: Option<&'a str>,
    pub status: &'a str,
    pub outcome: Option<&'a str>,
    pub duration: Option<i64>,
    /// RFC 3339; also `effective_at`.
    pub started_at: Option<&'a str>,
    /// RFC 3339 `effective_at` of a call that has not started.
    pub effective_at: &'a str,
}

impl Default for SeedCall<'_> {
    fn default() -> Self {
        SeedCall {
            campaign_id: None,
            status: "completed",
            outcome: None,
            duration: None,
            started_at: None,
            effective_at: "2025-05-20T15:30:00Z",
        }
    }
}

pub(crate) async fn seed_call(app: &TestApp, account: &str, call: SeedCall<'_>) -> String {
    let id = Id::generate().into_string();
    let now = Timestamp::now().to_db();
    let effective = db_time(call.started_at.unwrap_or(call.effective_at));
    sqlx::query(
        "INSERT INTO calls (id, account_id, status, direction, phone, contact_id, template_id, campaign_id, variables, \
         scheduled_at, caller_id, started_at, ended_at, duration, recording_url, transcript_url, outcome, notes, \
         effective_at, created_at, updated_at) \
         VALUES ($1, $2, $3, 'outbound', '+15551234567', NULL, NULL, $4, '{}', NULL, NULL, $5, NULL, $6, NULL, NULL, \
         $7, NULL, $8, $9, $10)",
    )
    .bind(id.clone())
    .bind(account.to_owned())
    .bind(call.status.to_owned())
    .bind(call.campaign_id.map(str::to_owned))
    .bind(call.started_at.map(db_time))
    .bind(call.duration)
    .bind(call.outcome.map(str::to_owned))
    .bind(effective)
    .bind(now.clone())
    .bind(now)
    .execute(&app.state.db.write)
    .await
    .expect("seed call");
    id
}

pub(crate) async fn call_status(app: &TestApp, id: &str) -> String {
    use sqlx::Row;
    sqlx::query("SELECT status FROM calls WHERE id = $1")
        .bind(id.to_owned())
        .fetch_one(&app.state.db.read)
        .await
        .unwrap()
        .get::<String, _>("status")
}

/// Creates a minimal campaign over `contacts` and returns its id.
pub(crate) async fn create_campaign(app: &TestApp, key: &str, name: &str, template: &str, contacts: &[&str]) -> String {
    let body = json!({"name": name, "templateId": template, "contacts": contacts});
    let r = app.send(Method::POST, "/v1/campaigns", Some(key), Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn set_status(app: &TestApp, id: &str, status: &str) {
    sqlx::query("UPDATE campaigns SET status = $1 WHERE id = $2")
        .bind(status.to_owned())
        .bind(id.to_owned())
        .execute(&app.state.db.write)
        .await
        .unwrap();
}

fn spec_schedule() -> Value {
    json!({
        "startDate": "2025-05-20T09:00:00Z",
        "endDate": "2025-05-25T17:00:00Z",
        "timeZone": "America/New_York",
        "callHours": {"start": "09:00", "end": "17:00"},
        "daysOfWeek": [1, 2, 3, 4, 5]
    })
}

fn spec_call_settings() -> Value {
    json!({
        "maxConcurrentCalls": 10,
        "callerId": "+15559876543",
        "retrySettings": {"maxAttempts": 3, "retryInterval": 60}
    })
}

/// The spec's example body with real ids.
fn spec_body(template: &str, contacts: [&str; 2], list: &str) -> Value {
    json!({
        "name": "Summer Promotion",
        "description": "Outreach for summer sale",
        "templateId": template,
        "contacts": contacts,
        "contactListIds": [list],
        "schedule": spec_schedule(),
        "callSettings": spec_call_settings()
    })
}

async fn create_campaign_spec_example(b: Backend) {
    let app = spawn_app(b).await;
    let acme = account_id(&app, "acme").await;
    let template = seed_template(&app, &acme).await;
    let a1 = create_contact(&app, &app.key, 1).await;
    let a2 = create_contact(&app, &app.key, 2).await;
    let a3 = create_contact(&app, &app.key, 3).await;
    let list = seed_list(&app, &acme, &[&a3]).await;

    let r = app.post("/v1/campaigns", spec_body(&template, [&a1, &a2], &list)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let c = &r.body;
    assert_id(&c["id"]);
    assert_eq!(c["name"], "Summer Promotion");
    assert_eq!(c["description"], "Outreach for summer sale");
    assert_eq!(c["status"], "scheduled");
    assert_eq!(c["templateId"], template.as_str());
    assert_eq!(c["totalContacts"], 3);
    assert_eq!(c["schedule"], spec_schedule());
    assert_eq!(c["callSettings"], spec_call_settings());
    assert_time(&c["createdAt"]);
    assert_time(&c["updatedAt"]);
    assert_eq!(c["completedCalls"], 0);
    assert_eq!(c["successfulCalls"], 0);
    assert_eq!(c["progress"], 0.0);
    assert_eq!(c["startedAt"], Value::Null);
    assert_eq!(c["lastRunAt"], Value::Null);

    let id = c["id"].as_str().unwrap();
    let r = app.get(&format!("/v1/campaigns/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let g = &r.body;
    for field in
        ["id", "name", "description", "status", "templateId", "totalContacts", "schedule", "callSettings", "createdAt"]
    {
        assert_eq!(g[field], c[field], "{field}");
    }
    for field in ["completedCalls", "successfulCalls", "progress", "startedAt", "lastRunAt"] {
        assert!(g.get(field).is_some(), "{field} missing in {g}");
    }

    let r = app.get("/v1/campaigns").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["pagination"], json!({"total": 1, "page": 1, "limit": 20, "pages": 1}));
    let item = &r.body["data"][0];
    for field in ["id", "name", "description", "status", "totalContacts", "completedCalls", "progress", "createdAt"] {
        assert_eq!(item[field], g[field], "{field}");
    }
}

async fn defaults_and_minimal_campaign(b: Backend) {
    let app = spawn_app(b).await;
    let acme = account_id(&app, "acme").await;
    let template = seed_template(&app, &acme).await;
    let r = app.post("/v1/campaigns", json!({"name": "Bare", "templateId": template})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["totalContacts"], 0);
    assert_eq!(r.body["schedule"], Value::Null, "no schedule: call as soon as activated");
    assert_eq!(r.body["description"], Value::Null);
    assert_eq!(
        r.body["callSettings"],
        json!({"maxConcurrentCalls": 10, "callerId": null, "retrySettings": {"maxAttempts": 3, "retryInterval": 60}})
    );
    // Partial settings keep the other defaults; schedule defaults fill in.
    let body = json!({
        "name": "Partial", "templateId": template,
        "schedule": {"startDate": "2025-05-20T09:00:00Z"},
        "callSettings": {"retrySettings": {"maxAttempts": 5}}
    });
    let r = app.post("/v1/campaigns", body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["callSettings"]["maxConcurrentCalls"], 10);
    assert_eq!(r.body["callSettings"]["retrySettings"], json!({"maxAttempts": 5, "retryInterval": 60}));
    assert_eq!(r.body["schedule"]["timeZone"], "UTC");
    assert_eq!(r.body["schedule"]["callHours"], json!({"start": "09:00", "end": "17:00"}));
    assert_eq!(r.body["schedule"]["daysOfWeek"], json!([1, 2, 3, 4, 5]));
}

async fn total_contacts_deduplicates_the_audience(b: Backend) {
    let app = spawn_app(b).await;
    let acme = account_id(&app, "acme").await;
    let template = seed_template(&app, &acme).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(create_contact(&app, &app.key, n).await);
    }
    // a given twice directly; b directly and via list 1; c in both lists; d in list 2.
    let l1 = seed_list(&app, &acme, &[&ids[1], &ids[2]]).await;
    let l2 = seed_list(&app, &acme, &[&ids[2], &ids[3]]).await;
    let body = json!({
        "name": "Dedup", "templateId": template,
        "contacts": [ids[0], ids[1], ids[0]],
        "contactListIds": [l1, l2, l1]
    });
    let r = app.post("/v1/campaigns", body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["totalContacts"], 4);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let rows = {
        use sqlx::Row;
        sqlx::query("SELECT contact_id FROM campaign_contacts WHERE campaign_id = $1 ORDER BY contact_id")
            .bind(id.clone())
            .fetch_all(&app.state.db.read)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>("contact_id"))
            .collect::<Vec<_>>()
    };
    let mut expected = ids[..4].to_vec();
    expected.sort();
    assert_eq!(rows, expected, "ids[4] is in no list and not given");

    // Only lists; an empty list adds nobody.
    let empty = seed_list(&app, &acme, &[]).await;
    let r = app
        .post("/v1/campaigns", json!({"name": "Lists", "templateId": template, "contactListIds": [l2, empty]}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["totalContacts"], 2);
}

async fn campaign_validation_errors_name_their_field(b: Backend) {
    let app = spawn_busy_app(b).await;
    let acme = account_id(&app, "acme").await;
    let template = seed_template(&app, &acme).await;
    let with = |patch: Value| {
        let mut body = json!({"name": "V", "templateId": template, "schedule": spec_schedule(), "callSettings": spec_call_settings()});
        merge(&mut body, patch);
        body
    };
    let cases = [
        (json!({"schedule": {"timeZone": "Mars/Olympus"}}), "schedule.timeZone"),
        (json!({"schedule": {"callHours": {"start": "9:00"}}}), "schedule.callHours.start"),
        (json!({"schedule": {"callHours": {"end": "25:00"}}}), "schedule.callHours.end"),
        (json!({"schedule": {"callHours": {"start": "17:00", "end": "09:00"}}}), "schedule.callHours"),
        (json!({"schedule": {"daysOfWeek": [0, 1]}}), "schedule.daysOfWeek"),
        (json!({"schedule": {"daysOfWeek": [8]}}), "schedule.daysOfWeek"),
        (json!({"schedule": {"daysOfWeek": []}}), "schedule.daysOfWeek"),
        (json!({"schedule": {"daysOfWeek": [1, 1]}}), "schedule.daysOfWeek"),
        (json!({"schedule": {"endDate": "2025-05-19T09:00:00Z"}}), "schedule.endDate"),
        (json!({"schedule": {"startDate": "next tuesday"}}), "schedule.startDate"),
        (json!({"schedule": {"frequency": "daily"}}), "schedule.frequency"),
        (json!({"callSettings": {"maxConcurrentCalls": 0}}), "callSettings.maxConcurrentCalls"),
        (json!({"callSettings": {"maxConcurrentCalls": 101}}), "callSettings.maxConcurrentCalls"),
        (json!({"callSettings": {"maxConcurrentCalls": "ten"}}), "callSettings.maxConcurrentCalls"),
        (json!({"callSettings": {"callerId": "5559876543"}}), "callSettings.callerId"),
        (json!({"callSettings": {"retrySettings": {"maxAttempts": 0}}}), "callSettings.retrySettings.maxAttempts"),
        (json!({"callSettings": {"retrySettings": {"maxAttempts": 11}}}), "callSettings.retrySettings.maxAttempts"),
        (json!({"callSettings": {"retrySettings": {"retryInterval": 0}}}), "callSettings.retrySettings.retryInterval"),
        (
            json!({"callSettings": {"retrySettings": {"retryInterval": 10081}}}),
            "callSettings.retrySettings.retryInterval",
        ),
        (json!({"callSettings": {"speed": 2}}), "callSettings.speed"),
        (json!({"name": ""}), "name"),
        (json!({"name": 5}), "name"),
        (json!({"templateId": "60a2e7f3"}), "templateId"),
        (json!({"contacts": ["not-an-id"]}), "contacts[0]"),
        (json!({"contacts": "60a2e7f3b9c1a83e94d8f2a1"}), "contacts"),
        (json!({"contactListIds": ["60a2e7f3b9c1a83e94d8f2a1", "x"]}), "contactListIds[1]"),
        (json!({"budget": 100}), "budget"),
    ];
    for (patch, field) in cases {
        let body = with(patch.clone());
        let r = app.post("/v1/campaigns", body).await;
        assert_eq!(r.status, 400, "{patch} -> {}", r.body);
        assert_eq!(r.error_code(), "invalid_parameter", "{patch}");
        assert_eq!(r.body["error"]["details"]["field"], field, "{patch} -> {}", r.body);
    }
    // Required fields.
    for body in [json!({"templateId": template}), json!({"name": "No template"})] {
        let r = app.post("/v1/campaigns", body.clone()).await;
        assert_eq!(r.status, 400, "{body}");
    }
    // Boundaries are accepted.
    let r = app
        .post(
            "/v1/campaigns",
            with(json!({"callSettings": {"maxConcurrentCalls": 100, "retrySettings": {"maxAttempts": 10, "retryInterval": 10080}}})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = app.post("/v1/campaigns", with(json!({"callSettings": {"maxConcurrentCalls": 1, "retrySettings": {"maxAttempts": 1, "retryInterval": 1}}}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(app.get("/v1/campaigns").await.body["pagination"]["total"], 2, "no campaign from a rejected request");
}

/// Merges `patch` into `base` recursively (objects merge, other values replace).
fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

async fn missing_references_are_404_naming_them(b: Backend) {
    let app = spawn_app(b).await;
    let acme = account_id(&app, "acme").await;
    let other_key = app.key_for_account("globex").await;
    let globex = account_id(&app, "globex").await;
    let template = seed_template(&app, &acme).await;
    let their_template = seed_template(&app, &globex).await;
    let mine = create_contact(&app, &app.key, 1).await;
    let theirs = create_contact(&app, &other_key, 2).await;
    let their_list = seed_list(&app, &globex, &[&theirs]).await;
    let unknown = Id::generate().into_string();

    for t in [&their_template, &unknown] {
        let r = app.post("/v1/campaigns", json!({"name": "X", "templateId": t, "contacts": [mine]})).await;
        assert_eq!(r.status, 404, "{}", r.body);
        assert_eq!(r.error_code(), "not_found");
        assert_eq!(r.body["error"]["details"]["field"], "templateId");
    }
    let r = app
        .post("/v1/campaigns", json!({"name": "X", "templateId": template, "contacts": [mine, theirs, unknown]}))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.error_code(), "not_found");
    assert_eq!(r.body["error"]["details"], json!({"field": "contacts", "missing": [theirs, unknown]}));
    let r =
        app.post("/v1/campaigns", json!({"name": "X", "templateId": template, "contactListIds": [their_list]})).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.body["error"]["details"], json!({"field": "contactListIds", "missing": [their_list]}));
    assert_eq!(app.get("/v1/campaigns").await.body["pagination"]["total"], 0);
}

async fn every_transition_legal_or_409(b: Backend) {
    let app = spawn_busy_app(b).await;
    let acme = account_id(&app, "acme").await;
    let template = seed_template(&app, &acme).await;
    let all = ["scheduled", "active", "paused", "completed", "cancelled"];
    let legal = [
        ("scheduled", "active", "activated"),
        ("scheduled", "paused", "paused"),
        ("scheduled", "cancelled", "cancelled"),
        ("active", "paused", "paused"),
        ("active", "completed", "completed"),
        ("active", "cancelled", "cancelled"),
        ("paused", "active", "activated"),
        ("paused", "cancelled", "cancelled"),
    ];
    for from in all {
        for to in all {
            let id = create_campaign(&app, &app.key, &format!("{from}->{to}"), &template, &[]).await;
            set_status(&app, &id, from).await;
            let before = app.get(&format!("/v1/campaigns/{id}")).await.body;
            let r = app.post(&format!("/v1/campaigns/{id}/status"), json!({"status": to})).await;
            let after = app.get(&format!("/v1/campaigns/{id}")).await.body;
            match legal.iter().find(|(f, t, _)| *f == from && *t == to) {
                Some((_, _, verb)) => {
                    assert_eq!(r.status, 200, "{from} -> {to}: {}", r.body);
                    assert_eq!(
                        r.body,
                        json!({"id": id, "status": to, "message": format!("Campaign successfully {verb}")}),
                        "{from} -> {to}"
                    );
                    assert_eq!(after["status"], to);
                    assert_eq!(after["startedAt"].is_null(), to != "active", "{from} -> {to}: startedAt");
                    if to == "active" {
                        assert_time(&after["startedAt"]);
                    }
                    let ended = to == "completed" || to == "cancelled";
                    assert_eq!(after["endedAt"].is_null(), !ended, "{from} -> {to}: endedAt");
                    assert!(after["updatedAt"].as_str() >= before["updatedAt"].as_str());
                }
                None => {
                    assert_eq!(r.status, 409, "{from} -> {to}: {}", r.body);
                    assert_eq!(r.error_code(), "conflict");
                    assert_eq!(r.body["error"]["details"]["from"], from);
                    assert_eq!(r.body["error"]["details"]["to"], to);
                    assert_eq!(after["status"], from, "unchanged");
                    assert_eq!(after["updatedAt"], before["updatedAt"]);
                }
            }
        }
    }
}

async fn activation_keeps_first_start_time(b: Backend) {
    let app = spawn_app(b).await;
    let acme = account_id(&app, "acme").await;
    let template = seed_template(&app, &acme).await;
    let id = create_campaign(&app, &app.key, "Resume", &template, &[]).await;
    let status = format!("/v1/campaigns/{id}/status");
    assert_eq!(app.post(&status, json!({"status": "active"})).await.status, 200);
    sqlx::query("UPDATE campaigns SET started_at = $1 WHERE id = $2")
        .bind(db_time("2025-05-20T09:00:02Z"))
        .bind(id.clone())
        .execute(&app.state.db.write)
        .await
        .unwrap();
    assert_eq!(app.post(&status, json!({"status": "paused"})).await.status, 200);
    assert_eq!(app.post(&status, json!({"status": "active"})).await.status, 200);
    let c = app.get(&format!("/v1/campaigns/{id}")).await.body;
    assert_eq!(c["startedAt"], "2025-05-20T09:00:02Z", "resuming does not move startedAt");
    assert_eq!(c["endedAt"], Value::Null);
}

async fn status_request_errors(b: Backend) {
    let app = spawn_app(b).await;
    let acme = account_id(&app, "acme").await;
    let template = seed_template(&app, &acme).await;
    let id = create_campaign(&app, &app.key, "S", &template, &[]).await;
    let path = format!("/v1/campaigns/{id}/status");
    for (body, field) in [
        (json!({"status": "archived"}), "status"),
        (json!({"status": "Active"}), "status"),
        (json!({"status": 1}), "status"),
        (json!({"status": null}), "status"),
        (json!({}), "body"),
    ] {
        let r = app.post(&path, body.clone()).await;
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.error_code(), "invalid_parameter", "{body}: {}", r.body);
        assert_eq!(r.body["error"]["details"]["field"], field, "{body}");
    }
    assert_eq!(app.get(&format!("/v1/campaigns/{id}")).await.body["status"], "scheduled");
    let r = app.post(&path, json!({"status": "paused", "reason": "x"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["details"]["field"], "reason");
    let r = app.post("/v1/campaigns/nope/status", json!({"status": "paused"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["details"]["field"], "id");
    let r = app.post(&format!("/v1/campaigns/{}/status", Id::generate()), json!({"status": "paused"})).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "not_found");
    let r = app.get("/v1/campaigns/XYZ").await;
    assert_eq!(r.status, 400);
    let r = app.get(&format!("/v1/campaigns/{}", Id::generate())).await;
    assert_eq!(r.status, 404);
}

async fn concurrent_transitions_have_one_winner(b: Backend) {
    let app = spawn_busy_app(b).await;
    let acme = account_id(&app, "acme").await;
    let template = seed_template(&app, &acme).await;
    for round in 0..5 {
        let id = create_campaign(&app, &app.key, &format!("Race {round}"), &template, &[]).await;
        set_status(&app, &id, "active").await;
        let path = format!("/v1/campaigns/{id}/status");
        let (a, b2) =
            tokio::join!(app.post(&path, json!({"status": "paused"})), app.post(&path, json!({"status": "paused"})));
        let mut codes = [a.status.as_u16(), b2.status.as_u16()];
        codes.sort();
        assert_eq!(codes, [200, 409], "exactly one pause wins");
        let (a, b2) =
            tokio::join!(app.post(&path, json!({"status": "cancelled"})), app.post(&path, json!({"status": "active"})));
        let ok = [a.status.as_u16(), b2.status.as_u16()];
        let status = app.get(&format!("/v1/campaigns/{id}")).await.body["status"].clone();
        // Either order is legal from paused; the later one wins unless it is after cancelled.
        match ok {
            [200, 200] => assert_eq!(status, "cancelled", "active then cancelled"),
            [200, 409] => assert_eq!(status, "cancelled"),
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn cancelling_cancels_pending_calls(b: Backend) {
    let app = spawn_app(b).await;
    let acme = account_id(&app, "acme").await;
    let template = seed_template(&app, &acme).await;
    let id = create_campaign(&app, &app.key, "Cancel me", &template, &[]).await;
    let other = create_campaign(&app, &app.key, "Keep me", &template, &[]).await;
    let mut calls = Vec::new();
    for status in ["scheduled", "queued", "in-progress", "completed", "failed"] {
        calls.push((
            status,
            seed_call(&app, &acme, SeedCall { campaign_id: Some(&id), status, ..Default::default() }).await,
        ));
    }
    let elsewhere =
        seed_call(&app, &acme, SeedCall { campaign_id: Some(&other), status: "queued", ..Default::default() }).await;
    let loose = seed_call(&app, &acme, SeedCall { status: "scheduled", ..Default::default() }).await;

    let r = app.post(&format!("/v1/campaigns/{id}/status"), json!({"status": "cancelled"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["message"], "Campaign successfully cancelled");
    for (before, call) in &calls {
        let expected = if matches!(*before, "scheduled" | "queued") { "cancelled" } else { before };
        assert_eq!(call_status(&app, call).await, expected, "{before}");
    }
    assert_eq!(call_status(&app, &elsewhere).await, "queued");
    assert_eq!(call_status(&app, &loose).await, "scheduled");
}

async fn progress_and_call_counters(b: Backend) {
    let app = spawn_app(b).await;
    let acme = account_id(&app, "acme").await;
    let template = seed_template(&app, &acme).await;
    let contacts = [
        create_contact(&app, &app.key, 1).await,
        create_contact(&app, &app.key, 2).await,
        create_contact(&app, &app.key, 3).await,
    ];
    let refs: Vec<&str> = contacts.iter().map(String::as_str).collect();
    let id = create_campaign(&app, &app.key, "Counted", &template, &refs).await;
    let other = create_campaign(&app, &app.key, "Other", &template, &refs[..1]).await;
    let seeds = [
        SeedCall {
            campaign_id: Some(&id),
            outcome: Some("successful"),
            duration: Some(120),
            started_at: Some("2025-05-20T09:00:02Z"),
            ..Default::default()
        },
        SeedCall {
            campaign_id: Some(&id),
            outcome: Some("voicemail"),
            duration: Some(20),
            started_at: Some("2025-05-20T16:45:12Z"),
            ..Default::default()
        },
        SeedCall {
            campaign_id: Some(&id),
            status: "failed",
            outcome: Some("successful"),
            started_at: Some("2025-05-20T12:00:00Z"),
            ..Default::default()
        },
        SeedCall { campaign_id: Some(&id), status: "queued", ..Default::default() },
        SeedCall { campaign_id: Some(&other), outcome: Some("successful"), ..Default::default() },
    ];
    for s in seeds {
        seed_call(&app, &acme, s).await;
    }
    let c = app.get(&format!("/v1/campaigns/{id}")).await.body;
    assert_eq!(c["totalContacts"], 3);
    assert_eq!(c["completedCalls"], 2);
    assert_eq!(c["successfulCalls"], 1, "a failed call does not count as successful");
    assert_eq!(c["progress"], 66.7);
    assert_eq!(c["lastRunAt"], "2025-05-20T16:45:12Z");
    let list = app.get("/v1/campaigns").await.body;
    let by_name = |name: &str| list["data"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone();
    assert_eq!(by_name("Counted")["completedCalls"], 2);
    assert_eq!(by_name("Counted")["progress"], 66.7);
    assert_eq!(by_name("Other")["completedCalls"], 1);
    assert_eq!(by_name("Other")["progress"], 100.0);
    assert_eq!(by_name("Other")["lastRunAt"], Value::Null, "its call never started");
}

async fn list_filters_by_status_and_pages(b: Backend) {
    let app = spawn_busy_app(b).await;
    let acme = account_id(&app, "acme").await;
    let template = seed_template(&app, &acme).await;
    let statuses = ["scheduled", "active", "active", "paused", "completed", "cancelled", "active"];
    for (i, status) in statuses.iter().enumerate() {
        let id = create_campaign(&app, &app.key, &format!("C{i}"), &template, &[]).await;
        set_status(&app, &id, status).await;
    }
    let r = app.get("/v1/campaigns").await;
    assert_eq!(r.body["pagination"], json!({"total": 7, "page": 1, "limit": 20, "pages": 1}));
    assert_eq!(r.body["data"][0]["name"], "C6", "newest first");
    for (status, n) in [("scheduled", 1), ("active", 3), ("paused", 1), ("completed", 1), ("cancelled", 1)] {
        let r = app.get(&format!("/v1/campaigns?status={status}")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["pagination"]["total"], n, "{status}");
        assert!(r.body["data"].as_array().unwrap().iter().all(|c| c["status"] == status));
    }
    let r = app.get("/v1/campaigns?status=active&limit=2").await;
    assert_eq!(r.body["pagination"], json!({"total": 3, "page": 1, "limit": 2, "pages": 2}));
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2);
    let r = app.get("/v1/campaigns?status=active&limit=2&page=2").await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["data"][0]["name"], "C1");
    let r = app.get("/v1/campaigns?page=5").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"], json!([]));
    assert_eq!(r.body["pagination"]["total"], 7);
    for bad in ["status=running", "status=ACTIVE"] {
        let r = app.get(&format!("/v1/campaigns?{bad}")).await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.error_code(), "invalid_parameter");
        assert_eq!(r.body["error"]["details"]["field"], "status");
    }
    for bad in ["limit=0", "limit=101", "limit=x", "page=0"] {
        let r = app.get(&format!("/v1/campaigns?{bad}")).await;
        assert_eq!(r.status, 400, "{bad}");
    }
}

async fn campaigns_are_isolated_between_accounts(b: Backend) {
    let app = spawn_app(b).await;
    let acme = account_id(&app, "acme").await;
    let template = seed_template(&app, &acme).await;
    let contact = create_contact(&app, &app.key, 1).await;
    let id = create_campaign(&app, &app.key, "Mine", &template, &[&contact]).await;
    let other = app.key_for_account("globex").await;
    let r = app.send(Method::GET, &format!("/v1/campaigns/{id}"), Some(&other), None).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "not_found");
    let body = json!({"status": "cancelled"});
    let r = app.send(Method::POST, &format!("/v1/campaigns/{id}/status"), Some(&other), Some(&body)).await;
    assert_eq!(r.status, 404);
    let r = app.send(Method::GET, "/v1/campaigns", Some(&other), None).await;
    assert_eq!(r.body["pagination"]["total"], 0);
    // Their calls tagged with my campaign id do not count towards it.
    let globex = account_id(&app, "globex").await;
    seed_call(&app, &globex, SeedCall { campaign_id: Some(&id), outcome: Some("successful"), ..Default::default() })
        .await;
    let c = app.get(&format!("/v1/campaigns/{id}")).await.body;
    assert_eq!(c["status"], "scheduled");
    assert_eq!(c["completedCalls"], 0);
    // And my template is not theirs to use.
    let body = json!({"name": "Theirs", "templateId": template});
    let r = app.send(Method::POST, "/v1/campaigns", Some(&other), Some(&body)).await;
    assert_eq!(r.status, 404);
}

both_backends!(
    create_campaign_spec_example,
    defaults_and_minimal_campaign,
    total_contacts_deduplicates_the_audience,
    campaign_validation_errors_name_their_field,
    missing_references_are_404_naming_them,
    every_transition_legal_or_409,
    activation_keeps_first_start_time,
    status_request_errors,
    concurrent_transitions_have_one_winner,
    cancelling_cancels_pending_calls,
    progress_and_call_counters,
    list_filters_by_status_and_pages,
    campaigns_are_isolated_between_accounts,
);
