//! Helpers for the PostgreSQL integration tests (`tests/postgres.rs`).
//!
//! Owns: per-test connection tags, the unpooled monitor connection that
//! counts and kills a test's backends, and bounded polling, on the blocking
//! `postgres` client. What slotpool-postgres's tests share with these (the
//! server, skipping loudly, the monitor's SQL, the TCP [`proxy`]) is in
//! [`server`] and [`proxy`], which its `tests/support` includes by path.
//!
//! Every pooled connection a test opens carries a unique `application_name`,
//! so `pg_stat_activity` counts exactly that test's connections even when
//! other tests (or other engineers) use the same server.

pub mod proxy;
pub mod server;

use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use postgres::{Client, NoTls};

pub use server::{PG_DB, PG_USER};
use server::{PG_HOST, PG_PORT, PIDS_BY_TAG, TERMINATE_BY_TAG};

/// Where the server listens.
pub const PG_ADDR: ([u8; 4], u16) = ([127, 0, 0, 1], PG_PORT);

/// The server's socket address.
pub fn pg_addr() -> SocketAddr {
    SocketAddr::from(PG_ADDR)
}

/// A libpq-style connection string to `port`, tagged with `application_name`.
pub fn conn_string(port: u16, application_name: &str) -> String {
    format!(
        "host={PG_HOST} port={port} user={PG_USER} dbname={PG_DB} \
         application_name={application_name} connect_timeout=1"
    )
}

/// A unique `application_name` for one test run: `slotpool_<test>_<pid>_<nanos>`.
/// PostgreSQL truncates names past 63 bytes, which would merge tags.
pub fn unique_tag(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let tag = format!("slotpool_{test}_{}_{nanos}", std::process::id());
    assert!(
        tag.len() <= 63,
        "application_name {tag:?} would be truncated"
    );
    tag
}

/// The start of every test: a monitor connection if the server answers,
/// otherwise a loud skip (or a panic under `SLOTPOOL_REQUIRE_PG=1`).
pub fn monitor_or_skip(test: &str) -> Option<Monitor> {
    match Monitor::connect(test) {
        Ok(monitor) => Some(monitor),
        Err(why) => {
            server::skip(test, &server::unreachable(&why));
            None
        }
    }
}

/// An unpooled connection that watches and kills one test's backends.
pub struct Monitor {
    client: Client,
}

impl Monitor {
    /// Connects with short timeouts: a TCP connect (1 s), then the startup
    /// handshake and `SELECT 1` on a helper thread bounded at 5 s, since
    /// `connect_timeout` does not cover the handshake.
    fn connect(test: &str) -> Result<Self, String> {
        TcpStream::connect_timeout(&pg_addr(), Duration::from_secs(1))
            .map_err(|error| format!("TCP connect failed: {error}"))?;
        let conn = conn_string(PG_ADDR.1, &format!("slotpool_monitor_{test}"));
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let result = Client::connect(&conn, NoTls).and_then(|mut client| {
                client.simple_query("SELECT 1")?;
                Ok(client)
            });
            let _ = sender.send(result.map_err(|error| error.to_string()));
        });
        let client = receiver
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| "no answer to the startup handshake within 5 s".to_owned())??;
        Ok(Self { client })
    }

    /// Backends tagged `tag` right now.
    pub fn count(&mut self, tag: &str) -> usize {
        self.pids(tag).len()
    }

    /// The process ids of the backends tagged `tag`.
    pub fn pids(&mut self, tag: &str) -> Vec<i32> {
        self.client
            .query(PIDS_BY_TAG, &[&tag])
            .expect("query pg_stat_activity")
            .iter()
            .map(|row| row.get(0))
            .collect()
    }

    /// Whether backend `pid` is running a statement that starts with `prefix`.
    pub fn is_running(&mut self, pid: i32, prefix: &str) -> bool {
        let pattern = format!("{prefix}%");
        let row = self
            .client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE pid = $1 AND state = 'active' AND query LIKE $2",
                &[&pid, &pattern],
            )
            .expect("query pg_stat_activity");
        row.get::<_, i64>(0) == 1
    }

    /// Terminates every backend tagged `tag`, waiting (up to 5 s each) until
    /// it has exited; returns the pids killed.
    pub fn terminate_all(&mut self, tag: &str) -> Vec<i32> {
        let killed: Vec<i32> = self
            .client
            .query(TERMINATE_BY_TAG, &[&tag])
            .expect("pg_terminate_backend")
            .iter()
            .map(|row| row.get(0))
            .collect();
        eventually(
            "killed backends to leave pg_stat_activity",
            Duration::from_secs(5),
            || {
                let alive = self.pids(tag);
                killed.iter().all(|pid| !alive.contains(pid))
            },
        );
        killed
    }
}

/// Polls `condition` (every 2 ms, up to `limit`) and panics with `what` if it
/// never holds. Observes a state another thread or the server reaches; it is
/// never a sleep standing in for synchronisation.
pub fn eventually(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}
