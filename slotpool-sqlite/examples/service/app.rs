//! The example service's router and handlers, shared by `main.rs` and
//! `tests/service.rs`.
//!
//! Every handler checks a connection out with [`Pool::get_async`], which
//! waits in the pool's FIFO queue without a `spawn_blocking` hop, runs its
//! SQLite statement synchronously (microseconds on a local file), and drops
//! the connection before the response is serialised. The guard is never held
//! across an `.await`: `rusqlite::Connection` is `Send` but not `Sync`.
//!
//! | route | answer |
//! |-------|--------|
//! | `GET /items/{id}` | `200` `{"id":1,"name":"..."}`, `404` if absent, `503` if the pool fails |
//! | `POST /items` `{"name":"..."}` | `201` with the new item, `503` if the pool fails |
//! | `GET /health` | the pool's [`HealthReport`](slotpool::stats::HealthReport) as JSON; `503` when unhealthy |
//! | `GET /stats` | the pool's [`Stats`](slotpool::Stats) as JSON |
//! | `GET /metrics` | [`Stats::to_prometheus`](slotpool::Stats::to_prometheus), Prometheus text format 0.0.4 |

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};
use slotpool::Pool;
use slotpool::stats::HealthStatus;
use slotpool_sqlite::{SqliteError, SqliteManager};

/// The pool every handler shares.
pub type SqlitePool = Arc<Pool<SqliteManager>>;

/// The `Content-Type` of Prometheus' text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One row of the `items` table.
#[derive(Debug, Serialize)]
pub struct Item {
    id: i64,
    name: String,
}

/// The body of `POST /items`.
#[derive(Debug, Deserialize)]
pub struct NewItem {
    name: String,
}

/// A pool named `service` over the SQLite file at `path` (WAL, a 5 s
/// `busy_timeout`, so concurrent writers queue inside SQLite).
pub fn build_pool(path: &Path) -> Result<Pool<SqliteManager>, slotpool::BuildError<SqliteError>> {
    Pool::builder()
        .pool_name("service")
        .max_size(4)
        .min_idle(1)
        // Answer 503 after 3 s rather than hold an HTTP request longer.
        .connection_timeout(Duration::from_secs(3))
        .validation_timeout(Duration::from_secs(1))
        .build(SqliteManager::file(path))
}

/// Creates the `items` table and, when it is empty, seeds three rows.
/// Returns how many rows it inserted.
pub async fn seed(pool: &Pool<SqliteManager>) -> Result<u64, String> {
    let conn = pool.get_async().await.map_err(|e| e.to_string())?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         INSERT INTO items (name)
         SELECT name FROM (SELECT 'anvil' AS name UNION ALL SELECT 'bellows' UNION ALL SELECT 'crucible')
         WHERE NOT EXISTS (SELECT 1 FROM items);",
    )
    .map_err(|e| e.to_string())?;
    Ok(conn.changes())
}

/// The service's routes over `pool`.
pub fn router(pool: SqlitePool) -> Router {
    Router::new()
        .route("/items/{id}", get(get_item))
        .route("/items", post(create_item))
        .route("/health", get(health))
        .route("/stats", get(stats))
        .route("/metrics", get(metrics))
        .with_state(pool)
}

/// A JSON error body `{"error": message}` with `status`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

/// A pool failure (timed out, closed, connect error): the service is
/// unavailable, not broken.
fn unavailable(err: &slotpool::Error<SqliteError>) -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, err.to_string())
}

fn internal(err: &rusqlite::Error) -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
}

async fn get_item(State(pool): State<SqlitePool>, UrlPath(id): UrlPath<i64>) -> Response {
    let conn = match pool.get_async().await {
        Ok(conn) => conn,
        Err(err) => return unavailable(&err),
    };
    let row = conn
        .prepare_cached("SELECT id, name FROM items WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([id], |row| {
                Ok(Item {
                    id: row.get(0)?,
                    name: row.get(1)?,
                })
            })
            .optional()
        });
    drop(conn);
    match row {
        Ok(Some(item)) => Json(item).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no item {id}")),
        Err(err) => internal(&err),
    }
}

async fn create_item(State(pool): State<SqlitePool>, Json(new): Json<NewItem>) -> Response {
    let conn = match pool.get_async().await {
        Ok(conn) => conn,
        Err(err) => return unavailable(&err),
    };
    let id = conn
        .prepare_cached("INSERT INTO items (name) VALUES (?1)")
        .and_then(|mut stmt| stmt.execute([&new.name]))
        .map(|_| conn.last_insert_rowid());
    drop(conn);
    match id {
        Ok(id) => (StatusCode::CREATED, Json(Item { id, name: new.name })).into_response(),
        Err(err) => internal(&err),
    }
}

async fn health(State(pool): State<SqlitePool>) -> Response {
    let report = pool.health();
    let status = match report.status {
        HealthStatus::Healthy | HealthStatus::Degraded => StatusCode::OK,
        HealthStatus::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, Json(report)).into_response()
}

async fn stats(State(pool): State<SqlitePool>) -> Json<slotpool::Stats> {
    Json(pool.stats())
}

async fn metrics(State(pool): State<SqlitePool>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
        pool.stats().to_prometheus(),
    )
}
