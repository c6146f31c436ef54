//! The part of Twilio's REST API a carrier needs: place an outbound call and hang it up
//! (<https://www.twilio.com/docs/voice/api/call-resource>), check credentials (the Account
//! resource) and whether the account owns a number (IncomingPhoneNumbers,
//! OutgoingCallerIds). Form-encoded requests with HTTP
//! basic auth (account SID, auth token); JSON answers; errors in Twilio's
//! `{"code", "message", "more_info", "status"}` shape.

use std::time::Duration;

use serde::Deserialize;

/// Twilio's production API; tests point the client at a local server speaking the same format.
pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";

#[derive(Debug, Clone)]
pub struct TwilioRest {
    http: reqwest::Client,
    api_base: String,
    account_sid: String,
    auth_token: String,
}

/// `POST /2010-04-01/Accounts/{AccountSid}/Calls.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateCall {
    pub to: String,
    pub from: String,
    /// Where Twilio fetches the TwiML once the callee answers (our `/twilio/voice`).
    pub url: String,
    /// Where Twilio posts status changes (our `/twilio/status`).
    pub status_callback: String,
    /// Answering-machine detection (`Enable` or `DetectMessageEnd`), off when `None`.
    pub machine_detection: Option<String>,
    /// Seconds to let it ring.
    pub timeout_secs: u32,
}

/// The fields of Twilio's call resource the gateway uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CallResource {
    pub sid: String,
    pub status: String,
}

/// `GET /2010-04-01/Accounts/{AccountSid}.json`: the account the credentials open.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AccountResource {
    pub sid: String,
    /// `active`, `suspended` or `closed`.
    pub status: String,
}

/// Where a Twilio account holds a number: bought or ported (`IncomingPhoneNumbers`), or
/// verified as a caller ID (`OutgoingCallerIds`, usable only as `From`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberList {
    IncomingPhoneNumbers,
    OutgoingCallerIds,
}

impl NumberList {
    fn path(self) -> &'static str {
        match self {
            NumberList::IncomingPhoneNumbers => "IncomingPhoneNumbers.json",
            NumberList::OutgoingCallerIds => "OutgoingCallerIds.json",
        }
    }
}

/// One page of either list; each item has `phone_number` in E.164.
#[derive(Deserialize)]
struct NumberPage {
    #[serde(default, alias = "outgoing_caller_ids")]
    incoming_phone_numbers: Vec<ListedNumber>,
}

#[derive(Deserialize)]
struct ListedNumber {
    phone_number: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TwilioRestError {
    /// Twilio answered with an error document (e.g. 21211: invalid `To`).
    #[error("twilio error {code} (HTTP {status}): {message}")]
    Api { status: u16, code: u64, message: String },
    #[error("twilio request failed: {0}")]
    Transport(String),
    #[error("unexpected twilio response (HTTP {status}): {body}")]
    Unexpected { status: u16, body: String },
}

#[derive(Deserialize)]
struct ErrorDocument {
    code: Option<u64>,
    message: Option<String>,
}

impl TwilioRest {
    pub fn new(api_base: &str, account_sid: &str, auth_token: &str) -> Result<Self, TwilioRestError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| TwilioRestError::Transport(e.to_string()))?;
        Ok(TwilioRest {
            http,
            api_base: api_base.trim_end_matches('/').to_owned(),
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
        })
    }

    pub fn account_sid(&self) -> &str {
        &self.account_sid
    }

    fn account_url(&self) -> String {
        format!("{}/2010-04-01/Accounts/{}", self.api_base, self.account_sid)
    }

    /// Checks the credentials: Twilio answers 401 (code 20003) for a wrong token.
    pub async fn fetch_account(&self) -> Result<AccountResource, TwilioRestError> {
        self.get(&format!("{}.json", self.account_url()), &[]).await
    }

    /// Whether the account has `phone` (E.164) in `list`. Twilio's `PhoneNumber` filter also
    /// matches partial numbers, so the answer is compared exactly.
    pub async fn has_number(&self, list: NumberList, phone: &str) -> Result<bool, TwilioRestError> {
        let url = format!("{}/{}", self.account_url(), list.path());
        let page: NumberPage = self.get(&url, &[("PhoneNumber", phone), ("PageSize", "50")]).await?;
        Ok(page.incoming_phone_numbers.iter().any(|n| n.phone_number == phone))
    }

    fn calls_url(&self) -> String {
        format!("{}/2010-04-01/Accounts/{}/Calls", self.api_base, self.account_sid)
    }

    pub async fn create_call(&self, call: &CreateCall) -> Result<CallResource, TwilioRestError> {
        let timeout = call.timeout_secs.to_string();
        let mut form: Vec<(&str, &str)> = vec![
            ("To", &call.to),
            ("From", &call.from),
            ("Url", &call.url),
            ("Method", "POST"),
            ("StatusCallback", &call.status_callback),
            ("StatusCallbackMethod", "POST"),
            ("Timeout", &timeout),
        ];
        // A list parameter is sent as the same name repeated.
        for event in ["initiated", "ringing", "answered", "completed"] {
            form.push(("StatusCallbackEvent", event));
        }
        if let Some(detection) = &call.machine_detection {
            form.push(("MachineDetection", detection));
        }
        self.post(&format!("{}.json", self.calls_url()), &form).await
    }

    /// Ends a call: `completed` hangs up a call in progress, `canceled` one still queued or
    /// ringing (Twilio refuses the other combinations).
    pub async fn update_status(&self, call_sid: &str, status: &str) -> Result<CallResource, TwilioRestError> {
        self.post(&format!("{}/{call_sid}.json", self.calls_url()), &[("Status", status)]).await
    }

    async fn post(&self, url: &str, form: &[(&str, &str)]) -> Result<CallResource, TwilioRestError> {
        let request = self.http.post(url).basic_auth(&self.account_sid, Some(&self.auth_token)).form(form);
        Self::answer(request).await
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        query: &[(&str, &str)],
    ) -> Result<T, TwilioRestError> {
        let request = self.http.get(url).basic_auth(&self.account_sid, Some(&self.auth_token)).query(query);
        Self::answer(request).await
    }

    async fn answer<T: serde::de::DeserializeOwned>(request: reqwest::RequestBuilder) -> Result<T, TwilioRestError> {
        let response = request.send().await.map_err(|e| TwilioRestError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| TwilioRestError::Transport(e.to_string()))?;
        if (200..300).contains(&status) {
            return serde_json::from_str(&body).map_err(|_| TwilioRestError::Unexpected { status, body });
        }
        match serde_json::from_str::<ErrorDocument>(&body) {
            Ok(ErrorDocument { code: Some(code), message }) => {
                Err(TwilioRestError::Api { status, code, message: message.unwrap_or_default() })
            }
            _ => Err(TwilioRestError::Unexpected { status, body }),
        }
    }
}
