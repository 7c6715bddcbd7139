//! The pools under test (`Kind`) and how each is built and driven (`Peer`),
//! including bb8-postgres with a statement cache per connection.

use super::*;

/// The pools under test, as configured (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Kind {
    Slotpool,
    Deadpool,
    Bb8,
    Bb8NoTest,
    Sqlx,
    SqlxNoTest,
}

impl Kind {
    pub(super) const ALL: [Kind; 6] = [
        Kind::Slotpool,
        Kind::Deadpool,
        Kind::Bb8,
        Kind::Bb8NoTest,
        Kind::Sqlx,
        Kind::SqlxNoTest,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Slotpool => "slotpool",
            Kind::Deadpool => "deadpool-postgres",
            Kind::Bb8 => "bb8-postgres",
            Kind::Bb8NoTest => "bb8-no-test",
            Kind::Sqlx => "sqlx",
            Kind::SqlxNoTest => "sqlx-no-test",
        }
    }

    /// How it is set up, for the JSON.
    pub(super) fn describe(self) -> &'static str {
        match self {
            Kind::Slotpool => {
                "slotpool Pool<Async<PgManager>>, defaults (recycling verified, \
                 validation_idle_window 500ms); prepare_cached"
            }
            Kind::Deadpool => {
                "deadpool-postgres 0.14, RecyclingMethod::Fast (its default); prepare_cached"
            }
            Kind::Bb8 => {
                "bb8 0.9 + bb8-postgres 0.9, defaults (test_on_check_out = true: \
                 simple_query(\"\") per checkout); statements cached per connection by a \
                 thin wrapper manager"
            }
            Kind::Bb8NoTest => {
                "bb8 0.9 + bb8-postgres 0.9, test_on_check_out = false; statements cached \
                 per connection by a thin wrapper manager"
            }
            Kind::Sqlx => {
                "sqlx 0.8 PgPool, defaults (test_before_acquire = true: a ping per acquire; \
                 a ping per release in a spawned task); automatic statement cache"
            }
            Kind::SqlxNoTest => {
                "sqlx 0.8 PgPool, test_before_acquire = false (still a ping per release); \
                 automatic statement cache"
            }
        }
    }
}

/// bb8-postgres's manager; its connection gains a map of prepared
/// statements. `connect`, `is_valid` and `has_broken` are bb8-postgres's.
pub(super) struct Bb8Cached(bb8_postgres::PostgresConnectionManager<NoTls>);

pub(super) struct CachedClient {
    pub(super) client: Client,
    pub(super) statements: HashMap<&'static str, Statement>,
}

impl bb8::ManageConnection for Bb8Cached {
    type Connection = CachedClient;
    type Error = tokio_postgres::Error;

    async fn connect(&self) -> Result<CachedClient, tokio_postgres::Error> {
        Ok(CachedClient {
            client: self.0.connect().await?,
            statements: HashMap::new(),
        })
    }

    async fn is_valid(&self, conn: &mut CachedClient) -> Result<(), tokio_postgres::Error> {
        self.0.is_valid(&mut conn.client).await
    }

    fn has_broken(&self, conn: &mut CachedClient) -> bool {
        self.0.has_broken(&mut conn.client)
    }
}

impl CachedClient {
    pub(super) async fn statement(
        &mut self,
        sql: &'static str,
    ) -> Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }
}

// ---------------------------------------------------------------------------
// The pools.
// ---------------------------------------------------------------------------

#[derive(Clone)]
pub(super) enum Peer {
    Slotpool(Pool<Async<PgManager>>),
    Deadpool(deadpool_postgres::Pool),
    Bb8(bb8::Pool<Bb8Cached>),
    Sqlx(sqlx::PgPool),
}

impl Peer {
    /// Builds `kind` with `size` connections, all opened before it returns.
    /// Runs on the runtime (slotpool's and bb8's tasks go there).
    pub(super) async fn build(kind: Kind, size: u32, server: &Server) -> Peer {
        let peer = match kind {
            Kind::Slotpool => {
                let settings = PgConfig {
                    sslmode: SslMode::Disable,
                    ..PgConfig::default()
                };
                let manager = PgManager::from_tokio_postgres(server.tokio.clone(), settings)
                    .expect("slotpool manager");
                let pool = Pool::builder()
                    .max_size(size)
                    .build(Async::new(manager, Tokio::current()))
                    .expect("slotpool pool");
                Peer::Slotpool(pool)
            }
            Kind::Deadpool => {
                let manager = deadpool_postgres::Manager::from_config(
                    server.tokio.clone(),
                    NoTls,
                    deadpool_postgres::ManagerConfig {
                        recycling_method: deadpool_postgres::RecyclingMethod::Fast,
                    },
                );
                let pool = deadpool_postgres::Pool::builder(manager)
                    .max_size(size as usize)
                    .build()
                    .expect("deadpool pool");
                Peer::Deadpool(pool)
            }
            Kind::Bb8 | Kind::Bb8NoTest => {
                let manager = Bb8Cached(bb8_postgres::PostgresConnectionManager::new(
                    server.tokio.clone(),
                    NoTls,
                ));
                let mut builder = bb8::Pool::builder().max_size(size);
                if kind == Kind::Bb8NoTest {
                    builder = builder.test_on_check_out(false);
                }
                Peer::Bb8(builder.build(manager).await.expect("bb8 pool"))
            }
            Kind::Sqlx | Kind::SqlxNoTest => {
                let mut options = sqlx::postgres::PgPoolOptions::new().max_connections(size);
                if kind == Kind::SqlxNoTest {
                    options = options.test_before_acquire(false);
                }
                Peer::Sqlx(options.connect_lazy_with(server.sqlx.clone()))
            }
        };
        peer.open_all(size).await;
        peer
    }

    /// Checks out `size` connections at once (so each is opened), then
    /// returns them.
    pub(super) async fn open_all(&self, size: u32) {
        match self {
            Peer::Slotpool(pool) => {
                let mut held = Vec::new();
                for _ in 0..size {
                    held.push(pool.get_async().await.expect("slotpool get"));
                }
            }
            Peer::Deadpool(pool) => {
                let mut held = Vec::new();
                for _ in 0..size {
                    held.push(pool.get().await.expect("deadpool get"));
                }
            }
            Peer::Bb8(pool) => {
                let mut held = Vec::new();
                for _ in 0..size {
                    held.push(pool.get().await.expect("bb8 get"));
                }
            }
            Peer::Sqlx(pool) => {
                let mut held = Vec::new();
                for _ in 0..size {
                    held.push(pool.acquire().await.expect("sqlx acquire"));
                }
                drop(held);
                // sqlx returns connections in spawned tasks (after a ping):
                // wait until all are idle again.
                while pool.num_idle() < size as usize {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    }

    /// One operation: checkout, the workload's cached statement, return.
    /// An error (a connection the server or an administrator ended) is
    /// returned, to be counted; a wrong row panics.
    pub(super) async fn op(&self, workload: Workload, id: i32) -> Result<(), String> {
        let sql = workload.sql();
        match self {
            Peer::Slotpool(pool) => {
                let conn = pool.get_async().await.map_err(|e| error_chain(&e))?;
                let statement = conn
                    .prepare_cached(sql)
                    .await
                    .map_err(|e| error_chain(&e))?;
                let row = match workload {
                    Workload::Select1 => conn.query_one(&statement, &[]).await,
                    Workload::PointRead => conn.query_one(&statement, &[&id]).await,
                };
                workload.check(&row.map_err(|e| error_chain(&e))?, id);
            }
            Peer::Deadpool(pool) => {
                let client = pool.get().await.map_err(|e| error_chain(&e))?;
                let statement = client
                    .prepare_cached(sql)
                    .await
                    .map_err(|e| error_chain(&e))?;
                let row = match workload {
                    Workload::Select1 => client.query_one(&statement, &[]).await,
                    Workload::PointRead => client.query_one(&statement, &[&id]).await,
                };
                workload.check(&row.map_err(|e| error_chain(&e))?, id);
            }
            Peer::Bb8(pool) => {
                let mut conn = pool.get().await.map_err(|e| error_chain(&e))?;
                let statement = conn.statement(sql).await.map_err(|e| error_chain(&e))?;
                let row = match workload {
                    Workload::Select1 => conn.client.query_one(&statement, &[]).await,
                    Workload::PointRead => conn.client.query_one(&statement, &[&id]).await,
                };
                workload.check(&row.map_err(|e| error_chain(&e))?, id);
            }
            Peer::Sqlx(pool) => {
                let mut conn = pool.acquire().await.map_err(|e| error_chain(&e))?;
                match workload {
                    Workload::Select1 => {
                        let one: i32 = sqlx::query_scalar(sql)
                            .fetch_one(&mut *conn)
                            .await
                            .map_err(|e| error_chain(&e))?;
                        assert_eq!(one, 1);
                    }
                    Workload::PointRead => {
                        let row = sqlx::query(sql)
                            .bind(id)
                            .fetch_one(&mut *conn)
                            .await
                            .map_err(|e| error_chain(&e))?;
                        assert_eq!(row.get::<i32, _>(0), id);
                        std::hint::black_box(row.get::<&str, _>(1));
                    }
                }
            }
        }
        Ok(())
    }

    /// Closes every connection (waiting where the pool lets us).
    pub(super) async fn close(self) {
        match self {
            Peer::Slotpool(pool) => {
                // Nothing is checked out: returns at once.
                let _ = pool.close_timeout(Duration::ZERO);
            }
            Peer::Deadpool(pool) => pool.close(),
            Peer::Bb8(pool) => drop(pool),
            Peer::Sqlx(pool) => pool.close().await,
        }
    }
}
