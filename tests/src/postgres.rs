//! PostgreSQL databases for tests: each test makes one of its own on the machine's server
//! (`VSC_TEST_POSTGRES`, by default `host=/var/run/postgresql user=postgres`: the Unix socket,
//! which private hosts reach too), named uniquely, and drops it when done, also when the test
//! fails. A server that cannot be reached is an error that says so: tests that need PostgreSQL
//! fail, loudly, rather than pass without it.

use std::sync::atomic::{AtomicUsize, Ordering};

use postgres::{Client, NoTls};

use crate::{HarnessError, Result};

/// The tests' server, as its administrator: a libpq keyword string without `dbname`.
pub fn postgres_admin() -> String {
    std::env::var("VSC_TEST_POSTGRES")
        .unwrap_or_else(|_| "host=/var/run/postgresql user=postgres".to_string())
}

/// A database of one test, dropped (with its sessions) when this value is.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
}

impl TestDatabase {
    /// Creates a database named after `test`, this process and a counter.
    pub fn create(test: &str) -> Result<TestDatabase> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        // Unique across runs and private hosts (whose pids repeat): the clock's nanoseconds.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| t.as_nanos() % 1_000_000_000_000);
        let name = format!(
            "vsc_{}_{}_{}_{nanos}",
            test.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(24)
                .collect::<String>(),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = connect("postgres")?;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .map_err(|e| failed(&format!("creating the database {name}"), &e))?;
        Ok(TestDatabase { name })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its location for `--store`: a keyword string over the Unix socket.
    pub fn location(&self) -> String {
        format!("{} dbname={}", postgres_admin(), self.name)
    }

    /// A connection to it, as the administrator.
    pub fn client(&self) -> Result<Client> {
        connect(&self.name)
    }

    /// Ends every session of this database but the caller's (as when the server restarts):
    /// how many there were.
    pub fn terminate_sessions(&self) -> Result<i64> {
        let mut admin = connect("postgres")?;
        admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&self.name],
            )
            .map(|row| row.get(0))
            .map_err(|e| failed("ending the database's sessions", &e))
    }

    /// Opens or closes the database to new connections (`ALLOW_CONNECTIONS`).
    pub fn allow_connections(&self, allow: bool) -> Result<()> {
        connect("postgres")?
            .batch_execute(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS {allow}",
                self.name
            ))
            .map_err(|e| failed("changing ALLOW_CONNECTIONS", &e))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Two statements: DROP DATABASE cannot run in the transaction of a multi-statement
        // query.
        if let Ok(mut admin) = connect("postgres") {
            let _ = admin.batch_execute(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS true",
                self.name
            ));
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

fn connect(dbname: &str) -> Result<Client> {
    let text = format!("{} dbname={dbname}", postgres_admin());
    Client::connect(&text, NoTls).map_err(|e| {
        failed(
            &format!(
                "PostgreSQL is not reachable at {text:?} (these tests need a server: \
                 scripts/setup starts one; VSC_TEST_POSTGRES names another)"
            ),
            &e,
        )
    })
}

fn failed(what: &str, error: &postgres::Error) -> HarnessError {
    let detail = match error.as_db_error() {
        Some(db) => db.message().to_string(),
        None => match std::error::Error::source(error) {
            Some(cause) => format!("{error}: {cause}"),
            None => error.to_string(),
        },
    };
    HarnessError::Failed {
        what: what.to_string(),
        detail,
    }
}
