//! An async HTTP service on slotpool: axum on tokio, SQLite through
//! `Pool::get_async`, and the pool's monitoring endpoints.
//!
//! ```sh
//! cargo run --example service -- --db /tmp/service.db --addr 127.0.0.1:8080
//! curl localhost:8080/items/1
//! curl -X POST -H 'content-type: application/json' -d '{"name":"tongs"}' localhost:8080/items
//! curl localhost:8080/health    # HealthReport as JSON; 503 when unhealthy
//! curl localhost:8080/stats     # Stats as JSON
//! curl localhost:8080/metrics   # Prometheus text format
//! ```
//!
//! It seeds an `items` table, serves until Ctrl-C or SIGTERM, lets in-flight
//! requests finish, then closes the pool, waiting up to 5 s for connections
//! still checked out. The routes are in `app.rs`.

mod app;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::sync::Notify;

/// The example service's command line.
#[derive(Debug, Parser)]
#[command(about = "slotpool example service: SQLite over HTTP with /health, /stats, /metrics")]
struct Args {
    /// The SQLite database file (created if missing).
    #[arg(long, default_value = "slotpool-service.db")]
    db: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("service: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let pool = Arc::new(app::build_pool(&args.db)?);
    let seeded = app::seed(&pool).await?;
    println!(
        "database {} ready ({seeded} items seeded)",
        args.db.display()
    );

    // Ctrl-C / SIGTERM arrive on ctrlc's thread; `notify_one` stores a
    // permit, so a signal before the server starts waiting is not lost.
    let stop = Arc::new(Notify::new());
    let notify = Arc::clone(&stop);
    ctrlc::set_handler(move || notify.notify_one())?;

    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app::router(Arc::clone(&pool)))
        .with_graceful_shutdown(async move { stop.notified().await })
        .await?;

    println!("shutting down: closing the pool");
    pool.close_timeout(Duration::from_secs(5))?;
    Ok(())
}
