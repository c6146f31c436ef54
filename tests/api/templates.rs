//! `/v1/templates`: the spec's example, defaults, validation, list filters, update,
//! delete (with the live-campaign conflict) and tenant isolation.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::*;

pub fn spec_template() -> Value {
    json!({
        "name": "Sales Outreach",
        "description": "Template for initial sales calls",
        "industry": "sales",
        "steps": [
            {"type": "greeting", "content": "Hello, this is {companyName}. Am I speaking with {contactName}?"},
            {"type": "information", "content": "I'm calling to tell you about our new {productName} that I think would be perfect for your business."},
            {"type": "question", "content": "Do you have a few minutes to discuss how this could benefit your company?"},
            {"type": "response", "content": "Great! Let me tell you about our key features..."},
            {"type": "closing", "content": "Thank you for your time. Would you like to schedule a follow-up call with one of our specialists?"}
        ],
        "variables": ["companyName", "contactName", "productName"]
    })
}

fn step(content: &str) -> Value {
    json!({"type": "greeting", "content": content})
}

fn id_of(r: &Resp) -> String {
    assert!(r.status.is_success(), "{} {}", r.status, r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

/// Inserts a campaign row directly (campaigns have their own API; this only needs the row).
async fn seed_campaign(app: &TestApp, account_name: &str, template_id: &str, status: &str) -> String {
    let account = callcenter::store::accounts::ensure_account(&app.state.db, account_name).await.unwrap();
    let id = callcenter::domain::Id::generate().into_string();
    let now = callcenter::domain::Timestamp::now().to_db();
    sqlx::query(
        "INSERT INTO campaigns (id, account_id, name, status, template_id, total_contacts, call_settings, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 0, '{}', $6, $6)",
    )
    .bind(id.clone())
    .bind(account.as_str().to_owned())
    .bind(format!("Campaign {status}"))
    .bind(status.to_owned())
    .bind(template_id.to_owned())
    .bind(now)
    .execute(&app.state.db.write)
    .await
    .unwrap();
    id
}

async fn create_template_spec_example(b: Backend) {
    let app = spawn_app(b).await;
    let r = app.post("/v1/templates", spec_template()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let t = &r.body;
    assert_id(&t["id"]);
    for field in ["name", "description", "industry", "variables"] {
        assert_eq!(t[field], spec_template()[field], "{field}");
    }
    let steps = t["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5);
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(s["id"], (i + 1).to_string());
        assert_eq!(s["type"], spec_template()["steps"][i]["type"]);
        assert_eq!(s["content"], spec_template()["steps"][i]["content"]);
    }
    assert_eq!(
        steps[0],
        json!({"id": "1", "type": "greeting", "content": "Hello, this is {companyName}. Am I speaking with {contactName}?"})
    );
    assert_eq!(t["usageCount"], 0);
    assert_time(&t["createdAt"]);
    assert_time(&t["updatedAt"]);

    let id = t["id"].as_str().unwrap();
    let r = app.get(&format!("/v1/templates/{id}")).await;
    assert_eq!(r.status, 200);
    for field in ["id", "name", "description", "industry", "steps", "variables", "usageCount", "createdAt", "updatedAt"]
    {
        assert_eq!(r.body[field], t[field], "{field}");
    }
}

async fn template_defaults_and_step_ids(b: Backend) {
    let app = spawn_app(b).await;
    // Without `variables`, the placeholders of the steps in order of first appearance.
    let r = app
        .post(
            "/v1/templates",
            json!({"name": "Minimal", "steps": [step("Hi {firstName}, {company} here"), {"type": "closing", "content": "Bye {firstName} from {agent}"}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["variables"], json!(["firstName", "company", "agent"]));
    assert_eq!(r.body["description"], Value::Null);
    assert_eq!(r.body["industry"], Value::Null);
    assert_eq!(r.body["steps"][1]["id"], "2");

    // Ids given for every step are kept.
    let r = app
        .post(
            "/v1/templates",
            json!({"name": "Own ids", "steps": [{"id": "intro", "type": "greeting", "content": "Hi"}, {"id": "bye", "type": "closing", "content": "Bye"}], "variables": []}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["steps"][0]["id"], "intro");
    assert_eq!(r.body["steps"][1]["id"], "bye");
    assert_eq!(r.body["variables"], json!([]));
}

async fn template_validation_errors(b: Backend) {
    let app = spawn_app(b).await;
    let many: Vec<Value> = (0..51).map(|i| step(&format!("Step {i}"))).collect();
    let fifty: Vec<Value> = (0..50).map(|i| step(&format!("Step {i}"))).collect();
    let cases = [
        (json!({"steps": [step("Hi")]}), "body"),
        (json!({"name": "  ", "steps": [step("Hi")]}), "name"),
        (json!({"name": "T"}), "body"),
        (json!({"name": "T", "steps": []}), "steps"),
        (json!({"name": "T", "steps": many}), "steps"),
        (json!({"name": "T", "steps": "hello"}), "steps"),
        (json!({"name": "T", "steps": [{"type": "monologue", "content": "Hi"}]}), "steps[0].type"),
        (json!({"name": "T", "steps": [{"content": "Hi"}]}), "steps[0]"),
        (json!({"name": "T", "steps": [step("Hi"), step("   ")]}), "steps[1].content"),
        (json!({"name": "T", "steps": [step(&"x".repeat(2001))]}), "steps[0].content"),
        (json!({"name": "T", "steps": [{"type": "greeting", "content": "Hi", "voice": "x"}]}), "steps[0].voice"),
        (json!({"name": "T", "steps": [{"id": "a", "type": "greeting", "content": "Hi"}, step("Yo")]}), "steps[1].id"),
        (
            json!({"name": "T", "steps": [{"id": "a", "type": "greeting", "content": "Hi"}, {"id": "a", "type": "closing", "content": "Bye"}]}),
            "steps[1].id",
        ),
        (json!({"name": "T", "steps": [{"id": "", "type": "greeting", "content": "Hi"}]}), "steps[0].id"),
        (json!({"name": "T", "steps": [step("Hi")], "variables": ["a", "a"]}), "variables"),
        (json!({"name": "T", "steps": [step("Hi")], "variables": ["bad name"]}), "variables"),
        (json!({"name": "T", "steps": [step("Hi")], "variables": ["1st"]}), "variables"),
        (json!({"name": "T", "steps": [step("Hi")], "variables": "a"}), "variables"),
        (json!({"name": "T", "steps": [step("Hi")], "category": "x"}), "category"),
    ];
    for (body, field) in cases {
        let r = app.post("/v1/templates", body.clone()).await;
        assert_eq!(r.status, 400, "{body} -> {}", r.body);
        assert_eq!(r.error_code(), "invalid_parameter", "{body}");
        assert_eq!(r.body["error"]["details"]["field"], field, "{body} -> {}", r.body);
    }
    // The limits themselves are accepted.
    let r = app.post("/v1/templates", json!({"name": "T", "steps": fifty})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = app.post("/v1/templates", json!({"name": "T", "steps": [step(&"x".repeat(2000))]})).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

async fn template_branches_and_voicemail_message(b: Backend) {
    let app = spawn_app(b).await;
    let body = json!({
        "name": "Demo offer",
        "steps": [
            {"type": "greeting", "content": "Hi {contactName}, this is Acme."},
            {"type": "question", "content": "Would you like a demo?", "next": {"yes": "3", "no": "4", "optOut": "5", "callback": "5", "unclear": "4", "default": "4"}},
            {"type": "response", "content": "Great, a specialist will call you.", "next": {"default": "5"}},
            {"type": "information", "content": "No problem.", "next": {}},
            {"type": "closing", "content": "Goodbye."}
        ],
        "voicemailMessage": "Hi {contactName}, please call {agentName} back."
    });
    let r = app.post("/v1/templates", body.clone()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let t = r.body;
    assert_eq!(
        t["steps"][1]["next"],
        json!({"yes": "3", "no": "4", "optOut": "5", "callback": "5", "unclear": "4", "default": "4"})
    );
    assert_eq!(t["steps"][2]["next"], json!({"default": "5"}));
    assert!(t["steps"][0].get("next").is_none(), "no next, no key: {}", t["steps"][0]);
    assert!(t["steps"][3].get("next").is_none(), "an empty next is dropped: {}", t["steps"][3]);
    assert_eq!(t["voicemailMessage"], "Hi {contactName}, please call {agentName} back.");
    assert_eq!(t["variables"], json!(["contactName", "agentName"]), "the voicemail message's placeholders count");
    let id = t["id"].as_str().unwrap();
    let path = format!("/v1/templates/{id}");
    let r = app.get(&path).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["steps"], t["steps"]);
    assert_eq!(r.body["voicemailMessage"], t["voicemailMessage"]);

    // Branches by own step ids.
    let r = app
        .post(
            "/v1/templates",
            json!({"name": "Own ids", "steps": [
                {"id": "ask", "type": "question", "content": "Ok?", "next": {"no": "bye"}},
                {"id": "bye", "type": "closing", "content": "Bye."}
            ]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["steps"][0]["next"], json!({"no": "bye"}));
    assert_eq!(r.body["voicemailMessage"], Value::Null);

    // Bad targets and shapes.
    let ask = |next: Value| json!({"name": "T", "steps": [{"type": "question", "content": "Ok?", "next": next}, step("Bye")]});
    for (body, field) in [
        (ask(json!({"yes": "9"})), "steps[0].next.yes"),
        (ask(json!({"no": "2", "default": "3"})), "steps[0].next.default"),
        (ask(json!({"optOut": ""})), "steps[0].next.optOut"),
        (ask(json!({"maybe": "2"})), "steps[0].next.maybe"),
        (ask(json!({"yes": 2})), "steps[0].next.yes"),
        (ask(json!("2")), "steps[0].next"),
        (json!({"name": "T", "steps": [step("Hi")], "voicemailMessage": "x".repeat(2001)}), "voicemailMessage"),
        (json!({"name": "T", "steps": [step("Hi")], "voicemailMessage": 5}), "voicemailMessage"),
    ] {
        let r = app.post("/v1/templates", body.clone()).await;
        assert_eq!(r.status, 400, "{body} -> {}", r.body);
        assert_eq!(r.error_code(), "invalid_parameter", "{body}");
        assert_eq!(r.body["error"]["details"]["field"], field, "{body} -> {}", r.body);
    }
    let r = app.post("/v1/templates", ask(json!({"yes": "9"}))).await;
    assert_eq!(r.body["error"]["details"]["reason"], "no step has id '9'");

    // PATCH: steps replaced with their branches checked; the voicemail message set and cleared.
    let r = app.patch(&path, json!({"steps": [{"type": "question", "content": "Ok?", "next": {"yes": "7"}}]})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["error"]["details"]["field"], "steps[0].next.yes");
    let r = app.patch(&path, json!({"voicemailMessage": "Call us back."})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["voicemailMessage"], "Call us back.");
    assert_eq!(r.body["steps"], t["steps"], "untouched");
    let r = app.patch(&path, json!({"voicemailMessage": null})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["voicemailMessage"], Value::Null);
    assert_eq!(app.get(&path).await.body["voicemailMessage"], Value::Null);

    // The OpenAPI document describes the branches and the keypad digits.
    let doc = app.send(Method::GET, "/v1/openapi.json", None, None).await.body;
    let schemas = &doc["components"]["schemas"];
    let next_doc = schemas["StepNext"]["description"].as_str().unwrap_or_default();
    assert!(next_doc.contains("9 = opt-out") && next_doc.contains("1 = yes"), "StepNext: {next_doc}");
    let step_doc = schemas["Step"]["description"].as_str().unwrap_or_default();
    assert!(step_doc.contains("| 9 | do not call me again (opt-out) |"), "Step: {step_doc}");
    for field in ["yes", "no", "optOut", "callback", "unclear", "default"] {
        assert!(schemas["StepNext"]["properties"].get(field).is_some(), "StepNext.{field}");
    }
    assert!(schemas["CreateTemplate"]["properties"].get("voicemailMessage").is_some());
}

async fn list_templates_filters_and_pages(b: Backend) {
    let app = spawn_app(b).await;
    let industries = ["sales", "Sales", "healthcare", "Real Estate", "sales-ops"];
    for i in 0..25 {
        let mut body = json!({
            "name": format!("Script {i:02}"),
            "steps": [step("Hello"), step("Hi again {x}")],
            "industry": industries[i % industries.len()],
        });
        if i % 6 == 0 {
            body["description"] = json!(format!("Renewal reminder 100% #{i}"));
        }
        assert_eq!(app.post("/v1/templates", body).await.status, 201);
    }
    let r = app.get("/v1/templates").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["pagination"], json!({"total": 25, "page": 1, "limit": 20, "pages": 2}));
    let data = r.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 20);
    assert_eq!(data[0]["name"], "Script 24", "newest first");
    for field in ["id", "name", "description", "industry", "stepCount", "usageCount", "createdAt"] {
        assert!(data[0].get(field).is_some(), "{field} missing in {}", data[0]);
    }
    assert_eq!(data[0]["stepCount"], 2);
    assert_eq!(data[0]["usageCount"], 0);
    assert_time(&data[0]["createdAt"]);

    let r = app.get("/v1/templates?page=2").await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 5);
    assert_eq!(r.body["data"][4]["name"], "Script 00");
    let r = app.get("/v1/templates?page=3").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"], json!([]));
    assert_eq!(r.body["pagination"]["total"], 25);
    let r = app.get("/v1/templates?limit=100").await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 25);
    assert_eq!(r.body["pagination"]["pages"], 1);
    let r = app.get("/v1/templates?limit=1&page=25").await;
    assert_eq!(r.body["data"][0]["name"], "Script 00");
    for bad in ["limit=0", "limit=101", "limit=abc", "page=0", "page=x"] {
        let r = app.get(&format!("/v1/templates?{bad}")).await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.error_code(), "invalid_parameter");
    }

    // industry: case-insensitive, exact (not a prefix or substring).
    let r = app.get("/v1/templates?industry=SALES").await;
    assert_eq!(r.body["pagination"]["total"], 10, "sales and Sales");
    let r = app.get("/v1/templates?industry=real%20estate").await;
    assert_eq!(r.body["pagination"]["total"], 5);
    let r = app.get("/v1/templates?industry=sal").await;
    assert_eq!(r.body["pagination"]["total"], 0);
    // search: name or description, case-insensitive substring; wildcards are literal.
    let r = app.get("/v1/templates?search=script%2007").await;
    assert_eq!(r.body["pagination"]["total"], 1);
    assert_eq!(r.body["data"][0]["name"], "Script 07");
    let r = app.get("/v1/templates?search=RENEWAL").await;
    assert_eq!(r.body["pagination"]["total"], 5, "templates 0, 6, 12, 18, 24");
    let r = app.get("/v1/templates?search=100%25").await;
    assert_eq!(r.body["pagination"]["total"], 5);
    let r = app.get("/v1/templates?search=0%25").await;
    assert_eq!(r.body["pagination"]["total"], 5, "% is matched literally");
    let r = app.get("/v1/templates?search=_").await;
    assert_eq!(r.body["pagination"]["total"], 0, "_ is matched literally");
    let r = app.get("/v1/templates?search=renewal&industry=sales").await;
    assert_eq!(r.body["pagination"]["total"], 2, "templates 0 (sales) and 6 (Sales)");
}

async fn usage_count_counts_calls(b: Backend) {
    let app = spawn_app(b).await;
    let used = id_of(&app.post("/v1/templates", json!({"name": "Used", "steps": [step("Hi")]})).await);
    let unused = id_of(&app.post("/v1/templates", json!({"name": "Unused", "steps": [step("Hi")]})).await);
    for _ in 0..3 {
        let r = app.post("/v1/calls", json!({"phone": "+15551234567", "templateId": used})).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    assert_eq!(app.get(&format!("/v1/templates/{used}")).await.body["usageCount"], 3);
    assert_eq!(app.get(&format!("/v1/templates/{unused}")).await.body["usageCount"], 0);
    let r = app.get("/v1/templates").await;
    assert_eq!(r.body["data"][0]["name"], "Unused");
    assert_eq!(r.body["data"][0]["usageCount"], 0);
    assert_eq!(r.body["data"][1]["usageCount"], 3);
    // Another account's calls never count, and it cannot use this template.
    let other = app.key_for_account("globex").await;
    let body = json!({"phone": "+15551234567", "templateId": used});
    let r = app.send(Method::POST, "/v1/calls", Some(&other), Some(&body)).await;
    assert_eq!(r.status, 404);
    assert_eq!(app.get(&format!("/v1/templates/{used}")).await.body["usageCount"], 3);
}

async fn update_template(b: Backend) {
    let app = spawn_app(b).await;
    let id = id_of(&app.post("/v1/templates", spec_template()).await);
    let path = format!("/v1/templates/{id}");
    let created = app.get(&path).await.body;

    let r = app.patch(&path, json!({"name": "Sales Outreach v2", "description": null, "industry": null})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["name"], "Sales Outreach v2");
    assert_eq!(r.body["description"], Value::Null);
    assert_eq!(r.body["industry"], Value::Null);
    assert_eq!(r.body["steps"], created["steps"], "untouched");
    assert_eq!(r.body["variables"], created["variables"]);
    assert_eq!(r.body["createdAt"], created["createdAt"]);
    assert_time(&r.body["updatedAt"]);

    // New steps are renumbered; variables stay unless given.
    let r = app.patch(&path, json!({"steps": [step("Hi {productName}"), {"type": "closing", "content": "Bye"}]})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["steps"],
        json!([{"id": "1", "type": "greeting", "content": "Hi {productName}"}, {"id": "2", "type": "closing", "content": "Bye"}])
    );
    assert_eq!(r.body["variables"], json!(["companyName", "contactName", "productName"]));
    let r = app.patch(&path, json!({"variables": ["productName"], "industry": "retail", "description": "Short"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["variables"], json!(["productName"]));
    assert_eq!(r.body["industry"], "retail");
    assert_eq!(r.body["description"], "Short");
    let r = app.get(&path).await;
    assert_eq!(r.body["variables"], json!(["productName"]));
    assert_eq!(r.body["steps"][1]["type"], "closing");
    assert_eq!(app.get("/v1/templates?industry=Retail").await.body["pagination"]["total"], 1);

    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": null}), "name"),
        (json!({"steps": []}), "steps"),
        (json!({"steps": [{"type": "chat", "content": "x"}]}), "steps[0].type"),
        (json!({"variables": ["x", "x"]}), "variables"),
        (json!({"steps": null}), "steps"),
        (json!({"variables": null}), "variables"),
        (json!({"usageCount": 3}), "usageCount"),
    ] {
        let r = app.patch(&path, body.clone()).await;
        assert_eq!(r.status, 400, "{body} -> {}", r.body);
        assert_eq!(r.body["error"]["details"]["field"], field, "{body} -> {}", r.body);
    }
    let r = app.patch("/v1/templates/60a2e7f3b9c1a83e94d8f2b2", json!({"name": "X"})).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "not_found");
    let r = app.patch("/v1/templates/nope", json!({"name": "X"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["details"]["field"], "id");
}

async fn delete_template_unless_a_live_campaign_uses_it(b: Backend) {
    let app = spawn_app(b).await;
    let id = id_of(&app.post("/v1/templates", spec_template()).await);
    let path = format!("/v1/templates/{id}");
    // Finished campaigns do not hold the template.
    seed_campaign(&app, "acme", &id, "completed").await;
    seed_campaign(&app, "acme", &id, "cancelled").await;
    for status in ["scheduled", "active", "paused"] {
        let campaign = seed_campaign(&app, "acme", &id, status).await;
        let r = app.delete(&path).await;
        assert_eq!(r.status, 409, "{status}: {}", r.body);
        assert_eq!(r.error_code(), "conflict");
        assert_eq!(r.body["error"]["details"]["campaignIds"], json!([campaign]), "{status}");
        sqlx::query("UPDATE campaigns SET status = 'completed' WHERE id = $1")
            .bind(campaign)
            .execute(&app.state.db.write)
            .await
            .unwrap();
    }
    // Another account's live campaign naming this id is not this account's business.
    seed_campaign(&app, "globex", &id, "active").await;
    let r = app.delete(&path).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(r.body, Value::Null);
    let r = app.get(&path).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "not_found");
    assert_eq!(app.delete(&path).await.status, 404);
    assert_eq!(app.get("/v1/templates").await.body["pagination"]["total"], 0);
    assert_eq!(app.delete("/v1/templates/xyz").await.status, 400);
}

async fn templates_are_isolated_between_accounts(b: Backend) {
    let app = spawn_app(b).await;
    let id = id_of(&app.post("/v1/templates", spec_template()).await);
    let other = app.key_for_account("globex").await;
    let path = format!("/v1/templates/{id}");
    for method in [Method::GET, Method::DELETE] {
        let r = app.send(method, &path, Some(&other), None).await;
        assert_eq!(r.status, 404);
        assert_eq!(r.error_code(), "not_found");
    }
    let r = app.send(Method::PATCH, &path, Some(&other), Some(&json!({"name": "Mine now"}))).await;
    assert_eq!(r.status, 404);
    for query in ["", "?industry=sales", "?search=sales"] {
        let r = app.send(Method::GET, &format!("/v1/templates{query}"), Some(&other), None).await;
        assert_eq!(r.body["pagination"]["total"], 0, "{query}");
    }
    let r = app.get(&path).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["name"], "Sales Outreach");
}

both_backends!(
    create_template_spec_example,
    template_defaults_and_step_ids,
    template_validation_errors,
    template_branches_and_voicemail_message,
    list_templates_filters_and_pages,
    usage_count_counts_calls,
    update_template,
    delete_template_unless_a_live_campaign_uses_it,
    templates_are_isolated_between_accounts,
);
