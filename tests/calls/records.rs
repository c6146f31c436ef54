//! What real calls leave behind outside the call itself: the contact's `callHistory` and
//! `doNotCall`, and the call analytics.

use std::time::Duration;

use serde_json::json;

use crate::app;

#[tokio::test]
async fn real_calls_fill_the_contacts_history_and_the_analytics() {
    let app = app().await;
    let template = app.sales_template().await;
    let mut contacts = Vec::new();
    for (name, phone) in [("John", "+15550100002"), ("Mary", "+15550100003")] {
        let (status, contact) = app.post("/v1/contacts", json!({"name": name, "phone": phone})).await;
        assert_eq!(status, 201, "{contact}");
        contacts.push(contact["id"].as_str().unwrap().to_owned());
    }
    let mut calls = Vec::new();
    for (contact, phone) in contacts.iter().zip(["+15550100002", "+15550100003"]) {
        let (status, call) = app
            .post(
                "/v1/calls",
                json!({"phone": phone, "contactId": contact, "templateId": template,
                       "variables": {"productName": "Premium Widget"}}),
            )
            .await;
        assert_eq!(status, 201, "{call}");
        calls.push(call["id"].as_str().unwrap().to_owned());
    }
    let mut ended = Vec::new();
    for id in &calls {
        ended.push(app.finished_call(id, Duration::from_secs(120)).await);
    }
    for (call, outcome) in ended.iter().zip(["rejected", "optedOut"]) {
        let (_, transcript) = app.get_json(&format!("/v1/calls/{}/transcript", call["id"].as_str().unwrap())).await;
        assert_eq!(call["outcome"], outcome, "{call}\n{transcript:#}");
    }

    for ((contact, call), do_not_call) in contacts.iter().zip(&ended).zip([false, true]) {
        let (status, body) = app.get_json(&format!("/v1/contacts/{contact}")).await;
        assert_eq!(status, 200, "{body}");
        let history = body["callHistory"].as_array().expect("callHistory");
        assert_eq!(history.len(), 1, "{body}");
        assert_eq!(history[0]["id"], call["id"]);
        assert_eq!(history[0]["outcome"], call["outcome"]);
        assert_eq!(history[0]["duration"], call["duration"]);
        assert!(history[0]["date"].is_string(), "{body}");
        assert_eq!(body["doNotCall"], do_not_call, "{body}");
    }

    let (status, stats) = app.get_json("/v1/analytics/calls").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["totalCalls"], 2, "{stats}");
    assert_eq!(stats["completedCalls"], 2, "{stats}");
    assert_eq!(stats["callsByOutcome"]["rejected"], 1, "{stats}");
    assert_eq!(stats["callsByOutcome"]["optedOut"], 1, "{stats}");
    let durations: i64 = ended.iter().map(|c| c["duration"].as_i64().unwrap()).sum();
    assert_eq!(
        stats["avgDuration"].as_f64().unwrap().round() as i64,
        (durations as f64 / 2.0).round() as i64,
        "{stats}"
    );
}

/// A recording that cannot be written (here its directory is a file; a full disk fails the
/// same way) does not end the call or lose its transcript: the call runs to its outcome, has
/// no recording, and says why in `notes`.
#[tokio::test]
async fn a_recording_that_cannot_be_written_costs_the_recording_not_the_call() {
    let app = app().await;
    std::fs::write(app.state.config.store.data_dir.join("recordings"), b"not a directory").unwrap();
    let template = app.sales_template().await;
    let (status, call) = app
        .post(
            "/v1/calls",
            json!({"phone": "+15550100001", "templateId": template,
                   "variables": {"productName": "Premium Widget", "contactName": "Ann"}}),
        )
        .await;
    assert_eq!(status, 201, "{call}");
    let id = call["id"].as_str().unwrap().to_owned();
    let call = app.finished_call(&id, Duration::from_secs(120)).await;
    assert_eq!(call["status"], "completed", "{call}");
    assert_eq!(call["outcome"], "successful", "{call}");
    assert!(call["notes"].as_str().unwrap_or_default().contains("The recording failed"), "{call}");
    assert!(call["recordingUrl"].is_null(), "{call}");
    let (status, transcript) = app.get_json(&format!("/v1/calls/{id}/transcript")).await;
    assert_eq!(status, 200, "{transcript}");
    assert!(transcript["turns"].as_array().is_some_and(|t| t.len() >= 2), "{transcript}");
    let (status, _) = app.get_json(&format!("/v1/calls/{id}/recording")).await;
    assert_eq!(status, 404);
}
