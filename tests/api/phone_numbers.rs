//! `/v1/phone-numbers`: create, read, update, delete; validation; one account per
//! Twilio number (409, also across accounts and under concurrent creates); tenant isolation;
//! list pages and filters; templates in use; the inbound routing lookup. Twilio numbers are
//! checked against a local fake of Twilio's REST API (the gateway's default account owns
//! `TWILIO_NUMBERS`); tests/telephony/tenants.rs covers accounts with their own.

use callcenter::domain::Phone;
use callcenter::store::{accounts, phone_numbers};
use reqwest::Method;
use serde_json::{Value, json};

use callcenter::config::TwilioConfig;
use callcenter::store::phone_numbers::twilio_route;

use crate::both_backends;
use crate::common::fake_twilio::{FakeAccount, default_account, fake_twilio_with};
use crate::helpers::*;
use crate::templates::spec_template;

fn id_of(r: &Resp) -> String {
    assert!(r.status.is_success(), "{} {}", r.status, r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

/// An app whose rate limit does not get in the way of tests that make many requests, with a
/// default Twilio account (a local fake) that owns the numbers these tests register.
async fn busy_app(b: Backend) -> TestApp {
    let mut numbers: Vec<String> =
        ["+15557654321", "+15557654322", "+442079460958", "+15550109999"].map(String::from).into();
    numbers.extend((0..25).map(|i| format!("+1555010{i:04}")));
    let account = FakeAccount { numbers, ..default_account() };
    let (api_base, _) = fake_twilio_with(vec![account.clone()]).await;
    spawn_app_with(b, |c| {
        c.rate_limit_per_minute = 100_000;
        c.telephony.twilio = Some(TwilioConfig {
            account_sid: account.sid.into(),
            auth_token: account.token.into(),
            caller_id: None,
            api_base: api_base.clone(),
        });
        c.telephony.twilio_api_base = api_base;
    })
    .await
}

/// A template without variables.
async fn plain_template(app: &TestApp, key: &str) -> String {
    let body = json!({"name": "Plain", "steps": [{"type": "greeting", "content": "Hello, how can we help?"}]});
    id_of(&app.send(Method::POST, "/v1/templates", Some(key), Some(&body)).await)
}

fn spec_variables() -> Value {
    json!({"companyName": "Acme Inc", "contactName": "there", "productName": "Premium Widget"})
}

async fn crud(b: Backend) {
    let app = busy_app(b).await;
    let template = id_of(&app.post("/v1/templates", spec_template()).await);
    let plain = plain_template(&app, &app.key).await;

    // Minimal body: carrier defaults to the simulator, the number is normalised to E.164,
    // numbers and booleans in variables become strings as on POST /v1/calls.
    let body = json!({
        "phone": "+1 (555) 765-4321",
        "templateId": template,
        "variables": {"companyName": "Acme Inc", "contactName": "there", "productName": 42},
    });
    let r = app.post("/v1/phone-numbers", body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let n = r.body.clone();
    assert_id(&n["id"]);
    assert_eq!(n["phone"], "+15557654321");
    assert_eq!(n["templateId"], template.as_str());
    assert_eq!(n["variables"], json!({"companyName": "Acme Inc", "contactName": "there", "productName": "42"}));
    assert_eq!(n["carrier"], "simulator");
    assert_eq!(n["name"], Value::Null);
    assert_time(&n["createdAt"]);
    assert_time(&n["updatedAt"]);
    let mut keys: Vec<&String> = n.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["carrier", "carrierId", "createdAt", "id", "name", "phone", "templateId", "updatedAt", "variables"],
        "exactly the documented fields"
    );
    let id = n["id"].as_str().unwrap();
    let path = format!("/v1/phone-numbers/{id}");
    let r = app.get(&path).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, n, "GET shows what POST returned");

    // Everything given.
    let r = app
        .post(
            "/v1/phone-numbers",
            json!({"phone": "+442079460958", "templateId": plain, "carrier": "twilio", "name": "  London desk  "}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["carrier"], "twilio");
    assert_eq!(r.body["name"], "London desk");
    assert_eq!(r.body["variables"], json!({}));

    // PATCH is partial.
    let r = app.patch(&path, json!({"carrier": "twilio", "name": "Support line"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["carrier"], "twilio");
    assert_eq!(r.body["name"], "Support line");
    for field in ["id", "phone", "templateId", "variables", "createdAt"] {
        assert_eq!(r.body[field], n[field], "{field} untouched");
    }
    assert_time(&r.body["updatedAt"]);
    // Another template; the new template's variables (none) are satisfied by the old values.
    let r = app.patch(&path, json!({"templateId": plain})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["templateId"], plain.as_str());
    assert_eq!(r.body["variables"], n["variables"], "values stay unless given");
    let r = app.patch(&path, json!({"variables": {"greeting": true}, "name": null, "carrier": "simulator"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["variables"], json!({"greeting": "true"}));
    assert_eq!(r.body["name"], Value::Null);
    assert_eq!(r.body["carrier"], "simulator");
    // Back to a template with variables: they must all come with it.
    let r = app.patch(&path, json!({"templateId": template, "variables": spec_variables()})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app.get(&path).await;
    assert_eq!(r.body["templateId"], template.as_str());
    assert_eq!(r.body["variables"], spec_variables());
    assert_eq!(r.body["phone"], "+15557654321");
    assert_eq!(r.body["createdAt"], n["createdAt"]);

    // DELETE, then it is gone, and the number can be registered again.
    let r = app.delete(&path).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(r.body, Value::Null);
    let r = app.get(&path).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "not_found");
    assert_eq!(app.delete(&path).await.status, 404);
    assert_eq!(app.patch(&path, json!({"name": "x"})).await.status, 404);
    let r = app.post("/v1/phone-numbers", json!({"phone": "+15557654321", "templateId": plain})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_ne!(r.body["id"], n["id"]);
    assert_eq!(app.get("/v1/phone-numbers").await.body["pagination"]["total"], 2);
}

async fn validation_errors(b: Backend) {
    let app = busy_app(b).await;
    let template = id_of(&app.post("/v1/templates", spec_template()).await);
    let ok = json!({"phone": "+15557654321", "templateId": template, "variables": spec_variables()});
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
        (without("phone"), "body"),
        (without("templateId"), "body"),
        (with("phone", json!("5557654321")), "phone"),
        (with("phone", json!("+1 call me")), "phone"),
        (with("phone", json!("+0123456")), "phone"),
        (with("phone", json!("")), "phone"),
        (with("phone", json!(15557654321u64)), "phone"),
        (with("phone", json!(null)), "phone"),
        (with("templateId", json!("not-an-id")), "templateId"),
        (with("templateId", json!(42)), "templateId"),
        (with("variables", json!("companyName=Acme")), "variables"),
        (with("variables", json!(["Acme"])), "variables"),
        (with("variables", json!({"companyName": {"legal": "Acme"}})), "variables.companyName"),
        (with("variables", json!({"companyName": null})), "variables.companyName"),
        (with("variables", json!({"bad name": "x"})), "variables.bad name"),
        (with("variables", json!({"companyName": "x".repeat(1001)})), "variables.companyName"),
        (with("carrier", json!("pstn")), "carrier"),
        (with("name", json!("x".repeat(201))), "name"),
        (with("name", json!(["Support"])), "name"),
        (with("id", json!("60a2e7f3b9c1a83e94d8f2b2")), "id"),
        (with("direction", json!("inbound")), "direction"),
    ];
    for (body, field) in cases {
        let r = app.post("/v1/phone-numbers", body.clone()).await;
        assert_eq!(r.status, 400, "{body} -> {}", r.body);
        assert_eq!(r.error_code(), "invalid_parameter", "{body}");
        assert_eq!(r.body["error"]["details"]["field"], field, "{body} -> {}", r.body);
    }
    // A number where an enum is expected: serde_json reports this one as a syntax error, so
    // the shared extractor answers `invalid_request` (as it does for a template step's type).
    let r = app.post("/v1/phone-numbers", with("carrier", json!(1))).await;
    assert_eq!(r.status, 400, "{}", r.body);
    // The template's variables must all have values: the caller may be no known contact.
    let r = app.post("/v1/phone-numbers", with("variables", json!({"companyName": "Acme Inc"}))).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["error"]["details"]["field"], "variables");
    assert_eq!(r.body["error"]["details"]["missing"], json!(["contactName", "productName"]));
    let r = app.post("/v1/phone-numbers", without("variables")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["error"]["details"]["missing"], json!(["companyName", "contactName", "productName"]));
    // A well-formed template id the account does not have: 404 naming the field, as on POST /v1/calls.
    let r = app.post("/v1/phone-numbers", with("templateId", json!("60a2e7f3b9c1a83e94d8f2b2"))).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.error_code(), "not_found");
    assert_eq!(r.body["error"]["details"]["field"], "templateId");
    // Not JSON at all.
    let r = app.post_raw("/v1/phone-numbers", "application/json", "{\"phone\": ").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "invalid_request");
    let r = app.post_raw("/v1/phone-numbers", "text/plain", ok.to_string()).await;
    assert_eq!(r.status, 415);
    assert_eq!(app.get("/v1/phone-numbers").await.body["pagination"]["total"], 0, "nothing was created");

    // PATCH: the number is immutable, fields may not be nulled, the same value checks apply.
    let id = id_of(&app.post("/v1/phone-numbers", ok.clone()).await);
    let path = format!("/v1/phone-numbers/{id}");
    let plain = plain_template(&app, &app.key).await;
    for (body, field) in [
        (json!({"phone": "+15550001111"}), "phone"),
        (json!({"phone": "+15557654321", "name": "Same number"}), "phone"),
        (json!({"phone": null}), "phone"),
        (json!({"templateId": null}), "templateId"),
        (json!({"templateId": "xyz"}), "templateId"),
        (json!({"variables": null}), "variables"),
        (json!({"variables": {"companyName": 1.5, "x y": "z"}}), "variables.x y"),
        (json!({"carrier": null}), "carrier"),
        (json!({"carrier": "pstn"}), "carrier"),
        (json!({"name": "x".repeat(201)}), "name"),
        (json!({"createdAt": "2025-05-20T15:30:00Z"}), "createdAt"),
        (json!({"variables": {"companyName": "Acme Inc"}}), "variables"),
    ] {
        let r = app.patch(&path, body.clone()).await;
        assert_eq!(r.status, 400, "{body} -> {}", r.body);
        assert_eq!(r.error_code(), "invalid_parameter", "{body}");
        assert_eq!(r.body["error"]["details"]["field"], field, "{body} -> {}", r.body);
    }
    let r = app.patch(&path, json!({"phone": "+15550001111"})).await;
    assert!(r.body["error"]["details"]["reason"].as_str().unwrap().contains("cannot be changed"), "{}", r.body);
    let r = app.patch(&path, json!({"templateId": "60a2e7f3b9c1a83e94d8f2b2"})).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.body["error"]["details"]["field"], "templateId");
    // Changing only the label is not blocked by the template's variables.
    let r = app.patch(&path, json!({"name": "Main line"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app.get(&path).await;
    assert_eq!(r.body["phone"], "+15557654321", "failed updates changed nothing");
    assert_eq!(r.body["templateId"], template.as_str());
    assert_eq!(r.body["variables"], spec_variables());
    assert_eq!(r.body["carrier"], "simulator");
    assert_eq!(r.body["name"], "Main line");
    let r = app.patch(&path, json!({"templateId": plain, "variables": {}})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["variables"], json!({}));
    let r = app.patch("/v1/phone-numbers/nope", json!({"name": "X"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["details"]["field"], "id");
}

async fn a_number_belongs_to_one_account(b: Backend) {
    let app = busy_app(b).await;
    let template = plain_template(&app, &app.key).await;
    let twilio_number = |template: &str| json!({"phone": "+15557654321", "templateId": template, "carrier": "twilio"});
    let r = app.post("/v1/phone-numbers", twilio_number(&template)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let first = id_of(&r);

    // The same number again, written another way: 409 in the API's error shape.
    for phone in ["+15557654321", "+1 555 765 4321", "+1 (555) 765-4321"] {
        let r =
            app.post("/v1/phone-numbers", json!({"phone": phone, "templateId": template, "carrier": "twilio"})).await;
        assert_eq!(r.status, 409, "{phone}: {}", r.body);
        assert_eq!(r.error_code(), "conflict");
        assert_eq!(r.body["error"]["details"]["field"], "phone");
        assert!(r.body["error"]["message"].as_str().unwrap().contains("+15557654321"), "{}", r.body);
    }
    // Another account cannot take it either, and learns nothing about the owner.
    let other = app.key_for_account("globex").await;
    let other_template = plain_template(&app, &other).await;
    let body = twilio_number(&other_template);
    let r = app.send(Method::POST, "/v1/phone-numbers", Some(&other), Some(&body)).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.error_code(), "conflict");
    assert!(!r.body.to_string().contains(&first), "the owner's number id is not shown: {}", r.body);
    let r = app.get(&format!("/v1/phone-numbers/{first}")).await;
    assert_eq!(r.body["templateId"], template.as_str(), "the refused creates changed nothing");
    // The simulator has no owners: the same number there is each account's own.
    let simulated = json!({"phone": "+15557654321", "templateId": other_template});
    assert_eq!(app.send(Method::POST, "/v1/phone-numbers", Some(&other), Some(&simulated)).await.status, 201);
    // Once the owner deletes it, the other account can register it.
    assert_eq!(app.delete(&format!("/v1/phone-numbers/{first}")).await.status, 204);
    let r = app.send(Method::POST, "/v1/phone-numbers", Some(&other), Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = app.post("/v1/phone-numbers", twilio_number(&template)).await;
    assert_eq!(r.status, 409, "{}", r.body);
}

/// Twilio numbers: every tenant here acts with the gateway's default Twilio account.
async fn concurrent_creates_of_one_number(b: Backend) {
    let app = busy_app(b).await;
    let mut keys = Vec::new();
    for i in 0..8 {
        let key = app.key_for_account(&format!("tenant{i}")).await;
        let template = plain_template(&app, &key).await;
        keys.push((key, template));
    }
    let requests = keys.iter().map(|(key, template)| {
        let body = json!({"phone": "+15550109999", "templateId": template, "carrier": "twilio"});
        let app = &app;
        async move { app.send(Method::POST, "/v1/phone-numbers", Some(key), Some(&body)).await }
    });
    let responses = futures::future::join_all(requests).await;
    let created: Vec<&Resp> = responses.iter().filter(|r| r.status == 201).collect();
    assert_eq!(created.len(), 1, "{:?}", responses.iter().map(|r| (r.status, &r.body)).collect::<Vec<_>>());
    for r in responses.iter().filter(|r| r.status != 201) {
        assert_eq!(r.status, 409, "{}", r.body);
        assert_eq!(r.error_code(), "conflict");
    }
    let phone = Phone::parse("+15550109999").unwrap();
    let route = twilio_route(None, &phone);
    let (_, number) = phone_numbers::find_by_route(&app.state.db, &route).await.unwrap().expect("registered");
    assert_eq!(number.id.as_str(), created[0].body["id"].as_str().unwrap());
}

async fn numbers_are_isolated_between_accounts(b: Backend) {
    let app = spawn_app(b).await;
    let template = plain_template(&app, &app.key).await;
    let id = id_of(&app.post("/v1/phone-numbers", json!({"phone": "+15557654321", "templateId": template})).await);
    let other = app.key_for_account("globex").await;
    let path = format!("/v1/phone-numbers/{id}");
    for method in [Method::GET, Method::DELETE] {
        let r = app.send(method, &path, Some(&other), None).await;
        assert_eq!(r.status, 404);
        assert_eq!(r.error_code(), "not_found");
    }
    let r = app.send(Method::PATCH, &path, Some(&other), Some(&json!({"name": "Mine now"}))).await;
    assert_eq!(r.status, 404);
    for query in ["", "?carrier=simulator", &format!("?templateId={template}"), "?phone=%2B15557654321"] {
        let r = app.send(Method::GET, &format!("/v1/phone-numbers{query}"), Some(&other), None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["pagination"]["total"], 0, "{query}");
    }
    // Another account's template cannot be mapped, on create or on update.
    let other_template = plain_template(&app, &other).await;
    let r = app.post("/v1/phone-numbers", json!({"phone": "+15557654322", "templateId": other_template})).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.body["error"]["details"]["field"], "templateId");
    let r = app.patch(&path, json!({"templateId": other_template})).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.body["error"]["details"]["field"], "templateId");
    let r = app.get(&path).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["name"], Value::Null);
    assert_eq!(r.body["templateId"], template.as_str());
}

async fn list_pages_and_filters(b: Backend) {
    let app = busy_app(b).await;
    let first = plain_template(&app, &app.key).await;
    let second = plain_template(&app, &app.key).await;
    for i in 0..25 {
        let body = json!({
            "phone": format!("+1555010{i:04}"),
            "templateId": if i % 5 == 0 { &second } else { &first },
            "carrier": if i % 2 == 0 { "simulator" } else { "twilio" },
            "name": format!("Line {i:02}"),
        });
        assert_eq!(app.post("/v1/phone-numbers", body).await.status, 201);
    }
    let r = app.get("/v1/phone-numbers").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["pagination"], json!({"total": 25, "page": 1, "limit": 20, "pages": 2}));
    let data = r.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 20);
    assert_eq!(data[0]["name"], "Line 24", "newest first");
    assert_eq!(data[0]["phone"], "+15550100024");
    let r = app.get("/v1/phone-numbers?page=2").await;
    let data = r.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 5);
    assert_eq!(data[4]["name"], "Line 00");
    let r = app.get("/v1/phone-numbers?page=3").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"], json!([]));
    assert_eq!(r.body["pagination"]["total"], 25);
    let r = app.get("/v1/phone-numbers?limit=100").await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 25);
    assert_eq!(r.body["pagination"]["pages"], 1);
    let r = app.get("/v1/phone-numbers?limit=7&page=4").await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 4);
    assert_eq!(r.body["data"][3]["name"], "Line 00");

    let total = |r: &Resp| r.body["pagination"]["total"].as_i64().unwrap();
    assert_eq!(total(&app.get("/v1/phone-numbers?carrier=simulator").await), 13);
    assert_eq!(total(&app.get("/v1/phone-numbers?carrier=twilio").await), 12);
    let r = app.get(&format!("/v1/phone-numbers?templateId={second}")).await;
    assert_eq!(total(&r), 5, "numbers 0, 5, 10, 15, 20");
    assert!(r.body["data"].as_array().unwrap().iter().all(|n| n["templateId"] == second.as_str()));
    assert_eq!(total(&app.get(&format!("/v1/phone-numbers?templateId={first}&carrier=twilio")).await), 10);
    assert_eq!(total(&app.get(&format!("/v1/phone-numbers?templateId={second}&carrier=twilio")).await), 2);
    assert_eq!(total(&app.get("/v1/phone-numbers?templateId=60a2e7f3b9c1a83e94d8f2b2").await), 0);
    // phone: exact; the '+' may be encoded, sent raw (it arrives as a space) or left out.
    for query in ["phone=%2B15550100007", "phone=+15550100007", "phone=15550100007", "phone=%2B1%20555%20010%200007"] {
        let r = app.get(&format!("/v1/phone-numbers?{query}")).await;
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        assert_eq!(total(&r), 1, "{query}");
        assert_eq!(r.body["data"][0]["name"], "Line 07", "{query}");
    }
    assert_eq!(total(&app.get("/v1/phone-numbers?phone=%2B15550100007&carrier=simulator").await), 0);
    assert_eq!(total(&app.get("/v1/phone-numbers?phone=%2B1555010000").await), 0, "no prefix match");
    // Empty values count as absent, as on the other lists.
    assert_eq!(total(&app.get("/v1/phone-numbers?phone=&carrier=").await), 25);
    for bad in
        ["carrier=pstn", "templateId=abc", "phone=call-me", "phone=%2B0555", "limit=0", "limit=101", "page=0", "page=x"]
    {
        let r = app.get(&format!("/v1/phone-numbers?{bad}")).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(r.error_code(), "invalid_parameter", "{bad}");
        let field = bad.split('=').next().unwrap();
        assert_eq!(r.body["error"]["details"]["field"], field, "{bad}");
    }
}

async fn templates_in_use_by_a_number_are_not_deleted(b: Backend) {
    let app = spawn_app(b).await;
    let template = plain_template(&app, &app.key).await;
    let other_template = plain_template(&app, &app.key).await;
    let a = id_of(&app.post("/v1/phone-numbers", json!({"phone": "+15557654321", "templateId": template})).await);
    let b_id = id_of(&app.post("/v1/phone-numbers", json!({"phone": "+15557654322", "templateId": template})).await);
    let path = format!("/v1/templates/{template}");
    let r = app.delete(&path).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.error_code(), "conflict");
    assert_eq!(r.body["error"]["details"]["phoneNumberIds"], json!([a, b_id]));
    assert_eq!(r.body["error"]["details"]["campaignIds"], json!([]));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("2 inbound phone number(s)"), "{}", r.body);
    assert_eq!(app.get(&path).await.status, 200, "still there");

    // Repoint one number and delete the other: then the template goes.
    let r = app.patch(&format!("/v1/phone-numbers/{a}"), json!({"templateId": other_template})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app.delete(&path).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.body["error"]["details"]["phoneNumberIds"], json!([b_id]));
    assert_eq!(app.delete(&format!("/v1/phone-numbers/{b_id}")).await.status, 204);
    let r = app.delete(&path).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(app.get(&path).await.status, 404);
}

async fn find_by_phone_routes_inbound_calls(b: Backend) {
    let app = busy_app(b).await;
    let acme = accounts::ensure_account(&app.state.db, "acme").await.unwrap();
    let other = app.key_for_account("globex").await;
    let globex = accounts::ensure_account(&app.state.db, "globex").await.unwrap();
    let acme_template = id_of(&app.post("/v1/templates", spec_template()).await);
    let globex_template = plain_template(&app, &other).await;
    let body =
        json!({"phone": "+15557654321", "templateId": acme_template, "variables": spec_variables(), "name": "Sales"});
    let acme_number = app.post("/v1/phone-numbers", body).await.body;
    let body = json!({"phone": "+442079460958", "templateId": globex_template, "carrier": "twilio"});
    let globex_number = app.send(Method::POST, "/v1/phone-numbers", Some(&other), Some(&body)).await.body;

    let lookup = |phone: &str| {
        let phone = Phone::parse(phone).unwrap();
        let db = app.state.db.clone();
        async move { phone_numbers::find_by_route(&db, &twilio_route(None, &phone)).await.unwrap() }
    };
    // A simulator number receives no carrier's calls.
    assert!(lookup("+1 555 765 4321").await.is_none());
    let id = acme_number["id"].as_str().unwrap();
    let r = app.patch(&format!("/v1/phone-numbers/{id}"), json!({"carrier": "twilio"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let acme_number = r.body;
    let (account, number) = lookup("+1 555 765 4321").await.expect("acme's number");
    assert_eq!(account, acme);
    assert_eq!(serde_json::to_value(&number).unwrap(), acme_number, "the same record the API shows");
    assert_eq!(number.variables.get("productName").map(String::as_str), Some("Premium Widget"));
    let (account, number) = lookup("+44 20 7946 0958").await.expect("globex's number");
    assert_eq!(account, globex);
    assert_eq!(number.id.as_str(), globex_number["id"].as_str().unwrap());
    assert_eq!(number.template_id.as_str(), globex_template);
    assert_eq!(number.carrier.as_str(), "twilio");
    assert!(lookup("+15557654320").await.is_none(), "an unknown number routes nowhere");

    // Updates are seen by the lookup; a deleted number routes nowhere.
    let r = app.patch(&format!("/v1/phone-numbers/{id}"), json!({"carrier": "simulator"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(lookup("+15557654321").await.is_none());
    let r = app.patch(&format!("/v1/phone-numbers/{id}"), json!({"carrier": "twilio"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(lookup("+15557654321").await.unwrap().1.carrier.as_str(), "twilio");
    assert_eq!(app.delete(&format!("/v1/phone-numbers/{id}")).await.status, 204);
    assert!(lookup("+15557654321").await.is_none());
}

both_backends!(
    crud,
    validation_errors,
    a_number_belongs_to_one_account,
    concurrent_creates_of_one_number,
    numbers_are_isolated_between_accounts,
    list_pages_and_filters,
    templates_in_use_by_a_number_are_not_deleted,
    find_by_phone_routes_inbound_calls,
);
