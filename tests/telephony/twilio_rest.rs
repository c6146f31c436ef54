use callcenter::telephony::twilio::rest::{CreateCall, NumberList, TwilioRest, TwilioRestError};

pub use crate::common::fake_twilio::*;

fn call(to: &str) -> CreateCall {
    CreateCall {
        to: to.into(),
        from: "+15005550006".into(),
        url: "https://gw.example.com/twilio/voice?callId=c1".into(),
        status_callback: "https://gw.example.com/twilio/status?callId=c1".into(),
        machine_detection: Some("Enable".into()),
        timeout_secs: 30,
    }
}

#[tokio::test]
async fn places_a_call_with_the_documented_form_fields_and_basic_auth() {
    let (base, seen) = fake_twilio().await;
    let client = TwilioRest::new(&base, SID, TOKEN).unwrap();
    let created = client.create_call(&call("+14155550100")).await.unwrap();
    assert_eq!((created.sid.as_str(), created.status.as_str()), ("CA0001", "queued"));

    let requests = seen.requests();
    let (path, form) = &requests[0];
    assert_eq!(path, "Calls.json");
    let all = |name: &str| form.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    assert_eq!(all("To"), ["+14155550100"]);
    assert_eq!(all("From"), ["+15005550006"]);
    assert_eq!(all("Url"), ["https://gw.example.com/twilio/voice?callId=c1"]);
    assert_eq!(all("StatusCallback"), ["https://gw.example.com/twilio/status?callId=c1"]);
    assert_eq!(all("StatusCallbackEvent"), ["initiated", "ringing", "answered", "completed"]);
    assert_eq!(all("MachineDetection"), ["Enable"]);
    assert_eq!(all("Timeout"), ["30"]);
}

#[tokio::test]
async fn hangs_up_and_reports_twilio_errors() {
    let (base, seen) = fake_twilio().await;
    let client = TwilioRest::new(&base, SID, TOKEN).unwrap();
    let ended = client.update_status("CA0001", "completed").await.unwrap();
    assert_eq!(ended.status, "completed");
    assert_eq!(seen.requests()[0].0, "Calls/CA0001.json");

    match client.create_call(&call("+1555")).await {
        Err(TwilioRestError::Api { status: 400, code: 21211, message }) => assert!(message.contains("not a valid")),
        other => panic!("expected Twilio error 21211, got {other:?}"),
    }
    let wrong_token = TwilioRest::new(&base, SID, "wrong").unwrap();
    assert!(matches!(
        wrong_token.create_call(&call("+14155550100")).await,
        Err(TwilioRestError::Api { status: 401, code: 20003, .. })
    ));
    // Nothing listening: a transport error, not a panic.
    let nowhere = TwilioRest::new("http://127.0.0.1:9", SID, TOKEN).unwrap();
    assert!(matches!(nowhere.create_call(&call("+14155550100")).await, Err(TwilioRestError::Transport(_))));
}

#[tokio::test]
async fn checks_credentials_and_owned_numbers_exactly() {
    let (base, _) = fake_twilio().await;
    let client = TwilioRest::new(&base, SID, TOKEN).unwrap();
    assert_eq!(client.fetch_account().await.unwrap().status, "active");
    assert!(client.has_number(NumberList::IncomingPhoneNumbers, "+15005550006").await.unwrap());
    // Twilio's PhoneNumber filter also matches part of a number; only the exact one counts.
    assert!(!client.has_number(NumberList::IncomingPhoneNumbers, "+1500555000").await.unwrap());
    assert!(!client.has_number(NumberList::OutgoingCallerIds, "+15005550006").await.unwrap());
    let wrong = TwilioRest::new(&base, SID, "wrong").unwrap();
    assert!(matches!(wrong.fetch_account().await, Err(TwilioRestError::Api { status: 401, code: 20003, .. })));
}
