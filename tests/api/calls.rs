//! `/v1/calls`: the spec's example with a real template and contact, variables
//! (given, derived from the contact, missing), do-not-call, every list filter,
//! pagination, cancel, 404s and tenant isolation.

use callcenter::domain::Id;
use callcenter::domain::status::CallStatus;
use callcenter::store::{accounts, calls};
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::*;
use crate::templates::spec_template;

const SPEC_SCHEDULED: &str = "2025-05-20T15:30:00Z";
const FUTURE: &str = "2099-05-20T15:30:00Z";

fn spec_contact() -> Value {
    json!({
        "name": "John Smith",
        "phone": "+15551234567",
        "email": "john.smith@example.com",
        "company": "Acme Inc",
        "tags": ["customer", "vip"],
        "customFields": {"industry": "Technology", "lastPurchase": "2025-04-15", "plan": "Gold", "seats": 12}
    })
}

/// The spec's request body, with real ids.
fn spec_call(contact_id: &str, template_id: &str) -> Value {
    json!({
        "phone": "+15551234567",
        "contactId": contact_id,
        "templateId": template_id,
        "variables": {"companyName": "Acme Inc", "productName": "Premium Widget"},
        "scheduled": SPEC_SCHEDULED,
        "callerId": "+15559876543"
    })
}

fn id_of(r: &Resp) -> String {
    assert!(r.status.is_success(), "{} {}", r.status, r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

/// An app whose rate limit does not get in the way of tests that make many requests.
async fn busy_app(b: Backend) -> TestApp {
    spawn_app_with(b, |c| c.rate_limit_per_minute = 100_000).await
}

/// The spec's template and contact.
async fn setup(app: &TestApp) -> (String, String) {
    let template = id_of(&app.post("/v1/templates", spec_template()).await);
    let contact = id_of(&app.post("/v1/contacts", spec_contact()).await);
    (template, contact)
}

/// A template without variables, for calls whose content does not matter.
async fn plain_template(app: &TestApp) -> String {
    id_of(
        &app.post("/v1/templates", json!({"name": "Plain", "steps": [{"type": "greeting", "content": "Hello"}]})).await,
    )
}

async fn acme(app: &TestApp) -> Id {
    accounts::ensure_account(&app.state.db, "acme").await.unwrap()
}

/// Owned copies of ids, to compare with a list of ids from a response.
fn v(ids: &[&String]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn is_future(t: &str) -> bool {
    t.parse::<jiff::Timestamp>().unwrap() > jiff::Timestamp::now()
}

async fn create_call_spec_example(b: Backend) {
    let app = spawn_app(b).await;
    let (template, contact) = setup(&app).await;
    let r = app.post("/v1/calls", spec_call(&contact, &template)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let c = &r.body;
    assert_id(&c["id"]);
    // The spec's example date has passed, so the call waits for a line, not for its time.
    let expected_status = if is_future(SPEC_SCHEDULED) { "scheduled" } else { "queued" };
    assert_eq!(c["status"], expected_status);
    assert_eq!(c["phone"], "+15551234567");
    assert_eq!(c["contactId"], contact.as_str());
    assert_eq!(c["templateId"], template.as_str());
    assert_eq!(c["campaignId"], Value::Null);
    assert_eq!(
        c["variables"],
        json!({"companyName": "Acme Inc", "productName": "Premium Widget", "contactName": "John Smith"}),
        "contactName comes from the contact"
    );
    assert_eq!(c["scheduled"], SPEC_SCHEDULED);
    assert_eq!(c["callerId"], "+15559876543");
    assert_eq!(c["direction"], "outbound");
    for field in ["startedAt", "endedAt", "duration", "recording", "transcript", "outcome", "notes"] {
        assert_eq!(c[field], Value::Null, "{field} is null until the call runs");
    }
    assert_time(&c["createdAt"]);
    assert_time(&c["updatedAt"]);
    let expected_fields = [
        "id",
        "status",
        "phone",
        "contactId",
        "templateId",
        "campaignId",
        "variables",
        "scheduled",
        "callerId",
        "direction",
        "startedAt",
        "endedAt",
        "duration",
        "recording",
        "transcript",
        "outcome",
        "notes",
        "createdAt",
        "updatedAt",
    ];
    let mut keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = expected_fields.to_vec();
    expected.sort_unstable();
    assert_eq!(keys, expected);

    // "Get Call Details" returns the same shape and values.
    let id = c["id"].as_str().unwrap();
    let r = app.get(&format!("/v1/calls/{id}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(&r.body, c);

    // In the future: scheduled. Without a time or in the past: queued.
    let mut body = spec_call(&contact, &template);
    body["scheduled"] = json!(FUTURE);
    let r = app.post("/v1/calls", body.clone()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["status"], "scheduled");
    assert_eq!(r.body["scheduled"], FUTURE);
    body["scheduled"] = json!("2020-01-01T00:00:00Z");
    assert_eq!(app.post("/v1/calls", body.clone()).await.body["status"], "queued");
    body.as_object_mut().unwrap().remove("scheduled");
    let r = app.post("/v1/calls", body.clone()).await;
    assert_eq!(r.body["status"], "queued");
    assert_eq!(r.body["scheduled"], Value::Null);
    // Other offsets are normalised to UTC.
    body["scheduled"] = json!("2099-05-20T10:30:00-05:00");
    assert_eq!(app.post("/v1/calls", body).await.body["scheduled"], FUTURE);
    assert_eq!(app.get(&format!("/v1/templates/{template}")).await.body["usageCount"], 5);
}

async fn create_call_validation_errors(b: Backend) {
    let app = busy_app(b).await;
    let (template, contact) = setup(&app).await;
    let ok = spec_call(&contact, &template);
    let with = |field: &str, value: Value| {
        let mut body = ok.clone();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = ok.clone();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let cases = [
        (without("templateId"), "templateId"),
        (with("templateId", json!("not-an-id")), "templateId"),
        (with("templateId", json!(42)), "templateId"),
        (with("contactId", json!("60A2E7F3B9C1A83E94D8F2A1")), "contactId"),
        (with("phone", json!("5551234567")), "phone"),
        (with("phone", json!("+1 call me")), "phone"),
        (with("phone", json!(15551234567u64)), "phone"),
        (
            json!({"templateId": template, "variables": {"companyName": "A", "productName": "B", "contactName": "C"}}),
            "phone",
        ),
        (with("callerId", json!("12")), "callerId"),
        (with("scheduled", json!("tomorrow")), "scheduled"),
        (with("scheduled", json!("2025-05-20")), "scheduled"),
        (with("variables", json!("companyName=Acme")), "variables"),
        (with("variables", json!({"companyName": {"legal": "Acme"}, "productName": "B"})), "variables.companyName"),
        (with("variables", json!({"companyName": ["Acme"], "productName": "B"})), "variables.companyName"),
        (with("variables", json!({"companyName": null, "productName": "B"})), "variables.companyName"),
        (with("variables", json!({"companyName": "A", "productName": "B", "bad name": "x"})), "variables.bad name"),
        (with("variables", json!({"companyName": "x".repeat(1001), "productName": "B"})), "variables.companyName"),
        (with("priority", json!("high")), "priority"),
    ];
    for (body, field) in cases {
        let r = app.post("/v1/calls", body.clone()).await;
        assert_eq!(r.status, 400, "{body} -> {}", r.body);
        assert_eq!(r.error_code(), "invalid_parameter", "{body}");
        assert_eq!(r.body["error"]["details"]["field"], field, "{body} -> {}", r.body);
    }

    // Well-formed ids that are not in the account: 404 naming the field.
    let r = app.post("/v1/calls", with("templateId", json!("60a2e7f3b9c1a83e94d8f2b2"))).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.error_code(), "not_found");
    assert_eq!(r.body["error"]["details"]["field"], "templateId");
    let r = app.post("/v1/calls", with("contactId", json!("60a2e7f3b9c1a83e94d8f2a1"))).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.body["error"]["details"]["field"], "contactId");
    assert_eq!(app.get("/v1/calls").await.body["pagination"]["total"], 0, "nothing was created");
}

async fn call_variables_given_derived_and_missing(b: Backend) {
    let app = busy_app(b).await;
    let (template, contact) = setup(&app).await;

    // Without a contact, every declared variable must be given; the error names them.
    let r = app.post("/v1/calls", json!({"phone": "+15551234567", "templateId": template})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_code(), "invalid_parameter");
    let details = &r.body["error"]["details"];
    assert_eq!(details["field"], "variables");
    assert_eq!(details["missing"], json!(["companyName", "contactName", "productName"]));
    let reason = details["reason"].as_str().unwrap();
    assert!(reason.contains("companyName") && reason.contains("contactName") && reason.contains("productName"));
    let r = app
        .post(
            "/v1/calls",
            json!({"phone": "+15551234567", "templateId": template, "variables": {"productName": "Widget", "extra": "x"}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["details"]["missing"], json!(["companyName", "contactName"]));
    // A contact supplies contactName but not companyName.
    let r = app
        .post("/v1/calls", json!({"contactId": contact, "templateId": template, "variables": {"productName": "W"}}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["details"]["missing"], json!(["companyName"]));

    // Numbers and booleans become strings; a given value wins over the contact's.
    let r = app
        .post(
            "/v1/calls",
            json!({"contactId": contact, "templateId": template,
                   "variables": {"companyName": 42, "productName": true, "contactName": "Johnny", "note": 1.5}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.body["variables"],
        json!({"companyName": "42", "productName": "true", "contactName": "Johnny", "note": "1.5"})
    );
    assert_eq!(r.body["phone"], "+15551234567", "the contact's phone when none is given");

    // Every kind of derived variable, from the contact's fields and its customFields.
    let derived = id_of(
        &app.post(
            "/v1/templates",
            json!({"name": "Derived", "steps": [{"type": "greeting", "content": "Hi {firstName}, about {plan} for {seats} seats"}],
                   "variables": ["name", "fullName", "firstName", "contactFirstName", "contactPhone", "phone",
                                 "contactEmail", "email", "company", "contactCompany", "plan", "seats", "industry"]}),
        )
        .await,
    );
    let r = app.post("/v1/calls", json!({"contactId": contact, "templateId": derived})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.body["variables"],
        json!({
            "name": "John Smith", "fullName": "John Smith", "firstName": "John", "contactFirstName": "John",
            "contactPhone": "+15551234567", "phone": "+15551234567",
            "contactEmail": "john.smith@example.com", "email": "john.smith@example.com",
            "company": "Acme Inc", "contactCompany": "Acme Inc",
            "plan": "Gold", "seats": "12", "industry": "Technology"
        })
    );
    // A contact without an email cannot supply one.
    let bare = id_of(&app.post("/v1/contacts", json!({"name": "Ann", "phone": "+15550001111"})).await);
    let r = app.post("/v1/calls", json!({"contactId": bare, "templateId": derived})).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["error"]["details"]["missing"],
        json!(["contactEmail", "email", "company", "contactCompany", "plan", "seats", "industry"])
    );
    // Placeholders the template does not declare are filled from the contact when it can.
    let loose = id_of(
        &app.post(
            "/v1/templates",
            json!({"name": "Loose", "steps": [{"type": "greeting", "content": "Hi {firstName} {unknown}"}], "variables": []}),
        )
        .await,
    );
    let r = app.post("/v1/calls", json!({"contactId": contact, "templateId": loose, "phone": "+15550002222"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["variables"], json!({"firstName": "John"}));
    assert_eq!(r.body["phone"], "+15550002222", "a given phone wins over the contact's");
    let stored = app.get(&format!("/v1/calls/{}", r.body["id"].as_str().unwrap())).await;
    assert_eq!(stored.body["variables"], json!({"firstName": "John"}));
}

async fn do_not_call_contacts_are_refused(b: Backend) {
    let app = spawn_app(b).await;
    let (template, contact) = setup(&app).await;
    let r = app.patch(&format!("/v1/contacts/{contact}"), json!({"doNotCall": true})).await;
    assert_eq!(r.status, 200);
    let r = app.post("/v1/calls", spec_call(&contact, &template)).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.error_code(), "conflict");
    assert_eq!(r.body["error"]["details"], json!({"field": "contactId", "reason": "contact is marked do-not-call"}));
    assert_eq!(app.get("/v1/calls").await.body["pagination"]["total"], 0);
}

async fn list_calls_filters(b: Backend) {
    let app = busy_app(b).await;
    let account = acme(&app).await;
    let template = plain_template(&app).await;
    let ann = id_of(&app.post("/v1/contacts", json!({"name": "Ann", "phone": "+15550000001"})).await);
    let bob = id_of(&app.post("/v1/contacts", json!({"name": "Bob", "phone": "+15550000002"})).await);
    let call = |contact: &str, scheduled: Option<&str>| {
        let mut body = json!({"contactId": contact, "templateId": template});
        if let Some(s) = scheduled {
            body["scheduled"] = json!(s);
        }
        body
    };
    let jan10 = id_of(&app.post("/v1/calls", call(&ann, Some("2024-01-10T10:00:00Z"))).await);
    let jan10_late = id_of(&app.post("/v1/calls", call(&ann, Some("2024-01-10T23:59:59Z"))).await);
    let jan11 = id_of(&app.post("/v1/calls", call(&bob, Some("2024-01-11T00:00:00Z"))).await);
    let future = id_of(&app.post("/v1/calls", call(&bob, Some(FUTURE))).await);
    let now = app.post("/v1/calls", call(&ann, None)).await;
    let now_created = now.body["createdAt"].as_str().unwrap().to_owned();
    let now = id_of(&now);

    // A finished call and two calls of a campaign (placed by the dialer in a later issue).
    assert!(
        calls::transition(
            &app.state.db,
            &account,
            &Id::parse(&jan11).unwrap(),
            CallStatus::Queued,
            CallStatus::Completed
        )
        .await
        .unwrap()
    );
    let campaign = Id::generate().into_string();
    for id in [&jan10, &jan10_late] {
        sqlx::query("UPDATE calls SET campaign_id = $1 WHERE id = $2")
            .bind(campaign.clone())
            .bind(id.to_string())
            .execute(&app.state.db.write)
            .await
            .unwrap();
    }

    let ids = |r: &Resp| -> Vec<String> {
        assert_eq!(r.status, 200, "{}", r.body);
        let ids: Vec<String> =
            r.body["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(r.body["pagination"]["total"], ids.len(), "{}", r.body);
        ids
    };
    let r = app.get("/v1/calls").await;
    assert_eq!(ids(&r), v(&[&now, &future, &jan11, &jan10_late, &jan10]), "newest first");
    assert_eq!(r.body["data"][0]["variables"], json!({}));

    assert_eq!(ids(&app.get("/v1/calls?status=queued").await), v(&[&now, &jan10_late, &jan10]));
    assert_eq!(ids(&app.get("/v1/calls?status=scheduled").await), v(&[&future]));
    assert_eq!(ids(&app.get("/v1/calls?status=completed").await), v(&[&jan11]));
    assert!(ids(&app.get("/v1/calls?status=in-progress").await).is_empty());
    assert_eq!(ids(&app.get(&format!("/v1/calls?contactId={ann}")).await), v(&[&now, &jan10_late, &jan10]));
    assert_eq!(ids(&app.get(&format!("/v1/calls?contactId={bob}&status=completed")).await), v(&[&jan11]));
    assert_eq!(ids(&app.get(&format!("/v1/calls?campaignId={campaign}")).await), v(&[&jan10_late, &jan10]));
    assert_eq!(ids(&app.get(&format!("/v1/calls?campaignId={campaign}&status=completed")).await).len(), 0);
    assert!(ids(&app.get("/v1/calls?campaignId=60a2e7f3b9c1a83e94d8f2e1").await).is_empty());

    // Dates filter on when the call starts, is scheduled or was created; both ends inclusive.
    assert_eq!(ids(&app.get("/v1/calls?startDate=2024-01-10&endDate=2024-01-10").await), v(&[&jan10_late, &jan10]));
    assert_eq!(ids(&app.get("/v1/calls?endDate=2024-01-10T10:00:00Z").await), v(&[&jan10]));
    assert_eq!(
        ids(&app.get("/v1/calls?startDate=2024-01-10T10:00:01Z&endDate=2024-01-11").await),
        v(&[&jan11, &jan10_late])
    );
    assert_eq!(
        ids(&app.get("/v1/calls?startDate=2024-01-11T00:00:00%2B00:00&endDate=2024-01-11T00:00:00Z").await),
        v(&[&jan11])
    );
    assert_eq!(ids(&app.get("/v1/calls?startDate=2024-01-10T19:00:00-05:00&endDate=2024-01-11").await), v(&[&jan11]));
    assert_eq!(ids(&app.get("/v1/calls?startDate=2030-01-01").await), v(&[&future]));
    let r = app.get(&format!("/v1/calls?startDate={now_created}&endDate={now_created}")).await;
    assert_eq!(ids(&r), v(&[&now]), "a call created at 12:00:00.4 is inside endDate=12:00:00");
    assert_eq!(ids(&app.get(&format!("/v1/calls?startDate=2024-01-01&contactId={ann}&status=queued")).await).len(), 3);

    for (query, field) in [
        ("status=done", "status"),
        ("status=Completed", "status"),
        ("contactId=123", "contactId"),
        ("campaignId=not-an-id", "campaignId"),
        ("startDate=yesterday", "startDate"),
        ("endDate=2024-02-30", "endDate"),
        ("startDate=2024-01-11&endDate=2024-01-10", "endDate"),
        ("limit=0", "limit"),
        // Far-future bounds once overflowed jiff in the handler (a panic, no response).
        ("endDate=9999-12-30", "endDate"),
        ("startDate=9999-12-31T00:00:00Z", "startDate"),
    ] {
        let r = app.get(&format!("/v1/calls?{query}")).await;
        assert_eq!(r.status, 400, "{query} -> {}", r.body);
        assert_eq!(r.error_code(), "invalid_parameter");
        assert_eq!(r.body["error"]["details"]["field"], field, "{query}");
    }
    // Empty values count as absent.
    assert_eq!(ids(&app.get("/v1/calls?status=&contactId=").await).len(), 5);
}

async fn list_calls_pagination(b: Backend) {
    let app = busy_app(b).await;
    let template = plain_template(&app).await;
    let mut created = Vec::new();
    for i in 0..25 {
        let body = json!({"phone": format!("+1555100{i:04}"), "templateId": template});
        created.push(id_of(&app.post("/v1/calls", body).await));
    }
    created.reverse();
    let page = |r: &Resp| -> Vec<String> {
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
    };
    let r = app.get("/v1/calls").await;
    assert_eq!(r.body["pagination"], json!({"total": 25, "page": 1, "limit": 20, "pages": 2}));
    assert_eq!(page(&r), created[..20]);
    let r = app.get("/v1/calls?page=2").await;
    assert_eq!(page(&r), created[20..]);
    assert_eq!(r.body["pagination"], json!({"total": 25, "page": 2, "limit": 20, "pages": 2}));
    let r = app.get("/v1/calls?page=3").await;
    assert!(page(&r).is_empty());
    assert_eq!(r.body["pagination"]["total"], 25);
    let r = app.get("/v1/calls?page=2147483647&limit=100").await;
    assert!(page(&r).is_empty());
    let r = app.get("/v1/calls?limit=7&page=4").await;
    assert_eq!(page(&r), created[21..]);
    assert_eq!(r.body["pagination"]["pages"], 4);
    let r = app.get("/v1/calls?limit=100").await;
    assert_eq!(page(&r), created);
    let r = app.get("/v1/calls?limit=1&status=queued&page=25").await;
    assert_eq!(page(&r), created[24..]);
    assert_eq!(r.body["pagination"]["total"], 25);
    for bad in ["limit=0", "limit=101", "limit=abc", "limit=-5", "page=0", "page=-1", "page=x", "page=1.5"] {
        let r = app.get(&format!("/v1/calls?{bad}")).await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.error_code(), "invalid_parameter");
    }
}

async fn cancel_calls(b: Backend) {
    let app = busy_app(b).await;
    let account = acme(&app).await;
    let template = plain_template(&app).await;
    let queued = id_of(&app.post("/v1/calls", json!({"phone": "+15551234567", "templateId": template})).await);
    let scheduled = id_of(
        &app.post("/v1/calls", json!({"phone": "+15551234567", "templateId": template, "scheduled": FUTURE})).await,
    );
    let done = id_of(&app.post("/v1/calls", json!({"phone": "+15551234567", "templateId": template})).await);
    for (from, to) in [(CallStatus::Queued, CallStatus::InProgress), (CallStatus::InProgress, CallStatus::Completed)] {
        assert!(calls::transition(&app.state.db, &account, &Id::parse(&done).unwrap(), from, to).await.unwrap());
    }
    // A transition from a status the call is not in does nothing.
    assert!(
        !calls::transition(&app.state.db, &account, &Id::parse(&done).unwrap(), CallStatus::Queued, CallStatus::Failed)
            .await
            .unwrap()
    );

    for id in [&queued, &scheduled] {
        let r = app.post(&format!("/v1/calls/{id}/cancel"), json!({})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body, json!({"id": id, "status": "cancelled", "message": "Call successfully cancelled"}));
        let r = app.get(&format!("/v1/calls/{id}")).await;
        assert_eq!(r.body["status"], "cancelled");
        // Again: the call is no longer cancellable.
        let r = app.post(&format!("/v1/calls/{id}/cancel"), json!({})).await;
        assert_eq!(r.status, 409, "{}", r.body);
        assert_eq!(r.error_code(), "conflict");
        assert_eq!(r.body["error"]["details"]["status"], "cancelled");
        assert!(r.body["error"]["message"].as_str().unwrap().contains("cancelled"));
    }
    // No body at all is fine too.
    let r = app.send(Method::POST, &format!("/v1/calls/{done}/cancel"), Some(&app.key), None).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["error"]["details"]["status"], "completed");
    assert_eq!(app.get(&format!("/v1/calls/{done}")).await.body["status"], "completed");

    // Totals per status follow every change.
    let total = |q: &'static str| {
        let app = &app;
        async move { app.get(&format!("/v1/calls{q}")).await.body["pagination"]["total"].clone() }
    };
    assert_eq!(total("").await, 3);
    assert_eq!(total("?status=cancelled").await, 2);
    assert_eq!(total("?status=queued").await, 0);
    assert_eq!(total("?status=scheduled").await, 0);
    assert_eq!(total("?status=in-progress").await, 0);
    assert_eq!(total("?status=completed").await, 1);

    let r = app.post("/v1/calls/60a2e7f3b9c1a83e94d8f2c3/cancel", json!({})).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "not_found");
    let r = app.post("/v1/calls/nope/cancel", json!({})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["details"]["field"], "id");
}

async fn concurrent_creates_and_cancels_keep_totals(b: Backend) {
    let app = busy_app(b).await;
    let template = plain_template(&app).await;
    let body = json!({"phone": "+15551234567", "templateId": template});
    let created = futures::future::join_all((0..12).map(|_| app.post("/v1/calls", body.clone()))).await;
    assert!(created.iter().all(|r| r.status == 201));
    assert_eq!(app.get("/v1/calls").await.body["pagination"]["total"], 12);
    assert_eq!(app.get("/v1/calls?status=queued").await.body["pagination"]["total"], 12);

    // Racing cancels of one call: exactly one wins, the others see it cancelled.
    let id = created[0].body["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/calls/{id}/cancel");
    let results = futures::future::join_all((0..6).map(|_| app.post(&path, json!({})))).await;
    let mut statuses: Vec<u16> = results.iter().map(|r| r.status.as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409]);
    assert_eq!(app.get("/v1/calls?status=cancelled").await.body["pagination"]["total"], 1);
    assert_eq!(app.get("/v1/calls?status=queued").await.body["pagination"]["total"], 11);
    assert_eq!(app.get("/v1/calls").await.body["pagination"]["total"], 12);
}

async fn get_call_not_found(b: Backend) {
    let app = spawn_app(b).await;
    let r = app.get("/v1/calls/60a2e7f3b9c1a83e94d8f2c3").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "not_found");
    let r = app.get("/v1/calls/60a2e7f3b9c1a83e94d8f2c").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["details"]["field"], "id");
    let r = app.get("/v1/calls").await;
    assert_eq!(r.body, json!({"data": [], "pagination": {"total": 0, "page": 1, "limit": 20, "pages": 0}}));
}

async fn calls_are_isolated_between_accounts(b: Backend) {
    let app = busy_app(b).await;
    let (template, contact) = setup(&app).await;
    let id = id_of(&app.post("/v1/calls", spec_call(&contact, &template)).await);
    let other = app.key_for_account("globex").await;

    let r = app.send(Method::GET, &format!("/v1/calls/{id}"), Some(&other), None).await;
    assert_eq!(r.status, 404);
    let r = app.send(Method::POST, &format!("/v1/calls/{id}/cancel"), Some(&other), Some(&json!({}))).await;
    assert_eq!(r.status, 404);
    for query in
        ["".to_owned(), "?status=queued".to_owned(), format!("?contactId={contact}"), "?startDate=2000-01-01".into()]
    {
        let r = app.send(Method::GET, &format!("/v1/calls{query}"), Some(&other), None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["pagination"]["total"], 0, "{query}");
        assert_eq!(r.body["data"], json!([]));
    }
    // This account's template and contact do not exist for the other one.
    let r = app.send(Method::POST, "/v1/calls", Some(&other), Some(&spec_call(&contact, &template))).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["details"]["field"], "templateId");
    let other_template =
        app.send(Method::POST, "/v1/templates", Some(&other), Some(&spec_template())).await.body["id"].clone();
    let body = spec_call(&contact, other_template.as_str().unwrap());
    let r = app.send(Method::POST, "/v1/calls", Some(&other), Some(&body)).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["details"]["field"], "contactId");

    let r = app.get(&format!("/v1/calls/{id}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "queued");
    assert_eq!(app.get("/v1/calls").await.body["pagination"]["total"], 1);
}

both_backends!(
    create_call_spec_example,
    create_call_validation_errors,
    call_variables_given_derived_and_missing,
    do_not_call_contacts_are_refused,
    list_calls_filters,
    list_calls_pagination,
    cancel_calls,
    concurrent_creates_and_cancels_keep_totals,
    get_call_not_found,
    calls_are_isolated_between_accounts,
);
