//! Which Twilio account a thing belongs to. An account of ours may register its own Twilio
//! account (`/v1/carriers`); its calls are placed with those credentials, its numbers must be
//! that Twilio account's, and webhooks signed by that Twilio account reach only it. An account
//! without one uses the gateway's default (`--twilio-*`), the single-tenant setup.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;

use super::carrier::TwilioCarrier;
use super::rest::{NumberList, TwilioRest, TwilioRestError};
use crate::app::AppState;
use crate::config::TelephonyConfig;
use crate::domain::Id;
use crate::secrets::SecretError;
use crate::store::StoreError;
use crate::store::carriers::{self, SealedCarrier};

/// How long a number Twilio said an account owns is taken as owned without asking again.
const OWNERSHIP_TTL: Duration = Duration::from_secs(600);
const OWNERSHIP_CACHE: usize = 10_000;

/// A Twilio account to act with: an account's own carrier (`carrier_id`) or the default.
#[derive(Clone, Debug)]
pub struct TwilioLine {
    /// `None`: the gateway's default account.
    pub carrier_id: Option<Id>,
    pub carrier: Arc<TwilioCarrier>,
}

impl TwilioLine {
    pub fn account_sid(&self) -> &str {
        self.carrier.rest.account_sid()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the carrier's credentials cannot be read: {0}")]
    Sealed(#[from] SecretError),
    #[error(transparent)]
    Twilio(#[from] TwilioRestError),
}

/// Who signed a Twilio webhook: the carrier whose auth token verified it, or the default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signer {
    pub carrier_id: Option<Id>,
    pub auth_token: String,
}

pub struct TwilioAccounts {
    default: Option<TwilioLine>,
    api_base: String,
    /// Clients of the accounts' carriers, by carrier id, with the `updated_at` they were built
    /// from (a rotated token builds a new one).
    built: Mutex<HashMap<Id, (String, Arc<TwilioCarrier>)>>,
    owned: Mutex<LruCache<(String, String, NumberList), Instant>>,
}

impl std::fmt::Debug for TwilioAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioAccounts").field("default", &self.default.is_some()).finish_non_exhaustive()
    }
}

impl TwilioAccounts {
    pub fn new(config: &TelephonyConfig) -> TwilioAccounts {
        let default = config.twilio.as_ref().and_then(|t| {
            TwilioRest::new(&t.api_base, &t.account_sid, &t.auth_token)
                .map_err(|e| tracing::error!(error = %e, "cannot build the Twilio client"))
                .ok()
                .map(|rest| TwilioLine {
                    carrier_id: None,
                    carrier: Arc::new(TwilioCarrier { rest, default_caller_id: t.caller_id.clone() }),
                })
        });
        TwilioAccounts {
            default,
            api_base: config.twilio_api_base.clone(),
            built: Mutex::new(HashMap::new()),
            owned: Mutex::new(LruCache::new(NonZeroUsize::new(OWNERSHIP_CACHE).expect("non-zero"))),
        }
    }

    pub fn default_line(&self) -> Option<&TwilioLine> {
        self.default.as_ref()
    }

    /// A client for credentials given now (a carrier being created or updated).
    pub fn client(&self, account_sid: &str, auth_token: &str) -> Result<TwilioRest, TwilioRestError> {
        TwilioRest::new(&self.api_base, account_sid, auth_token)
    }

    fn line_of(&self, state: &AppState, sealed: &SealedCarrier) -> Result<TwilioLine, LineError> {
        let id = &sealed.carrier.id;
        let version = sealed.carrier.updated_at.to_db();
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, carrier)) = built.get(id)
            && *seen == version
        {
            return Ok(TwilioLine { carrier_id: Some(id.clone()), carrier: carrier.clone() });
        }
        let token = state.secrets.open(&SealedCarrier::seal_context(id), &sealed.auth_token_sealed)?;
        let rest = self.client(&sealed.carrier.account_sid, &token)?;
        let carrier = Arc::new(TwilioCarrier { rest, default_caller_id: sealed.carrier.caller_id.clone() });
        built.insert(id.clone(), (version, carrier.clone()));
        Ok(TwilioLine { carrier_id: Some(id.clone()), carrier })
    }

    /// The Twilio account `account_id` acts with: its own carrier, else the default.
    pub async fn for_account(&self, state: &AppState, account_id: &Id) -> Result<Option<TwilioLine>, LineError> {
        match carriers::for_account(&state.db, account_id).await? {
            Some(sealed) => self.line_of(state, &sealed).map(Some),
            None => Ok(self.default.clone()),
        }
    }

    /// The Twilio account a leg was placed or received on (`None`: the default).
    pub async fn by_carrier(&self, state: &AppState, carrier_id: Option<&Id>) -> Result<Option<TwilioLine>, LineError> {
        let Some(id) = carrier_id else { return Ok(self.default.clone()) };
        match carriers::by_id(&state.db, id).await? {
            Some(sealed) => self.line_of(state, &sealed).map(Some),
            None => Ok(None),
        }
    }

    /// The auth token to check a webhook signed by Twilio account `account_sid` with: an
    /// account's carrier, else the default when the SID is its (or the request names none).
    pub async fn signer(&self, state: &AppState, account_sid: Option<&str>) -> Result<Option<Signer>, LineError> {
        let default = state.config.telephony.twilio.as_ref();
        let default_signer = || default.map(|t| Signer { carrier_id: None, auth_token: t.auth_token.clone() });
        let Some(sid) = account_sid else { return Ok(default_signer()) };
        if default.is_some_and(|t| t.account_sid == sid) {
            return Ok(default_signer());
        }
        let Some(sealed) = carriers::by_twilio_sid(&state.db, sid).await? else { return Ok(None) };
        let auth_token =
            state.secrets.open(&SealedCarrier::seal_context(&sealed.carrier.id), &sealed.auth_token_sealed)?;
        Ok(Some(Signer { carrier_id: Some(sealed.carrier.id), auth_token }))
    }

    /// Whether `line`'s Twilio account holds `phone` in one of `lists`. A yes is remembered for
    /// ten minutes; a no is asked again next time (the number may have been bought since).
    pub async fn owns(&self, line: &TwilioLine, phone: &str, lists: &[NumberList]) -> Result<bool, TwilioRestError> {
        for &list in lists {
            let key = (line.account_sid().to_owned(), phone.to_owned(), list);
            let known = {
                let mut owned = self.owned.lock().unwrap_or_else(|e| e.into_inner());
                owned.get(&key).is_some_and(|at| at.elapsed() < OWNERSHIP_TTL)
            };
            if known {
                return Ok(true);
            }
            if line.carrier.rest.has_number(list, phone).await? {
                self.owned.lock().unwrap_or_else(|e| e.into_inner()).put(key, Instant::now());
                return Ok(true);
            }
        }
        Ok(false)
    }
}
