//! Layered configuration: command-line flags, then `CALLCENTER_*` environment
//! variables (clap reads both), then an optional TOML file, then defaults.
//! Everything is validated before the server starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::speech::SttModel;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid {name} '{value}': {reason}")]
    Invalid { name: &'static str, value: String, reason: String },
}

/// The keys a config file may set (all optional; unknown keys are an error).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub rate_limit_per_minute: Option<u32>,
    pub allow_insecure_webhooks: Option<bool>,
    pub public_url: Option<String>,
    pub models_dir: Option<PathBuf>,
    pub stt_model: Option<String>,
    pub max_concurrent_calls: Option<usize>,
    pub twilio_account_sid: Option<String>,
    pub twilio_auth_token: Option<String>,
    pub twilio_caller_id: Option<String>,
    pub twilio_api_base: Option<String>,
    pub quotas: Option<Quotas>,
    /// Seals carrier credentials at rest (64 hex digits or base64 of 32 bytes).
    pub secret_key: Option<String>,
}

impl FileConfig {
    pub fn load(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
        let Some(path) = path else { return Ok(FileConfig::default()) };
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        toml::from_str(&text)
            .map_err(|e| ConfigError::Parse { path: path.display().to_string(), message: e.message().to_owned() })
    }
}

/// Where the data lives; shared by `serve`, `migrate` and `keys`.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
}

impl StoreConfig {
    pub fn resolve(
        data_dir: Option<PathBuf>,
        database_url: Option<String>,
        file: &FileConfig,
    ) -> Result<StoreConfig, ConfigError> {
        let data_dir = data_dir.or_else(|| file.data_dir.clone()).unwrap_or_else(|| PathBuf::from("./data"));
        let database_url = database_url.or_else(|| file.database_url.clone()).filter(|u| !u.trim().is_empty());
        if let Some(url) = &database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://") || url.starts_with("sqlite:"))
        {
            return Err(ConfigError::Invalid {
                name: "database URL",
                value: redact(url),
                reason: "must start with postgres://, postgresql:// or sqlite:".into(),
            });
        }
        Ok(StoreConfig { data_dir, database_url })
    }
}

/// Hides a password in a database URL for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***{}", &url[..scheme], &url[at..]),
        _ => url.to_owned(),
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub store: StoreConfig,
    pub rate_limit_per_minute: u32,
    /// Lets webhook URLs point at internal addresses, and at loopback over plain http
    /// (local development, tests).
    pub allow_insecure_webhooks: bool,
    pub telephony: TelephonyConfig,
    /// Open connections and the header-read timeout (`serve`).
    pub connections: crate::serve::ConnectionLimits,
    /// When set, `/metrics` needs `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
    pub quotas: Quotas,
    /// The key carrier credentials are sealed with (`crate::secrets`); `None`: the one kept in
    /// the data directory.
    pub secret_key: Option<crate::secrets::KeyText>,
}

/// What one account may hold at once; past it, creating one more is a 409 `quota_exceeded`.
/// Set in the config file's `[quotas]` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "snake_case")]
pub struct Quotas {
    /// API keys not revoked.
    pub api_keys: i64,
    pub webhook_endpoints: i64,
    /// Campaigns scheduled, active or paused.
    pub open_campaigns: i64,
    /// Calls in `queued`, waiting for a line.
    pub queued_calls: i64,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas { api_keys: 50, webhook_endpoints: 20, open_campaigns: 100, queued_calls: 10_000 }
    }
}

/// Twilio account credentials: with them the gateway places real calls and accepts
/// `/twilio/*` requests signed with the auth token; without them `/twilio/*` refuses all.
#[derive(Clone)]
pub struct TwilioConfig {
    pub account_sid: String,
    pub auth_token: String,
    /// `From` for calls that have no `callerId`.
    pub caller_id: Option<String>,
    /// Twilio's REST API base (`https://api.twilio.com`; tests point it elsewhere).
    pub api_base: String,
}

impl std::fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"***")
            .field("caller_id", &self.caller_id)
            .field("api_base", &self.api_base)
            .finish()
    }
}

/// Calls, carriers and the speech models.
#[derive(Clone, Debug)]
pub struct TelephonyConfig {
    /// The base URL carriers reach this server at (`https://gw.example.com`); Twilio signs
    /// requests over it. Default: `http://LISTEN`.
    pub public_url: Option<String>,
    pub twilio: Option<TwilioConfig>,
    /// Calls this node runs at once; more wait in `queued`.
    pub max_concurrent_calls: usize,
    /// Where `models/fetch.sh` put the models.
    pub models_dir: PathBuf,
    /// The whisper model calls are transcribed with (`--stt-model`).
    pub stt_model: SttModel,
    /// Run the dispatcher that places queued and due calls. `serve` always does; test
    /// harnesses that exercise only the REST API turn it off so calls stay as created.
    pub dispatch_calls: bool,
    /// Twilio's REST API base for the accounts' own carriers (`/v1/carriers`); the default
    /// account's is in `twilio`. Tests point both at a local fake.
    pub twilio_api_base: String,
    /// The SIP user agent, when `--sip-listen` is given.
    pub sip: Option<SipConfig>,
}

pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 20;

impl Default for TelephonyConfig {
    fn default() -> Self {
        TelephonyConfig {
            public_url: None,
            twilio: None,
            max_concurrent_calls: DEFAULT_MAX_CONCURRENT_CALLS,
            models_dir: PathBuf::from("models"),
            stt_model: SttModel::default(),
            dispatch_calls: true,
            twilio_api_base: crate::telephony::twilio::rest::DEFAULT_API_BASE.to_owned(),
            sip: None,
        }
    }
}

/// Telephony settings as given on the command line or in the environment.
#[derive(Clone, Debug, Default)]
pub struct TelephonyArgs {
    pub public_url: Option<String>,
    pub models_dir: Option<PathBuf>,
    pub stt_model: Option<String>,
    pub max_concurrent_calls: Option<usize>,
    pub twilio_account_sid: Option<String>,
    pub twilio_auth_token: Option<String>,
    pub twilio_caller_id: Option<String>,
    pub twilio_api_base: Option<String>,
    pub sip_listen: Option<String>,
    pub sip_public_address: Option<String>,
    pub rtp_ports: Option<String>,
    pub sip_allow: Option<String>,
}

/// The SIP user agent (`--sip-listen` and its companions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipConfig {
    /// UDP and TCP, on the same address.
    pub listen: SocketAddr,
    /// Written into Contact, Via and SDP `c=` when the gateway is behind NAT.
    pub public_address: Option<SocketAddr>,
    /// RTP ports, first and last (inclusive).
    pub rtp_ports: (u16, u16),
    /// Source addresses calls are accepted from; others get 403.
    pub allow: Vec<ipnet::IpNet>,
}

pub const DEFAULT_RTP_PORTS: (u16, u16) = (20_000, 20_999);

impl SipConfig {
    /// Loopback only until told otherwise: a SIP port open to the internet invites toll fraud
    /// and floods.
    pub fn default_allow() -> Vec<ipnet::IpNet> {
        vec!["127.0.0.0/8".parse().expect("a CIDR"), "::1/128".parse().expect("a CIDR")]
    }

    fn resolve(args: &TelephonyArgs) -> Result<Option<SipConfig>, ConfigError> {
        let invalid = |name: &'static str, value: &str, reason: &str| ConfigError::Invalid {
            name,
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let Some(listen) = args.sip_listen.as_deref().filter(|s| !s.trim().is_empty()) else { return Ok(None) };
        let listen: SocketAddr = listen
            .trim()
            .parse()
            .map_err(|_| invalid("SIP listen address", listen, "expected IP:PORT, e.g. 0.0.0.0:5060"))?;
        let public_address = match args.sip_public_address.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(text) => Some(text.parse::<SocketAddr>().or_else(|_| {
                text.parse::<std::net::IpAddr>()
                    .map(|ip| SocketAddr::new(ip, listen.port()))
                    .map_err(|_| invalid("SIP public address", text, "expected IP or IP:PORT"))
            })?),
        };
        let rtp_ports = match args.rtp_ports.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => DEFAULT_RTP_PORTS,
            Some(text) => {
                let parsed =
                    text.split_once('-').and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
                match parsed {
                    Some((first, last)) if first > 0 && first < last => (first, last),
                    _ => return Err(invalid("RTP ports", text, "expected FIRST-LAST, e.g. 20000-20999")),
                }
            }
        };
        let allow = match args.sip_allow.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => SipConfig::default_allow(),
            Some(text) => text
                .split(',')
                .map(|cidr| {
                    let cidr = cidr.trim();
                    cidr.parse::<ipnet::IpNet>()
                        .or_else(|_| cidr.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|_| invalid("SIP allow-list", cidr, "expected CIDRs such as 203.0.113.0/24"))
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Some(SipConfig { listen, public_address, rtp_ports, allow }))
    }
}

impl TelephonyConfig {
    pub fn resolve(args: TelephonyArgs, file: &FileConfig) -> Result<TelephonyConfig, ConfigError> {
        let sip = SipConfig::resolve(&args)?;
        let invalid = |name: &'static str, value: &str, reason: &str| ConfigError::Invalid {
            name,
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let public_url = args.public_url.or_else(|| file.public_url.clone()).filter(|u| !u.trim().is_empty());
        if let Some(url) = &public_url {
            let parsed = url::Url::parse(url).map_err(|e| invalid("public URL", url, &e.to_string()))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(invalid("public URL", url, "expected http(s)://host[:port]"));
            }
        }
        let max_concurrent_calls =
            args.max_concurrent_calls.or(file.max_concurrent_calls).unwrap_or(DEFAULT_MAX_CONCURRENT_CALLS);
        if max_concurrent_calls == 0 {
            return Err(invalid("max concurrent calls", "0", "must be at least 1"));
        }
        let twilio_api_base = args
            .twilio_api_base
            .or_else(|| file.twilio_api_base.clone())
            .unwrap_or_else(|| crate::telephony::twilio::rest::DEFAULT_API_BASE.to_owned());
        let sid = args.twilio_account_sid.or_else(|| file.twilio_account_sid.clone()).filter(|s| !s.is_empty());
        let token = args.twilio_auth_token.or_else(|| file.twilio_auth_token.clone()).filter(|s| !s.is_empty());
        let twilio = match (sid, token) {
            (Some(account_sid), Some(auth_token)) => Some(TwilioConfig {
                account_sid,
                auth_token,
                caller_id: args.twilio_caller_id.or_else(|| file.twilio_caller_id.clone()),
                api_base: twilio_api_base.clone(),
            }),
            (None, None) => None,
            _ => {
                return Err(invalid(
                    "Twilio credentials",
                    "(only one given)",
                    "give both the account SID and the auth token, or neither",
                ));
            }
        };
        let models_dir = args.models_dir.or_else(|| file.models_dir.clone()).unwrap_or_else(|| PathBuf::from("models"));
        let stt_model = match args.stt_model.or_else(|| file.stt_model.clone()) {
            Some(name) => SttModel::named(&name).map_err(|_| {
                let known = SttModel::all().iter().map(|m| m.name()).collect::<Vec<_>>().join(", ");
                invalid("STT model", &name, &format!("expected one of {known} (made by `bash models/fetch.sh`)"))
            })?,
            None => SttModel::default(),
        };
        Ok(TelephonyConfig {
            public_url: public_url.map(|u| u.trim_end_matches('/').to_owned()),
            twilio,
            max_concurrent_calls,
            models_dir,
            stt_model,
            dispatch_calls: true,
            twilio_api_base,
            sip,
        })
    }
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 100;

impl Config {
    pub fn resolve(
        listen: Option<String>,
        store: StoreConfig,
        rate_limit_per_minute: Option<u32>,
        allow_insecure_webhooks: bool,
        file: &FileConfig,
    ) -> Result<Config, ConfigError> {
        let listen_text = listen.or_else(|| file.listen.clone()).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_text.parse().map_err(|_| ConfigError::Invalid {
            name: "listen address",
            value: listen_text.clone(),
            reason: "expected IP:PORT, e.g. 127.0.0.1:8080".into(),
        })?;
        let rate = rate_limit_per_minute.or(file.rate_limit_per_minute).unwrap_or(DEFAULT_RATE_LIMIT_PER_MINUTE);
        if rate == 0 {
            return Err(ConfigError::Invalid {
                name: "rate limit",
                value: rate.to_string(),
                reason: "must be at least 1 request per minute".into(),
            });
        }
        let allow_insecure_webhooks = allow_insecure_webhooks || file.allow_insecure_webhooks.unwrap_or(false);
        Ok(Config {
            listen,
            store,
            rate_limit_per_minute: rate,
            allow_insecure_webhooks,
            telephony: TelephonyConfig::default(),
            connections: crate::serve::ConnectionLimits::default(),
            metrics_token: None,
            quotas: file.quotas.unwrap_or_default(),
            secret_key: file.secret_key.clone().map(crate::secrets::KeyText),
        })
    }

    /// The URL this server is reached at from outside: `public_url`, else `http://LISTEN`.
    pub fn public_base_url(&self) -> String {
        self.telephony.public_url.clone().unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// A configuration for tests and embedding: loopback, port 0, given store.
    pub fn for_store(store: StoreConfig) -> Config {
        Config {
            listen: "127.0.0.1:0".parse().expect("valid address"),
            store,
            rate_limit_per_minute: DEFAULT_RATE_LIMIT_PER_MINUTE,
            allow_insecure_webhooks: false,
            // An embedded server for tests and benches of the REST API: calls stay as created.
            telephony: TelephonyConfig { dispatch_calls: false, ..TelephonyConfig::default() },
            connections: crate::serve::ConnectionLimits::default(),
            metrics_token: None,
            quotas: Quotas::default(),
            secret_key: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_flags_are_checked_and_defaulted() {
        let sip = |listen: &str, public: Option<&str>, ports: Option<&str>, allow: Option<&str>| {
            SipConfig::resolve(&TelephonyArgs {
                sip_listen: Some(listen.into()),
                sip_public_address: public.map(Into::into),
                rtp_ports: ports.map(Into::into),
                sip_allow: allow.map(Into::into),
                ..TelephonyArgs::default()
            })
        };
        let config = sip("0.0.0.0:5060", None, None, None).unwrap().unwrap();
        assert_eq!((config.rtp_ports, config.allow.len()), (DEFAULT_RTP_PORTS, 2), "loopback only by default");
        let config = sip("0.0.0.0:5060", Some("203.0.113.7"), Some("30000-30099"), Some("198.51.100.0/24, 192.0.2.9"))
            .unwrap()
            .unwrap();
        assert_eq!(config.public_address, Some("203.0.113.7:5060".parse().unwrap()), "the listen port by default");
        assert_eq!(config.rtp_ports, (30_000, 30_099));
        assert!(config.allow.iter().any(|n| n.contains(&"192.0.2.9".parse::<std::net::IpAddr>().unwrap())));
        for (listen, public, ports, allow) in [
            ("5060", None, None, None),
            ("0.0.0.0:5060", Some("gw.example.com"), None, None),
            ("0.0.0.0:5060", None, Some("30000"), None),
            ("0.0.0.0:5060", None, Some("30099-30000"), None),
            ("0.0.0.0:5060", None, None, Some("everyone")),
        ] {
            assert!(
                matches!(sip(listen, public, ports, allow), Err(ConfigError::Invalid { .. })),
                "{listen} {ports:?}"
            );
        }
        assert_eq!(SipConfig::resolve(&TelephonyArgs::default()).unwrap(), None, "off without --sip-listen");
    }

    #[test]
    fn flags_override_file_and_defaults_fill_the_rest() {
        let file: FileConfig = toml::from_str("listen = \"0.0.0.0:9000\"\nrate_limit_per_minute = 5").unwrap();
        let store = StoreConfig::resolve(None, None, &file).unwrap();
        assert_eq!(store.data_dir, PathBuf::from("./data"));
        let c = Config::resolve(Some("127.0.0.1:1234".into()), store.clone(), None, false, &file).unwrap();
        assert_eq!(c.listen.port(), 1234);
        assert_eq!(c.rate_limit_per_minute, 5);
        let c = Config::resolve(None, store, None, false, &file).unwrap();
        assert_eq!(c.listen.port(), 9000);
    }

    #[test]
    fn rejects_bad_values_and_unknown_keys() {
        assert!(toml::from_str::<FileConfig>("listn = \"x\"").is_err());
        let store = StoreConfig::resolve(None, None, &FileConfig::default()).unwrap();
        assert!(Config::resolve(Some("nowhere".into()), store.clone(), None, false, &FileConfig::default()).is_err());
        assert!(Config::resolve(None, store, Some(0), false, &FileConfig::default()).is_err());
        let err = StoreConfig::resolve(None, Some("mysql://u:secret@h/db".into()), &FileConfig::default()).unwrap_err();
        assert!(!err.to_string().contains("secret"));
    }

    #[test]
    fn the_stt_model_comes_from_the_flag_then_the_file_and_must_be_known() {
        let resolve = |flag: Option<&str>, file: &str| {
            let file: FileConfig = toml::from_str(file).unwrap();
            let args = TelephonyArgs { stt_model: flag.map(str::to_owned), ..TelephonyArgs::default() };
            TelephonyConfig::resolve(args, &file)
        };
        assert_eq!(resolve(None, "").unwrap().stt_model, SttModel::default());
        assert_eq!(resolve(None, "stt_model = \"base\"").unwrap().stt_model.name(), "base");
        assert_eq!(resolve(Some("tiny.en"), "stt_model = \"base\"").unwrap().stt_model.name(), "tiny.en");
        let error = resolve(Some("large"), "").unwrap_err().to_string();
        assert!(error.contains("'large'") && error.contains("tiny.en") && error.contains("models/fetch.sh"), "{error}");
    }
}
