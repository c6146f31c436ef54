//! A local stand-in for Twilio's REST API (the one mock allowed: Twilio is unreachable from
//! here), speaking its documented wire format: HTTP basic auth with the account SID and auth
//! token, form bodies, JSON answers, errors as `{code, message, more_info, status}`. It knows
//! the Account resource, the Calls API, and the IncomingPhoneNumbers and OutgoingCallerIds
//! lists with their `PhoneNumber` filter.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use base64::Engine;

pub const SID: &str = "AC00000000000000000000000000000001";
pub const TOKEN: &str = "auth-token-1";

/// One request the fake received: the path after the account, and the form fields (or, for
/// a GET, the query) in order.
type Request = (String, Vec<(String, String)>);

#[derive(Clone, Default)]
pub struct Seen {
    pub requests: Arc<Mutex<Vec<Request>>>,
    /// The Twilio account each request authenticated as, in the same order.
    pub accounts: Arc<Mutex<Vec<String>>>,
}

impl Seen {
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    pub fn accounts(&self) -> Vec<String> {
        self.accounts.lock().unwrap().clone()
    }
}

/// A Twilio account the fake knows: its credentials, the numbers it bought
/// (IncomingPhoneNumbers) and the caller IDs it verified (OutgoingCallerIds).
#[derive(Clone, Debug)]
pub struct FakeAccount {
    pub sid: &'static str,
    pub token: &'static str,
    pub numbers: Vec<String>,
    pub caller_ids: Vec<String>,
}

pub fn default_account() -> FakeAccount {
    FakeAccount {
        sid: SID,
        token: TOKEN,
        numbers: vec!["+15005550006".into(), "+14155550199".into()],
        caller_ids: vec![],
    }
}

#[derive(Clone)]
struct Fake {
    seen: Seen,
    accounts: Arc<Vec<FakeAccount>>,
}

fn twilio_error(status: StatusCode, code: u32, message: &str) -> (StatusCode, String) {
    let body = serde_json::json!({
        "code": code, "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status.as_u16()
    });
    (status, body.to_string())
}

impl Fake {
    /// The account `sid` if the request's basic auth is its SID and token.
    fn authenticated(&self, sid: &str, headers: &HeaderMap) -> Option<&FakeAccount> {
        let given = headers.get("authorization")?.to_str().ok()?;
        self.accounts.iter().find(|a| {
            a.sid == sid
                && given
                    == format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", a.sid, a.token))
                    )
        })
    }

    fn record(&self, account: &str, path: &str, fields: Vec<(String, String)>) -> usize {
        let mut requests = self.seen.requests.lock().unwrap();
        requests.push((path.to_owned(), fields));
        self.seen.accounts.lock().unwrap().push(account.to_owned());
        requests.iter().filter(|(p, _)| p == "Calls.json").count()
    }
}

fn unauthenticated() -> (StatusCode, String) {
    twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate")
}

/// Twilio's Calls API as documented: basic auth with the account SID, form bodies, 201 with
/// the call resource, errors as {code, message, more_info, status}.
async fn calls(
    State(fake): State<Fake>,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let Some(account) = fake.authenticated(&path.0, &headers) else { return unauthenticated() };
    assert_eq!(headers.get("content-type").unwrap(), "application/x-www-form-urlencoded");
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let created = fake.record(account.sid, &path.1, form.clone());
    let value = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if path.1 == "Calls.json" {
        if value("To").as_deref() == Some("+1555") {
            return twilio_error(StatusCode::BAD_REQUEST, 21211, "The 'To' number +1555 is not a valid phone number.");
        }
        return (
            StatusCode::CREATED,
            format!(
                r#"{{"sid":"CA{created:04}","status":"queued","to":"{}","from":"{}","account_sid":"{}"}}"#,
                value("To").unwrap(),
                value("From").unwrap(),
                account.sid
            ),
        );
    }
    let sid = path.1.trim_start_matches("Calls/").trim_end_matches(".json");
    (StatusCode::OK, format!(r#"{{"sid":"{sid}","status":"{}"}}"#, value("Status").unwrap()))
}

/// `GET .../IncomingPhoneNumbers.json` and `.../OutgoingCallerIds.json`, filtered by
/// `PhoneNumber` the way Twilio does: a partial number matches too.
async fn number_lists(
    State(fake): State<Fake>,
    Path(path): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> impl IntoResponse {
    let Some(account) = fake.authenticated(&path.0, &headers) else { return unauthenticated() };
    fake.record(account.sid, &path.1, query.clone());
    let filter = query.iter().find(|(k, _)| k == "PhoneNumber").map(|(_, v)| v.trim_start_matches('+').to_owned());
    let (key, numbers) = match path.1.as_str() {
        "IncomingPhoneNumbers.json" => ("incoming_phone_numbers", &account.numbers),
        "OutgoingCallerIds.json" => ("outgoing_caller_ids", &account.caller_ids),
        _ => return twilio_error(StatusCode::NOT_FOUND, 20404, "The requested resource was not found"),
    };
    let items: Vec<serde_json::Value> = numbers
        .iter()
        .filter(|n| filter.as_deref().is_none_or(|f| n.contains(f)))
        .enumerate()
        .map(|(i, n)| serde_json::json!({"sid": format!("PN{i:032}"), "account_sid": account.sid, "phone_number": n, "friendly_name": n}))
        .collect();
    let page = serde_json::json!({key: items, "page": 0, "page_size": 50, "next_page_uri": null});
    (StatusCode::OK, page.to_string())
}

/// `GET /2010-04-01/Accounts/{AccountSid}.json`.
async fn account(State(fake): State<Fake>, Path(file): Path<String>, headers: HeaderMap) -> impl IntoResponse {
    let sid = file.trim_end_matches(".json");
    let Some(account) = fake.authenticated(sid, &headers) else { return unauthenticated() };
    fake.record(account.sid, "", vec![]);
    (StatusCode::OK, serde_json::json!({"sid": account.sid, "friendly_name": "Fake", "status": "active"}).to_string())
}

/// A local Twilio REST API for the given accounts; call sids are `CA0001`, `CA0002`, ... in
/// creation order.
pub async fn fake_twilio_with(accounts: Vec<FakeAccount>) -> (String, Seen) {
    let fake = Fake { seen: Seen::default(), accounts: Arc::new(accounts) };
    let app = Router::new()
        .route("/2010-04-01/Accounts/{file}", get(account))
        .route("/2010-04-01/Accounts/{account}/{*rest}", post(calls).get(number_lists))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), fake.seen)
}

/// The fake with one account, `SID`.
pub async fn fake_twilio() -> (String, Seen) {
    fake_twilio_with(vec![default_account()]).await
}
