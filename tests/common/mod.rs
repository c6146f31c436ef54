//! What every integration test binary shares: the two backends, fresh PostgreSQL
//! databases, an in-process server per test, and `both_backends!`. Included with
//! `#[path = "../common/mod.rs"] mod common;`; each binary adds its own request helpers
//! to `TestApp`.

use std::path::PathBuf;
use std::sync::Arc;

use callcenter::app::{App, AppState};
use callcenter::clock::OffsetClock;
use callcenter::config::{Config, StoreConfig};
use callcenter::store::accounts;
use sqlx::{AnyConnection, Connection, Executor};

/// Synthetic callers in voices that are not the bot's, through a phone line.
pub mod fake_twilio;
pub mod voices;

/// A real server on 127.0.0.1:0 with a fresh database, stopped when dropped.
pub struct TestApp {
    pub base: String,
    /// An API key of the test's first account ("acme").
    pub key: String,
    pub state: AppState,
    /// The clock the webhook relay schedules by; tests move it forward (the API suite
    /// never does, hence the allow).
    #[allow(dead_code)]
    pub clock: Arc<OffsetClock>,
    pub client: reqwest::Client,
    /// The PostgreSQL database it runs on (`None`: its own SQLite file).
    #[allow(dead_code)]
    pub database_url: Option<String>,
    _dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts a server on a fresh SQLite file or PostgreSQL database, with `configure`
/// applied to its configuration, and creates the account "acme" with a key.
/// `CALLCENTER_TEST_LOG=callcenter=debug cargo test ... -- --nocapture` shows the server's logs
/// (the same filter syntax as `RUST_LOG`); without it tests log nothing.
pub fn init_test_logs() {
    if let Ok(filter) = std::env::var("CALLCENTER_TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
}

pub async fn start_app(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
    let database_url = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(fresh_pg_database().await),
    };
    start_app_on(database_url, configure).await
}

/// `start_app` on a given PostgreSQL database (`None`: a fresh SQLite file): a second
/// gateway node sharing the first one's database, with a key of its own for "acme".
pub async fn start_app_on(database_url: Option<String>, configure: impl FnOnce(&mut Config)) -> TestApp {
    init_test_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config =
        Config::for_store(StoreConfig { data_dir: PathBuf::from(dir.path()), database_url: database_url.clone() });
    configure(&mut config);
    let clock = Arc::new(OffsetClock::default());
    let app = App::build_with_clock(config, clock.clone()).await.expect("app builds");
    let base = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    let account = accounts::ensure_account(&state.db, "acme").await.expect("account");
    let (_, key) = accounts::create_key(&state.db, &account, Some("test")).await.expect("key");
    TestApp { base, key, state, clock, client: reqwest::Client::new(), database_url, _dir: dir, shutdown: Some(tx) }
}

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The speech models: `CALLCENTER_MODELS_DIR`, else the repository's `models/` (filled by
/// `bash models/fetch.sh`, which `make test` runs). The API and webhook suites need no models.
#[allow(dead_code)]
pub fn models_dir() -> PathBuf {
    std::env::var_os("CALLCENTER_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/models")))
}

/// The PostgreSQL server the suites use; `make test` starts it. A missing server
/// fails the PostgreSQL half of a suite: it is never skipped.
pub fn pg_admin_url() -> String {
    std::env::var("CALLCENTER_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://callcenter:callcenter@127.0.0.1:5432/postgres".to_owned())
}

/// A new, empty PostgreSQL database; its URL.
pub async fn fresh_pg_database() -> String {
    sqlx::any::install_default_drivers();
    let admin = pg_admin_url();
    let mut conn = AnyConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is required for the test suite (run `make test`): {e}"));
    drop_stale_test_databases(&mut conn).await;
    let name = format!("cc_test_{}", callcenter::domain::Id::generate());
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create test database");
    let (base, _) = admin.rsplit_once('/').expect("database URL has a path");
    format!("{base}/{name}")
}

/// Drops test databases left by runs more than two hours old (their names start with the
/// creation time: an `Id`'s first 8 hex digits are Unix seconds), once per test process, so
/// repeated local runs do not fill the disk. Running suites never lose theirs.
async fn drop_stale_test_databases(conn: &mut AnyConnection) {
    static DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if DONE.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let names: Vec<String> =
        sqlx::query_scalar("SELECT CAST(datname AS TEXT) FROM pg_database WHERE datname LIKE 'cc_test_%'")
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_default();
    for name in names {
        let created =
            name.strip_prefix("cc_test_").and_then(|id| id.get(..8)).and_then(|h| u64::from_str_radix(h, 16).ok());
        if created.is_some_and(|t| t + 2 * 3600 < now) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            let _ = conn.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).await;
        }
    }
}

/// Runs each named `async fn(Backend)` test on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
                #[tokio::test]
                async fn postgres() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            }
        )*
    };
}

/// Polls `check` every 20 ms until it yields a value; panics naming `what` after `timeout`.
#[allow(dead_code)]
pub async fn eventually<T, F, Fut>(timeout: std::time::Duration, what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually_every(std::time::Duration::from_millis(20), timeout, what, check).await
}

/// `eventually` with its own polling interval (for checks that cost a request each).
#[allow(dead_code)]
pub async fn eventually_every<T, F, Fut>(
    poll: std::time::Duration,
    timeout: std::time::Duration,
    what: &str,
    mut check: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(poll).await;
    }
}
