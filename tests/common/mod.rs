//! What every integration test binary shares: the two backends, fresh PostgreSQL
//! databases, and `both_backends!`. Included with `#[path = "../common/mod.rs"] mod common;`.

use sqlx::{AnyConnection, Connection, Executor};

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
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
    let name = format!("cc_test_{}", callcenter::domain::Id::generate());
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create test database");
    let (base, _) = admin.rsplit_once('/').expect("database URL has a path");
    format!("{base}/{name}")
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
