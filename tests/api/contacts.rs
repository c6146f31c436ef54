use serde_json::json;

use crate::both_backends;
use crate::helpers::*;

fn spec_contact() -> serde_json::Value {
    json!({
        "name": "John Smith",
        "phone": "+15551234567",
        "email": "john.smith@example.com",
        "company": "Acme Inc",
        "tags": ["customer", "vip"],
        "customFields": {"industry": "Technology", "lastPurchase": "2025-04-15"}
    })
}

async fn create_contact_spec_example(b: Backend) {
    let app = spawn_app(b).await;
    let r = app.post("/v1/contacts", spec_contact()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let c = &r.body;
    assert_id(&c["id"]);
    for field in ["name", "phone", "email", "company", "tags", "customFields"] {
        assert_eq!(c[field], spec_contact()[field], "{field}");
    }
    assert_time(&c["createdAt"]);
    assert_eq!(c["doNotCall"], false);
    assert_eq!(c["phoneValid"], false, "+1555 numbers are fictional");

    let id = c["id"].as_str().unwrap();
    let r = app.get(&format!("/v1/contacts/{id}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["callHistory"], json!([]));
    assert_time(&r.body["updatedAt"]);
    assert_eq!(r.body["customFields"]["industry"], "Technology");
}

async fn contact_validation_errors(b: Backend) {
    let app = spawn_app(b).await;
    let cases = [
        (json!({"name": "A", "phone": "5551234567"}), "phone"),
        (json!({"name": "A", "phone": "+1 not a number"}), "phone"),
        (json!({"name": "", "phone": "+15551234567"}), "name"),
        (json!({"phone": "+15551234567"}), "body"),
        (json!({"name": "A", "phone": "+15551234567", "email": "nope"}), "email"),
        (json!({"name": "A", "phone": 15551234567u64}), "phone"),
        (json!({"name": "A", "phone": "+15551234567", "tags": "vip"}), "tags"),
        (json!({"name": "A", "phone": "+15551234567", "nickname": "Al"}), "nickname"),
    ];
    for (body, field) in cases {
        let r = app.post("/v1/contacts", body.clone()).await;
        assert_eq!(r.status, 400, "{body} -> {}", r.body);
        assert_eq!(r.error_code(), "invalid_parameter", "{body}");
        assert_eq!(r.body["error"]["details"]["field"], field, "{body} -> {}", r.body);
    }
    let r = app.post_raw("/v1/contacts", "application/json", "{\"name\": ").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "invalid_request");
    let r = app.post_raw("/v1/contacts", "text/plain", "hello").await;
    assert_eq!(r.status, 415);
    assert_eq!(r.error_code(), "unsupported_media_type");
    let big = format!("{{\"name\": \"{}\", \"phone\": \"+15551234567\"}}", "x".repeat(2 * 1024 * 1024));
    let r = app.post_raw("/v1/contacts", "application/json", big).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.error_code(), "payload_too_large");
}

async fn list_contacts_filters_and_pages(b: Backend) {
    let app = spawn_app(b).await;
    for i in 0..25 {
        let tags = if i % 5 == 0 { json!(["vip"]) } else { json!(["lead"]) };
        let r = app
            .post(
                "/v1/contacts",
                json!({"name": format!("Person {i:02}"), "phone": format!("+1555000{i:04}"), "email": format!("p{i}@example.com"), "tags": tags}),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    let r = app.get("/v1/contacts").await;
    assert_eq!(r.body["pagination"], json!({"total": 25, "page": 1, "limit": 20, "pages": 2}));
    assert_eq!(r.body["data"].as_array().unwrap().len(), 20);
    assert_eq!(r.body["data"][0]["name"], "Person 24", "newest first");
    let r = app.get("/v1/contacts?page=2&limit=20").await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 5);
    let r = app.get("/v1/contacts?page=9").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"], json!([]));
    assert_eq!(r.body["pagination"]["total"], 25);
    let r = app.get("/v1/contacts?tag=vip").await;
    assert_eq!(r.body["pagination"]["total"], 5);
    let r = app.get("/v1/contacts?search=PERSON%2007").await;
    assert_eq!(r.body["pagination"]["total"], 1);
    let r = app.get("/v1/contacts?search=p12%40example").await;
    assert_eq!(r.body["pagination"]["total"], 1);
    let r = app.get("/v1/contacts?search=%2B15550000013").await;
    assert_eq!(r.body["data"][0]["name"], "Person 13");
    let r = app.get("/v1/contacts?search=100%25").await;
    assert_eq!(r.body["pagination"]["total"], 0, "% is matched literally");
    for bad in ["limit=0", "limit=101", "limit=abc", "page=0", "page=-1", "page=x"] {
        let r = app.get(&format!("/v1/contacts?{bad}")).await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.error_code(), "invalid_parameter");
    }
    let r = app.get("/v1/contacts?limit=100").await;
    assert_eq!(r.body["pagination"]["limit"], 100);
}

async fn update_and_delete_contact(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.post("/v1/contacts", spec_contact()).await.body["id"].as_str().unwrap().to_owned();
    let r =
        app.patch(&format!("/v1/contacts/{id}"), json!({"doNotCall": true, "email": null, "tags": ["former"]})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["doNotCall"], true);
    assert_eq!(r.body["email"], json!(null));
    assert_eq!(r.body["name"], "John Smith");
    assert_eq!(app.get("/v1/contacts?tag=vip").await.body["pagination"]["total"], 0);
    assert_eq!(app.get("/v1/contacts?tag=former").await.body["pagination"]["total"], 1);
    let r = app.patch(&format!("/v1/contacts/{id}"), json!({"phone": "12"})).await;
    assert_eq!(r.status, 400);
    // A PATCH is held to what a POST is: custom fields are bounded in count and size.
    let many: serde_json::Map<String, serde_json::Value> = (0..101).map(|i| (format!("f{i}"), json!("x"))).collect();
    let huge = json!({"notes": "x".repeat(5000)});
    for fields in [serde_json::Value::Object(many), huge] {
        for r in [
            app.patch(&format!("/v1/contacts/{id}"), json!({"customFields": fields.clone()})).await,
            app.post("/v1/contacts", json!({"name": "B", "phone": "+15551234999", "customFields": fields})).await,
        ] {
            assert_eq!(r.status, 400, "{}", r.body);
            assert!(r.body["error"]["details"]["field"].as_str().unwrap().starts_with("customFields"), "{}", r.body);
        }
    }
    let r = app.delete(&format!("/v1/contacts/{id}")).await;
    assert_eq!(r.status, 204);
    let r = app.get(&format!("/v1/contacts/{id}")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "not_found");
    let r = app.delete(&format!("/v1/contacts/{id}")).await;
    assert_eq!(r.status, 404);
}

async fn contacts_are_isolated_between_accounts(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.post("/v1/contacts", spec_contact()).await.body["id"].as_str().unwrap().to_owned();
    let other = app.key_for_account("globex").await;
    let path = format!("/v1/contacts/{id}");
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let r = app.send(method, &path, Some(&other), None).await;
        assert_eq!(r.status, 404);
    }
    let r = app.send(reqwest::Method::PATCH, &path, Some(&other), Some(&json!({"name": "X"}))).await;
    assert_eq!(r.status, 404);
    let r = app.send(reqwest::Method::GET, "/v1/contacts", Some(&other), None).await;
    assert_eq!(r.body["pagination"]["total"], 0);
    assert_eq!(app.get(&path).await.body["name"], "John Smith");
}

both_backends!(
    create_contact_spec_example,
    contact_validation_errors,
    list_contacts_filters_and_pages,
    update_and_delete_contact,
    contacts_are_isolated_between_accounts,
);
