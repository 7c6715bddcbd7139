#![cfg(not(feature = "loom"))]
//! `slotpool bench --backend postgres` end to end: against the local
//! PostgreSQL server (127.0.0.1:5432, user `postgres`, trust), a short run
//! of each workload whose table and JSON are checked; without the server
//! those tests print a loud SKIPPED line (and fail under
//! `SLOTPOOL_REQUIRE_PG=1`). The argument errors and an unreachable server
//! need no server and always run.

#[path = "../../tests/pg_support/server.rs"]
mod server;

mod support;

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;
use server::{PG_DB, PG_HOST, PG_PORT, PG_USER};
use support::slotpool;

/// The local server, without TLS (the bench's own figures are not checked;
/// TLS in a debug build only makes `unpooled` slower).
fn url() -> String {
    format!(
        "host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={PG_DB} sslmode=disable \
         application_name=slotpool_cli_test"
    )
}

/// Whether the server accepts TCP connections; prints the skip notice (or
/// panics under `SLOTPOOL_REQUIRE_PG=1`) when it does not.
fn server_or_skip(test: &str) -> bool {
    let address: SocketAddr = format!("{PG_HOST}:{PG_PORT}").parse().unwrap();
    match TcpStream::connect_timeout(&address, Duration::from_secs(2)) {
        Ok(_) => true,
        Err(error) => {
            server::skip(test, &server::unreachable(&error.to_string()));
            false
        }
    }
}

/// Runs `cmd`, expects exit code `code` and one line on stderr containing
/// `needle`, without a panic.
fn fails_with(cmd: &mut Command, code: i32, needle: &str) -> String {
    let output = cmd.output().expect("run slotpool");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert!(stderr.contains(needle), "expected `{needle}` in: {stderr}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    stderr
}

// ------------------------------------------------------- against the server

#[test]
fn bench_against_postgres_compares_unpooled_and_slotpool() {
    if !server_or_skip("bench_against_postgres_compares_unpooled_and_slotpool") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("pg.json");
    let svg = dir.path().join("pg.svg");
    let output = slotpool()
        .args(["bench", "--backend", "postgres", "--url", &url()])
        .args(["--ops", "100", "--rows", "50", "--workers", "3", "-q"])
        .arg("--json")
        .arg(&json)
        .arg("--plot")
        .arg(&svg)
        .output()
        .expect("run slotpool");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");

    let mut lines = stdout.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.starts_with("read workload, 3 tasks on ")
            && header.contains(
                " runtime threads, 100 ops per variant, 10 connections, 50 rows, PostgreSQL "
            )
            && header.ends_with(&format!(" at {PG_HOST}:{PG_PORT}/{PG_DB}")),
        "{header}"
    );
    let table: Vec<&str> = lines.collect();
    for needle in [
        "ops/s",
        "p50",
        "p99",
        "vs unpooled",
        "| unpooled ",
        "| slotpool ",
    ] {
        assert!(
            table.iter().any(|line| line.contains(needle)),
            "no `{needle}` in {stdout}"
        );
    }
    assert!(!stdout.contains("busy errors"), "{stdout}");
    assert!(
        stdout.contains("(unpooled: connect + prepare + statement + close)"),
        "{stdout}"
    );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["backend"], "postgres");
    assert_eq!(report["workload"], "read");
    assert_eq!(report["workers"], 3);
    assert_eq!(report["connections"], 10);
    assert_eq!(report["database"], format!("{PG_HOST}:{PG_PORT}/{PG_DB}"));
    assert!(!report["server_version"].as_str().unwrap().is_empty());
    assert!(report["runtime_threads"].as_u64().unwrap() >= 1);
    assert!(report.get("locking").is_none() && report.get("readers").is_none());
    let variants = report["variants"].as_array().unwrap();
    let names: Vec<&str> = variants
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["unpooled", "slotpool"]);
    for variant in variants {
        assert_eq!(variant["ops"], 100);
        assert!(variant["ops_per_sec"].as_f64().unwrap() > 0.0);
        assert!(variant["latency_us"]["p50"].as_f64().unwrap() > 0.0);
        assert!(variant.get("busy_errors").is_none());
    }
    assert_eq!(variants[0]["speedup_vs_unpooled"], 1.0);

    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("slotpool"));
}

#[test]
fn bench_against_postgres_runs_write_and_mixed_workloads_for_a_duration() {
    if !server_or_skip("bench_against_postgres_runs_write_and_mixed_workloads_for_a_duration") {
        return;
    }
    for (workload, shown) in [("write", "write workload"), ("mixed", "mixed (90% read)")] {
        slotpool()
            .args(["bench", "--backend", "postgres", "--url", &url()])
            .args(["--workload", workload, "--duration", "200ms"])
            .args(["--rows", "50", "--workers", "1", "-q"])
            .assert()
            .success()
            .stdout(
                predicate::str::contains(shown)
                    .and(predicate::str::contains("0.2s per variant"))
                    .and(predicate::str::contains("| slotpool ")),
            );
    }
}

#[test]
fn bench_against_postgres_takes_the_pool_settings_from_the_environment() {
    if !server_or_skip("bench_against_postgres_takes_the_pool_settings_from_the_environment") {
        return;
    }
    slotpool()
        .args(["bench", "--backend", "postgres", "--url", &url()])
        .args(["--ops", "20", "--rows", "50", "--workers", "1", "-q"])
        .env("SLOTPOOL_MAX_SIZE", "3")
        .assert()
        .success()
        .stdout(predicate::str::contains(", 3 connections, "));
}

// ------------------------------------------------------- no server needed

#[test]
fn postgres_needs_a_url() {
    fails_with(
        slotpool().args(["bench", "--backend", "postgres", "--ops", "10"]),
        2,
        "--backend postgres needs --url",
    );
}

#[test]
fn a_url_needs_the_postgres_backend() {
    fails_with(
        slotpool().args(["bench", "--url", "host=localhost", "--ops", "10"]),
        2,
        "add --backend postgres",
    );
}

#[test]
fn sqlite_only_flags_are_usage_errors_with_a_url() {
    for extra in [
        &["--db", "x.db"][..],
        &["--locking", "process"],
        &["--compare", "r2d2"],
    ] {
        let stderr = fails_with(
            slotpool()
                .args(["bench", "--backend", "postgres", "--url", "host=localhost"])
                .args(extra),
            2,
            "cannot be used with",
        );
        assert!(
            stderr.contains("'--url <URL>'") && stderr.contains(extra[0]),
            "{stderr}"
        );
    }
}

#[test]
fn an_unreachable_server_is_named_on_one_line_without_the_password() {
    // Port 1: nothing listens there, so the connect is refused at once.
    let stderr = fails_with(
        slotpool().args([
            "bench",
            "--backend",
            "postgres",
            "--url",
            "postgresql://app:hunter2@127.0.0.1:1/appdb?sslmode=disable",
            "--ops",
            "10",
        ]),
        1,
        "cannot connect to 127.0.0.1:1/appdb as app",
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn a_bad_url_is_reported_without_the_password() {
    let stderr = fails_with(
        slotpool().args([
            "bench",
            "--backend",
            "postgres",
            "--url",
            "postgresql://app:hunter2@127.0.0.1/appdb?no_such_option=1",
        ]),
        1,
        "invalid PostgreSQL settings",
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
