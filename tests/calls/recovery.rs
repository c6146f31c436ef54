//! A gateway process that dies mid-call leaves its calls live in the database; any node's
//! dispatcher closes them once their heartbeat stops, keeping the transcript saved turn by turn
//! and the recording written so far.

use callcenter::domain::Id;
use callcenter::domain::Phone;
use callcenter::domain::status::CarrierKind;
use callcenter::media::recorder::Recorder;
use callcenter::session::legs::Via;
use callcenter::session::{dispatcher, inbound};
use callcenter::store::call_sessions::{self, Speaker, Turn};
use callcenter::store::{calls, phone_numbers};
use serde_json::json;

use crate::app_on;
use crate::common::Backend;

#[tokio::test]
async fn calls_whose_process_stopped_are_closed_with_what_was_recorded_on_sqlite() {
    calls_whose_process_stopped_are_closed_with_what_was_recorded(Backend::Sqlite).await
}

#[tokio::test]
async fn calls_whose_process_stopped_are_closed_with_what_was_recorded_on_postgres() {
    calls_whose_process_stopped_are_closed_with_what_was_recorded(Backend::Postgres).await
}

async fn calls_whose_process_stopped_are_closed_with_what_was_recorded(backend: Backend) {
    let app = app_on(backend).await;
    let state = &app.state;
    let (status, template) =
        app.post("/v1/templates", json!({"name": "Desk", "steps": [{"type": "greeting", "content": "Hello."}]})).await;
    assert_eq!(status, 201, "{template}");
    // A number of the gateway's default Twilio account, stored directly: this app has no
    // Twilio to ask whether it owns the number.
    let account_id = callcenter::store::accounts::find_account(&state.db, "acme").await.unwrap().expect("acme");
    let number = phone_numbers::NewPhoneNumber {
        phone: Phone::parse("+14155550199").unwrap(),
        template_id: Id::parse(template["id"].as_str().unwrap()).unwrap(),
        variables: Default::default(),
        carrier: CarrierKind::Twilio,
        carrier_id: None,
        name: None,
    };
    assert!(matches!(
        phone_numbers::create(&state.db, &account_id, number).await.unwrap(),
        phone_numbers::CreateOutcome::Created(_)
    ));
    let ring = || async {
        let via = Via { carrier: "twilio", carrier_id: None };
        inbound::create_inbound_call(state, via, "+14155550199", "+14155550100").await.unwrap().expect("a call")
    };

    // Answered, two seconds recorded and one turn saved, then the process "dies": the
    // recorder is dropped without `finish` and the heartbeat stops.
    let crashed = ring().await;
    let account = crashed.account_id.clone();
    assert!(calls::mark_answered(&state.db, &account, &crashed.id, state.clock.now()).await.unwrap().is_some());
    call_sessions::heartbeat(&state.db, &crashed.id, state.clock.now()).await.unwrap();
    let turn = Turn {
        speaker: Speaker::Bot,
        text: "Hello.".into(),
        start_ms: 0,
        end_ms: 800,
        confidence: None,
        interrupted: false,
    };
    call_sessions::save_transcript(&state.db, &account, &crashed.id, std::slice::from_ref(&turn), state.clock.now())
        .await
        .unwrap();
    let dir = state.config.store.data_dir.join("recordings");
    std::fs::create_dir_all(&dir).unwrap();
    let file = std::fs::File::create(dir.join(format!("{}.wav", crashed.id))).unwrap();
    let mut recorder = Recorder::new(file, 8000, 160, 50).unwrap();
    for _ in 0..100 {
        recorder.write_frame(Some(&[1000i16; 160]), None).unwrap();
    }
    std::mem::forget(recorder);

    // Ringing with no word from the carrier, and a healthy call that keeps beating.
    let lost_ringing = ring().await;
    let healthy = ring().await;
    assert!(calls::mark_answered(&state.db, &account, &healthy.id, state.clock.now()).await.unwrap().is_some());
    // A call whose session runs on this very node, with a heartbeat that fell behind (a slow
    // database): no sweep of this node may close it under its own session.
    let live_here = ring().await;
    assert!(calls::mark_answered(&state.db, &account, &live_here.id, state.clock.now()).await.unwrap().is_some());
    let _session = state.calls.hang_up_signal(&live_here.id);

    // Nothing is orphaned yet.
    assert_eq!(dispatcher::recover_orphans(state).await.unwrap(), 0);

    // Sixteen minutes on, the healthy call has kept beating (written ahead, so the server's
    // own sweep, which may run at any moment, sees it too).
    call_sessions::heartbeat(&state.db, &healthy.id, state.clock.now().plus_seconds(16 * 60)).await.unwrap();
    app.clock.advance(16 * 60);
    // This sweep or the dispatcher's own closes the two orphans.
    assert!(dispatcher::recover_orphans(state).await.unwrap() <= 2);

    let get = |id: Id| {
        let app = &app;
        async move { app.get_json(&format!("/v1/calls/{id}")).await.1 }
    };
    let call = get(crashed.id.clone()).await;
    assert_eq!((call["status"].as_str(), call["outcome"].as_str()), (Some("failed"), Some("failed")), "{call}");
    assert!(call["notes"].as_str().unwrap().contains("stopped"), "{call}");
    assert_eq!(call["duration"], 2, "{call}");
    let (status, transcript) = app.get_json(&format!("/v1/calls/{}/transcript", crashed.id)).await;
    assert_eq!(status, 200, "{transcript}");
    assert_eq!(transcript["turns"][0]["text"], "Hello.");
    let recording = app
        .client
        .get(format!("{}/v1/calls/{}/recording", app.base, crashed.id))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(recording.status(), 200);
    let audio = callcenter::media::decode::decode_bytes(recording.bytes().await.unwrap().to_vec(), Some("wav"))
        .expect("the recording up to the crash plays");
    assert!((audio.duration_secs() - 2.0).abs() < 0.05, "{:.2} s", audio.duration_secs());

    let call = get(lost_ringing.id.clone()).await;
    assert_eq!((call["status"].as_str(), call["outcome"].as_str()), (Some("failed"), Some("failed")), "{call}");
    assert_eq!(get(healthy.id.clone()).await["status"], "in-progress");
    assert_eq!(get(live_here.id.clone()).await["status"], "in-progress", "its session runs here");
    state.calls.forget_hang_up(&live_here.id);
}
