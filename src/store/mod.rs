//! Persistence with sqlx's `Any` driver: the same SQL runs on SQLite (the embedded
//! default, one file in the data directory) and PostgreSQL (selected by URL).
//!
//! Portability rules the SQL here follows: `$N` placeholders (SQLite accepts them),
//! TEXT/BIGINT/DOUBLE PRECISION columns only, times as fixed-width UTC text
//! (see `domain::time`), JSON as TEXT, aggregates cast to BIGINT/DOUBLE PRECISION.

pub mod accounts;
pub mod analytics;
pub mod call_sessions;
pub mod calls;
pub mod campaign_dialing;
pub mod campaigns;
pub mod carriers;
pub mod contact_lists;
pub mod contacts;
pub mod idempotency;
pub mod phone_numbers;
pub mod quotas;
pub mod templates;
pub mod webhooks;

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyArguments, AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::query::Query;
use sqlx::{Any, AnyPool, AssertSqlSafe, Executor, Row, SqlStr};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("cannot prepare data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Connection pools. On SQLite all writes go through a single connection, so writers
/// queue in the pool instead of failing with SQLITE_BUSY; reads use their own pool
/// and run concurrently thanks to WAL. On PostgreSQL both are the same pool.
#[derive(Clone, Debug)]
pub struct Db {
    pub read: AnyPool,
    pub write: AnyPool,
    pub backend: Backend,
}

/// The schema, embedded so the binary needs no files at run time.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial schema", include_str!("../../migrations/0001_initial.sql")),
    (2, "webhooks", include_str!("../../migrations/0002_webhooks.sql")),
    (3, "template voicemail message", include_str!("../../migrations/0003_template_voicemail.sql")),
    (4, "phone numbers", include_str!("../../migrations/0004_phone_numbers.sql")),
    (5, "call sessions", include_str!("../../migrations/0005_call_sessions.sql")),
    (6, "call heartbeat", include_str!("../../migrations/0006_call_heartbeat.sql")),
    (7, "campaign dialer", include_str!("../../migrations/0007_campaign_dialer.sql")),
    (8, "stream token once", include_str!("../../migrations/0008_stream_token_once.sql")),
    (9, "carriers", include_str!("../../migrations/0009_carriers.sql")),
];

pub fn migrator() -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                SqlStr::from_static(sql),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator { migrations: Cow::Owned(migrations), ..Migrator::DEFAULT }
}

impl Db {
    /// Opens the database: `database_url` if given (postgres:// or sqlite:), else
    /// `callcenter.db` in `data_dir`.
    pub async fn connect(database_url: Option<&str>, data_dir: &Path) -> StoreResult<Db> {
        sqlx::any::install_default_drivers();
        let url = match database_url {
            Some(url) => url.to_owned(),
            None => {
                std::fs::create_dir_all(data_dir)
                    .map_err(|source| StoreError::DataDir { path: data_dir.display().to_string(), source })?;
                format!("sqlite://{}?mode=rwc", data_dir.join("callcenter.db").display())
            }
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = AnyConnectOptions::from_str(&url)?;
            let pool = AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            Ok(Db { read: pool.clone(), write: pool, backend: Backend::Postgres })
        } else if url.starts_with("sqlite:") {
            let options = AnyConnectOptions::from_str(&url)?;
            // Writes (and with them every webhook event of the outbox) are synced to disk at
            // each commit: a committed state change and its event survive a power loss too.
            let write = sqlite_pool(options.clone(), 1, "FULL").await?;
            write.execute("PRAGMA journal_mode=WAL").await?;
            let read = sqlite_pool(options, read_connections(), "NORMAL").await?;
            Ok(Db { read, write, backend: Backend::Sqlite })
        } else {
            Err(StoreError::Database(sqlx::Error::Configuration(
                format!("unsupported database URL '{url}': use postgres://... or sqlite:...").into(),
            )))
        }
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        migrator().run(&self.write).await?;
        Ok(())
    }

    /// For `/readyz`.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

async fn sqlite_pool(options: AnyConnectOptions, max: u32, synchronous: &'static str) -> StoreResult<AnyPool> {
    Ok(AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                conn.execute(AssertSqlSafe(format!("PRAGMA synchronous = {synchronous}"))).await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await?)
}

/// A bind value for dynamically built SQL.
#[derive(Clone, Debug)]
pub enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
    Float(Option<f64>),
}

impl From<String> for Arg {
    fn from(v: String) -> Arg {
        Arg::Text(Some(v))
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(Some(v.to_owned()))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Arg {
        Arg::Text(v)
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Arg {
        Arg::Int(v)
    }
}
impl From<f64> for Arg {
    fn from(v: f64) -> Arg {
        Arg::Float(Some(v))
    }
}

/// SQL text with numbered placeholders and their values, built up piece by piece.
#[derive(Clone, Debug, Default)]
pub struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub fn new(text: &str) -> Sql {
        Sql { text: text.to_owned(), args: Vec::new() }
    }

    pub fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    /// Adds a value and returns its placeholder (`$N`).
    pub fn arg(&mut self, value: impl Into<Arg>) -> String {
        self.args.push(value.into());
        format!("${}", self.args.len())
    }

    /// Pushes `text`, where each `?` is replaced by the placeholder of the next value.
    pub fn push_with(&mut self, text: &str, values: impl IntoIterator<Item = Arg>) -> &mut Sql {
        let mut values = values.into_iter();
        for (i, part) in text.split('?').enumerate() {
            if i > 0 {
                let value = values.next().expect("as many values as '?' in push_with");
                let placeholder = self.arg(value);
                self.text.push_str(&placeholder);
            }
            self.text.push_str(part);
        }
        self
    }

    /// Pushes `$a, $b, ...` for a list of values (the inside of an `IN (...)`).
    pub fn push_list(&mut self, values: impl IntoIterator<Item = Arg>) -> &mut Sql {
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            let placeholder = self.arg(value);
            self.text.push_str(&placeholder);
        }
        self
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn query(&self) -> Query<'_, Any, AnyArguments> {
        bind_all(sqlx::query(AssertSqlSafe(self.text.as_str())), &self.args)
    }
}

pub fn bind_all<'q>(mut q: Query<'q, Any, AnyArguments>, args: &[Arg]) -> Query<'q, Any, AnyArguments> {
    for arg in args {
        q = match arg {
            Arg::Text(v) => q.bind(v.clone()),
            Arg::Int(v) => q.bind(*v),
            Arg::Float(v) => q.bind(*v),
        };
    }
    q
}

/// Typed column access that reports which column was wrong.
pub trait RowExt {
    fn text(&self, col: &str) -> StoreResult<String>;
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>>;
    fn int(&self, col: &str) -> StoreResult<i64>;
    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>>;
    fn opt_float(&self, col: &str) -> StoreResult<Option<f64>>;
    /// A nullable timestamp column (RFC 3339 text).
    fn opt_time(&self, col: &str) -> StoreResult<Option<crate::domain::Timestamp>> {
        Ok(self.opt_text(col)?.map(|t| crate::domain::Timestamp::from_db(&t)))
    }
}

impl RowExt for AnyRow {
    fn text(&self, col: &str) -> StoreResult<String> {
        self.try_get::<String, _>(col).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
    }
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>> {
        self.try_get::<Option<String>, _>(col).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
    }
    fn int(&self, col: &str) -> StoreResult<i64> {
        self.try_get::<i64, _>(col).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
    }
    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>> {
        self.try_get::<Option<i64>, _>(col).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
    }
    fn opt_float(&self, col: &str) -> StoreResult<Option<f64>> {
        self.try_get::<Option<f64>, _>(col).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
    }
}

/// Parses a JSON text column.
pub fn json_col<T: serde::de::DeserializeOwned>(row: &AnyRow, col: &str) -> StoreResult<T> {
    let text = row.text(col)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern, lower-cased.
pub fn like_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// One page of results and the total count across all pages.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
}

#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    pub page: i64,
    pub limit: i64,
}

impl PageRequest {
    pub fn offset(&self) -> i64 {
        (self.page - 1).saturating_mul(self.limit)
    }
}

/// Runs `SELECT COUNT(*)` and the page query for a `FROM ... WHERE ...` clause.
pub async fn fetch_page(
    pool: &AnyPool,
    columns: &str,
    from_where: &Sql,
    order_by: &str,
    page: PageRequest,
) -> StoreResult<(Vec<AnyRow>, i64)> {
    let mut count = Sql::new("SELECT CAST(COUNT(*) AS BIGINT) AS n ");
    count.push(from_where.text());
    count.args = from_where.args.clone();
    let total = count.query().fetch_one(pool).await?.int("n")?;
    let mut select = Sql::new(&format!("SELECT {columns} "));
    select.push(from_where.text());
    select.args = from_where.args.clone();
    select.push(&format!(" ORDER BY {order_by} "));
    let limit = select.arg(page.limit);
    let offset = select.arg(page.offset());
    select.push(&format!("LIMIT {limit} OFFSET {offset}"));
    let rows = if page.offset() >= total { Vec::new() } else { select.query().fetch_all(pool).await? };
    Ok((rows, total))
}

/// SQLite read connections: one per core. Each connection runs on its own thread and
/// hands rows over a channel, so more connections than cores only add context switches.
fn read_connections() -> u32 {
    std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(2).clamp(2, 8)
}
