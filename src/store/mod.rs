//! All SQL lives here, checked against the schema by sqlx at compile time
//! (`.sqlx/` holds the offline data so a fresh clone builds without a database).

pub mod campaigns;
pub mod channels;
pub mod cluster;
pub mod collabs;
pub mod creators;
pub mod inbound;
pub mod mailboxes;
pub mod outreach;
pub mod standing;
pub mod sync;
pub mod tokens;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Postgres, Transaction};

pub use collabs::CollabRef;

/// Keyset paging on id: the rows after `after` in the list's order, at most `limit` of them
/// (all when `None`). Lists order by id, so a page never skips or repeats a row when rows
/// are added meanwhile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Page {
    pub after: Option<i64>,
    pub limit: Option<i64>,
}
pub use inbound::NewInbound;
pub use outreach::OutreachRef;
pub use sync::{SyncState, SyncSummary};

/// Database failures, kept apart from the data problems that callers report differently.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// An ingest commit found its instance no longer holds the mailbox's lease.
    #[error("mailbox {0:?} is no longer leased to this instance: not committed")]
    LeaseLost(String),
}

/// A database transaction, the unit in which ingest keeps its invariants.
pub type Tx = Transaction<'static, Postgres>;

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects; fails fast when the server does not answer. Every session gets the
    /// statement timeout (zero: none).
    pub async fn connect(
        url: &str,
        max_connections: u32,
        statement_timeout: Duration,
    ) -> Result<Store, StoreError> {
        let options: PgConnectOptions = url.parse()?;
        let timeout_ms = statement_timeout.as_millis().to_string();
        let options = options
            .application_name("collabd")
            .options([("statement_timeout", timeout_ms.as_str())])
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(2));
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Store { pool })
    }

    /// Wraps an existing pool (tests build theirs per database).
    pub fn from_pool(pool: PgPool) -> Store {
        Store { pool }
    }

    /// The pool, for the admin and test code that needs plain queries.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the embedded migrations; safe to run at every start.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations").run(&self.pool).await?;
        Ok(())
    }

    /// Starts a transaction.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// Whether the database answers right now.
    pub async fn ping(&self) -> bool {
        sqlx::query_scalar!("SELECT 1 AS \"one!\"").fetch_one(&self.pool).await.is_ok()
    }
}
