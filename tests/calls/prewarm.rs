//! A placed call's lines are synthesized while it rings, so the greeting starts at once.

use std::time::Duration;

use serde_json::json;

use crate::{app, common};

#[tokio::test]
async fn a_placed_calls_lines_are_in_the_tts_cache_before_it_is_answered() {
    let app = app().await;
    let (status, template) = app
        .post(
            "/v1/templates",
            json!({"name": "Prewarm", "voicemailMessage": "Please call Acme back about {productName}.",
                   "steps": [
                {"type": "greeting", "content": "Good morning {contactName}, this is Acme."},
                {"type": "question", "content": "Do you still use the {productName}?"},
                {"type": "closing", "content": "Thanks, goodbye."}
            ]}),
        )
        .await;
    assert_eq!(status, 201, "{template}");
    // This simulated callee never answers: whatever is cached was warmed while ringing.
    app.place("+15550100007", template["id"].as_str().unwrap()).await;
    let engine = app.state.calls.speech().await.expect("models load");
    let voice = engine.tts.config().default_voice.clone();
    for line in [
        "Good morning John, this is Acme.",
        "Do you still use the Premium Widget?",
        "Thanks, goodbye.",
        "Please call Acme back about Premium Widget.",
    ] {
        common::eventually(Duration::from_secs(60), &format!("{line:?} cached"), || async {
            engine.tts.cache().contains(&voice, line).then_some(())
        })
        .await;
    }
}
