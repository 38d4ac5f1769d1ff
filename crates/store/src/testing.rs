//! Fresh databases for tests: a SQLite file in a temporary directory, or a brand-new
//! PostgreSQL database created on the server at `ECHOFORGE_TEST_PG_URL` and dropped afterwards.

use std::path::PathBuf;

use crate::{Result, Store, StoreError, StoreOptions};

/// The environment variable naming a PostgreSQL server for tests (e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`). Each test gets its own database there.
pub const PG_URL_VAR: &str = "ECHOFORGE_TEST_PG_URL";

/// A database that exists for one test. Dropping it removes it.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    _dir: Option<tempfile_dir::TempDir>,
    pg_admin: Option<(String, String)>,
}

mod tempfile_dir {
    /// A directory removed on drop (tiny, to avoid a dependency in the library).
    pub struct TempDir(pub std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl TestDb {
    /// A fresh SQLite database in a new temporary directory.
    pub async fn sqlite() -> Result<Self> {
        let dir: PathBuf =
            std::env::temp_dir().join(format!("echoforge-test-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let url = format!("sqlite://{}", dir.join("echoforge.db").display());
        let store = Store::connect(&url, &StoreOptions::default()).await?;
        Ok(Self { store, url, _dir: Some(tempfile_dir::TempDir(dir)), pg_admin: None })
    }

    /// A fresh PostgreSQL database on the server named by [`PG_URL_VAR`].
    pub async fn postgres() -> Result<Self> {
        let admin_url = std::env::var(PG_URL_VAR).map_err(|_| {
            StoreError::UnsupportedUrl(format!(
                "{PG_URL_VAR} is not set; point it at a PostgreSQL server"
            ))
        })?;
        let name = format!("ef_test_{}", uuid::Uuid::now_v7().simple());
        let admin = sqlx::PgPool::connect(&admin_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await?;
        admin.close().await;
        let url = replace_db_name(&admin_url, &name);
        let store =
            Store::connect(&url, &StoreOptions { max_connections: 4, ..Default::default() })
                .await?;
        Ok(Self { store, url, _dir: None, pg_admin: Some((admin_url, name)) })
    }
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map(|(b, q)| (b, Some(q))).unwrap_or((url, None));
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.pg_admin.take() else { return };
        // Drop runs inside the test's runtime (blocked while we wait), so the cleanup runs on a
        // thread with its own runtime, and must not touch the test's pool: FORCE closes its
        // connections server-side.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                if let Ok(admin) = sqlx::PgPool::connect(&admin_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&admin)
                    .await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_names_are_replaced_in_urls() {
        assert_eq!(
            super::replace_db_name("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(super::replace_db_name("postgres://u@h:5432", "x"), "postgres://u@h:5432/x");
        assert_eq!(
            super::replace_db_name("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
