//! Postgres for tests: a fresh database per test on the shared test cluster ([`TestDb`]),
//! a server of a test's own that it can crash and restart ([`PrivatePg`]), and a table
//! lock that holds the daemon mid-batch ([`hold_inbound`]).

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use collabd::store::Store;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};

use super::{DaemonProc, admin_url, eventually, free_port};

/// A database of its own for one test.
pub struct TestDb {
    pub url: String,
    pub pool: PgPool,
    pub store: Store,
}

impl TestDb {
    pub async fn new() -> TestDb {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "collabd_t_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            rand::random::<u32>()
        );
        let admin = admin_url();
        let mut conn = PgConnection::connect(&admin).await.expect("connect to test Postgres");
        sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut conn).await.unwrap();
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap();
        let url = format!("{base}/{name}");
        let pool = PgPoolOptions::new().max_connections(5).connect(&url).await.unwrap();
        let store = Store::from_pool(pool.clone());
        store.migrate().await.expect("migrations");
        TestDb { url, pool, store }
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql).fetch_one(&self.pool).await.unwrap()
    }

    /// Rows in `table`.
    pub async fn rows(&self, table: &str) -> i64 {
        self.count(&format!("SELECT count(*) FROM {table}")).await
    }
}
/// A PostgreSQL server of the test's own, for tests that restart it.
pub struct PrivatePg {
    dir: tempfile::TempDir,
    pub port: u16,
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

impl PrivatePg {
    pub fn start() -> PrivatePg {
        let dir = tempfile::Builder::new().prefix("collabd-pg").tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        Command::new("chown").args(["postgres:postgres"]).arg(&data).status().unwrap();
        let pg = PrivatePg { dir, port: free_port() };
        let ok = pg
            .as_postgres(
                &format!("{PG_BIN}/initdb"),
                &["-D", &pg.data(), "-U", "postgres", "--auth=trust", "--no-sync"],
            )
            .success();
        assert!(ok, "initdb failed");
        pg.start_server();
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn as_postgres(&self, bin: &str, args: &[&str]) -> std::process::ExitStatus {
        Command::new("runuser")
            .args(["-u", "postgres", "--", bin])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
    }

    pub fn start_server(&self) {
        let data = self.data();
        let opts = format!("-c listen_addresses=127.0.0.1 -p {} -k {data} -c fsync=off", self.port);
        let log = format!("{data}/server.log");
        let ok = self
            .as_postgres(
                &format!("{PG_BIN}/pg_ctl"),
                &["-D", &data, "-l", &log, "-w", "-o", &opts, "start"],
            )
            .success();
        assert!(ok, "pg_ctl start failed");
    }

    /// Stops the server the hard way (like a crash or `kill -9` of the postmaster's work).
    pub fn stop_immediate(&self) {
        self.as_postgres(
            &format!("{PG_BIN}/pg_ctl"),
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A migrated store on this server.
    pub async fn db(&self) -> TestDb {
        let pool = PgPoolOptions::new().max_connections(5).connect(&self.url()).await.unwrap();
        let store = Store::from_pool(pool.clone());
        store.migrate().await.unwrap();
        TestDb { url: self.url(), pool, store }
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        self.stop_immediate();
    }
}
/// Holds `inbound_messages` against inserts until the returned transaction ends. With
/// [`wait_until_daemon_blocks`] it is the one way to be sure that a batch is in flight,
/// whatever the speed of the machine, when a test then kills something.
pub async fn hold_inbound(db: &TestDb) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut lock = db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE inbound_messages IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    lock
}

/// Waits until the daemon's insert is queued behind [`hold_inbound`].
pub async fn wait_until_daemon_blocks(db: &TestDb, daemon: &DaemonProc) {
    // This test's database only: other tests hold and wait on their own tables meanwhile.
    let waiting = "SELECT count(*) FROM pg_stat_activity \
                   WHERE datname = current_database() AND wait_event_type = 'Lock' \
                     AND query ILIKE '%inbound_messages%'";
    assert!(
        eventually(Duration::from_secs(60), || async { db.count(waiting).await >= 1 }).await,
        "the daemon never reached the held table: {}",
        daemon.logs()
    );
}
/// `url` with its port replaced: the same database through a relay.
pub fn via_port(url: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (auth_host, path) = rest.split_once('/').unwrap();
    let (before_port, _) = auth_host.rsplit_once(':').unwrap();
    format!("{scheme}://{before_port}:{port}/{path}")
}
