#![cfg(not(feature = "loom"))]
//! The `slotpool` binary end to end: each subcommand's happy path, its
//! output formats, and a one-line error (never a panic) for each bad input.

mod support;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use slotpool_sqlite::Config;
use support::slotpool;
use tempfile::TempDir;

fn temp_dir() -> TempDir {
    tempfile::tempdir().expect("temporary directory")
}

fn write(dir: &TempDir, name: &str, contents: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).expect("write test file");
    path
}

/// The repository root: where a newcomer runs the README's commands.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("slotpool-cli lives in the workspace")
        .to_path_buf()
}

fn repo_config() -> PathBuf {
    repo_root().join("config.toml")
}

/// Runs `args`, expects failure with exit code `code`, and checks stderr is
/// one line naming the problem (`needle`) without a panic.
fn fails_with(cmd: &mut Command, code: i32, needle: &str) {
    let output = cmd.output().expect("run slotpool");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert!(stderr.contains(needle), "expected `{needle}` in: {stderr}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(
        !stderr.contains("RUST_BACKTRACE"),
        "backtrace hint: {stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
}

// ---------------------------------------------------------------- help

#[test]
fn every_subcommand_has_help() {
    for args in [
        &["--help"][..],
        &["bench", "--help"],
        &["config", "--help"],
        &["config", "show", "--help"],
        &["config", "check", "--help"],
        &["stats", "--help"],
    ] {
        slotpool()
            .args(args)
            .assert()
            .success()
            .stdout(predicate::str::contains("Usage:"));
    }
}

// ---------------------------------------------------------------- bench

#[test]
fn bench_compares_variants_and_writes_json_and_svg() {
    let dir = temp_dir();
    let json = dir.path().join("results.json");
    let svg = dir.path().join("results.svg");
    slotpool()
        .args([
            "bench",
            "--ops",
            "200",
            "--rows",
            "100",
            "--compare",
            "r2d2",
            "--quiet",
        ])
        .arg("--json")
        .arg(&json)
        .arg("--plot")
        .arg(&svg)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("unpooled")
                .and(predicate::str::contains("slotpool"))
                .and(predicate::str::contains("r2d2"))
                .and(predicate::str::contains("ops/s"))
                .and(predicate::str::contains("p99")),
        );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["workload"], "read");
    let variants = report["variants"].as_array().unwrap();
    let names: Vec<&str> = variants
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["unpooled", "slotpool", "r2d2"]);
    for variant in variants {
        assert_eq!(variant["ops"], 200);
        assert!(variant["ops_per_sec"].as_f64().unwrap() > 0.0);
        assert!(variant["latency_us"]["p50"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(variants[0]["speedup_vs_unpooled"], 1.0);

    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(100)]);
    assert!(svg.contains("Throughput") && svg.contains("Latency"));
    assert!(svg.contains("<rect") && svg.contains("slotpool"));
}

#[test]
fn bench_runs_write_and_mixed_workloads_on_a_given_database() {
    let dir = temp_dir();
    let db = dir.path().join("bench.db");
    for workload in ["write", "mixed"] {
        slotpool()
            .args([
                "bench",
                "--workload",
                workload,
                "--ops",
                "100",
                "--rows",
                "50",
                "-q",
            ])
            .arg("--db")
            .arg(&db)
            .assert()
            .success()
            .stdout(predicate::str::contains("slotpool"));
    }
    assert!(db.exists());
}

#[test]
fn bench_runs_for_a_duration() {
    slotpool()
        .args([
            "bench",
            "--duration",
            "150ms",
            "--rows",
            "50",
            "--workers",
            "3",
            "-q",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("0.15s per variant"));
}

#[test]
fn bench_help_documents_locking() {
    slotpool()
        .args(["bench", "--help"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("--locking <MODE>")
                .and(predicate::str::contains("shared"))
                .and(predicate::str::contains("process"))
                .and(predicate::str::contains("unix-excl")),
        );
}

#[test]
fn a_bad_locking_mode_is_a_usage_error() {
    fails_with(
        slotpool().args(["bench", "--ops", "10", "--locking", "exclusive"]),
        2,
        "invalid value 'exclusive' for '--locking <MODE>'",
    );
}

/// Runs a short read bench with `extra` arguments and returns its header
/// line and its JSON report.
fn short_bench(dir: &TempDir, extra: &[&std::ffi::OsStr]) -> (String, serde_json::Value) {
    let json = dir.path().join("locking.json");
    let output = slotpool()
        .args(["bench", "--ops", "200", "--rows", "50", "-q", "--json"])
        .arg(&json)
        .args(extra)
        .output()
        .expect("run slotpool");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let header = stdout.lines().next().unwrap_or_default().to_owned();
    let report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (header, report)
}

#[test]
fn bench_states_its_locking_mode_in_the_header_and_the_json() {
    let dir = temp_dir();
    for (mode, vfs) in [("shared", "unix"), ("process", "unix-excl")] {
        let (header, report) = short_bench(&dir, &["--locking".as_ref(), mode.as_ref()]);
        assert!(
            header.starts_with("read workload, 2 workers, 200 ops per variant")
                && header.ends_with(&format!(", locking {mode} ({vfs})")),
            "{header}"
        );
        assert_eq!(report["locking"]["mode"], mode);
        assert_eq!(report["locking"]["vfs"], vfs);
        assert_eq!(report["variants"].as_array().unwrap().len(), 2);
    }
}

#[cfg(unix)]
#[test]
fn bench_locks_its_own_temporary_file_to_the_process_but_not_a_given_one() {
    let dir = temp_dir();
    let (header, _) = short_bench(&dir, &[]);
    assert!(
        header.ends_with(", locking process (unix-excl)"),
        "{header}"
    );

    let db = dir.path().join("given.db");
    let (header, report) = short_bench(&dir, &["--db".as_ref(), db.as_os_str()]);
    assert!(header.ends_with(", locking shared (unix)"), "{header}");
    assert_eq!(report["locking"]["mode"], "shared");

    // With --db, the configured sqlite.locking applies.
    let output = slotpool()
        .args(["bench", "--ops", "200", "--rows", "50", "-q", "--db"])
        .arg(&db)
        .env("SLOTPOOL_SQLITE_LOCKING", "process")
        .output()
        .expect("run slotpool");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout
            .lines()
            .next()
            .unwrap_or_default()
            .ends_with(", locking process (unix-excl)"),
        "{stdout}"
    );
}

// ---------------------------------------------------------------- config

#[test]
fn config_show_says_where_each_value_came_from() {
    let dir = temp_dir();
    let file = write(
        &dir,
        "app.toml",
        "[defaults]\nsqlite.cache_size = -8000\n\n[profiles.ci]\nmax_size = 3\n\n[profiles.ci.sqlite]\npath = \"ci.db\"\n",
    );
    let output = slotpool()
        .args(["config", "show", "--profile", "ci", "--config"])
        .arg(&file)
        .env("SLOTPOOL_MIN_IDLE", "2")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let line = |key: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no `{key}` in:\n{stdout}"))
            .to_owned()
    };
    assert!(line("max_size").contains("3") && line("max_size").contains("[profiles.ci]"));
    assert!(line("min_idle").contains("2") && line("min_idle").contains("$SLOTPOOL_MIN_IDLE"));
    assert!(line("cache_size").contains("-8000") && line("cache_size").contains("[defaults]"));
    assert!(line("path").contains("ci.db"));
    assert!(line("connection_timeout").contains("# default"));

    // The output is TOML for the same configuration.
    let shown: Config = toml::from_str(&stdout).expect("config show prints TOML");
    assert_eq!(shown.pool.max_size, 3);
    assert_eq!(shown.pool.min_idle, 2);
    assert_eq!(shown.sqlite.cache_size, -8000);
    assert_eq!(shown.sqlite.path, "ci.db");
}

#[test]
fn config_show_lists_locking_with_its_source() {
    let locking_line = |cmd: &mut Command| {
        let output = cmd.args(["config", "show"]).output().expect("run slotpool");
        assert!(output.status.success(), "{output:?}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        let line = stdout
            .lines()
            .find(|l| l.starts_with("locking = "))
            .unwrap_or_else(|| panic!("no `locking` in:\n{stdout}"))
            .to_owned();
        let sqlite_table = stdout.find("\n[sqlite]\n").expect("[sqlite] table");
        assert!(stdout.find(&line).unwrap() > sqlite_table, "under [sqlite]");
        let (value, origin) = line.split_once('#').expect("a source comment");
        (value.trim().to_owned(), origin.trim().to_owned())
    };
    assert_eq!(
        locking_line(&mut slotpool()),
        ("locking = \"shared\"".to_owned(), "default".to_owned())
    );
    assert_eq!(
        locking_line(slotpool().env("SLOTPOOL_SQLITE_LOCKING", "process")),
        (
            "locking = \"process\"".to_owned(),
            "from $SLOTPOOL_SQLITE_LOCKING".to_owned()
        )
    );
}

#[test]
fn config_check_rejects_an_unknown_locking_mode() {
    let dir = temp_dir();
    let file = write(
        &dir,
        "locking.toml",
        "[profiles.bad.sqlite]\nlocking = \"exclusive\"\n",
    );
    slotpool()
        .args(["config", "check"])
        .arg(&file)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "cannot parse `profiles.bad.sqlite.locking` from `\"exclusive\"`: expected one of \"shared\" or \"process\"",
        ));
}

#[test]
fn config_show_follows_slotpool_config_and_profile_variables() {
    slotpool()
        .args(["config", "show"])
        .env("SLOTPOOL_CONFIG", repo_config())
        .env("SLOTPOOL_PROFILE", "test")
        .assert()
        .success()
        .stdout(
            predicate::str::contains("pool_name = \"slotpool-test\"")
                .and(predicate::str::contains("[profiles.test]")),
        );
}

#[test]
fn config_check_passes_on_the_repository_config() {
    slotpool()
        .arg("config")
        .arg("check")
        .arg(repo_config())
        .assert()
        .success()
        .stdout(
            predicate::str::contains("profile `dev`: ok")
                .and(predicate::str::contains("profile `prod`: ok")),
        );
}

#[test]
fn config_check_lists_every_broken_rule() {
    let dir = temp_dir();
    let file = write(
        &dir,
        "bad.toml",
        "[profiles.good]\nmax_size = 2\n\n[profiles.bad]\nmax_size = 2\nmin_idle = 5\nconnection_timeout = \"1s\"\nvalidation_timeout = \"2s\"\n",
    );
    slotpool()
        .args(["config", "check"])
        .arg(&file)
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("profile `good`: ok")
                .and(predicate::str::contains(
                    "profile `bad`: invalid `min_idle` = 5: must be <= max_size (2)",
                ))
                .and(predicate::str::contains(
                    "must be less than connection_timeout (\"1s\")",
                )),
        )
        .stderr(
            predicate::str::contains("2 problem(s)")
                .and(predicate::str::contains("panicked").not()),
        );
}

#[test]
fn config_check_reports_unknown_keys_with_a_suggestion() {
    let dir = temp_dir();
    let file = write(&dir, "typo.toml", "[profiles.dev]\nmax_szie = 3\n");
    slotpool()
        .args(["config", "check"])
        .arg(&file)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "did you mean `profiles.dev.max_size`",
        ));
}

// ---------------------------------------------------------------- stats

#[test]
fn stats_prints_a_table() {
    slotpool()
        .args(["stats", "--ops", "50"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("slotpool-writer")
                .and(predicate::str::contains("slotpool-readers"))
                .and(predicate::str::contains("idle")),
        );
}

#[test]
fn stats_prints_json() {
    let output = slotpool()
        .args(["stats", "--ops", "50", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let pools = doc["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 2);
    assert_eq!(pools[0]["pool"], "slotpool-writer");
    assert_eq!(pools[0]["gauges"]["max"], 1);
    assert_eq!(pools[1]["gauges"]["max"], 10);
    assert!(pools[1]["gauges"]["total"].as_u64().unwrap() >= 1);
    assert!(pools[1]["counters"]["gets"].as_u64().unwrap() >= 50);
    assert!(pools[1]["acquire_wait"]["p99"].is_f64());
    assert!(pools[1]["counters"]["closed"]["broken"].is_u64());
}

#[test]
fn stats_prints_prometheus_gauges() {
    slotpool()
        .args(["stats", "--ops", "50", "--prometheus"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("# HELP slotpool_connections_active ")
                .and(predicate::str::contains(
                    "# TYPE slotpool_connections_idle gauge",
                ))
                .and(predicate::str::contains(
                    "slotpool_connections_pending{pool=\"slotpool-readers\"} 0",
                ))
                .and(predicate::str::contains(
                    "slotpool_connections_max{pool=\"slotpool-writer\"} 1",
                ))
                .and(predicate::str::contains(
                    "slotpool_connections{pool=\"slotpool-writer\"} 1",
                ))
                .and(predicate::str::contains(
                    "# TYPE slotpool_connections_acquire_seconds histogram",
                )),
        );
}

// ---------------------------------------------------------------- bad input

#[test]
fn a_missing_database_directory_is_named() {
    fails_with(
        slotpool().args(["bench", "--ops", "10", "--db", "/nonexistent/dir/x.db"]),
        1,
        "`/nonexistent/dir` is not an existing directory",
    );
    fails_with(
        slotpool().args(["stats", "--db", "/nonexistent/dir/x.db"]),
        1,
        "/nonexistent/dir",
    );
}

#[test]
fn a_path_under_a_file_is_rejected() {
    let dir = temp_dir();
    let file = write(&dir, "plain.txt", "not a directory");
    fails_with(
        slotpool()
            .args(["bench", "--ops", "10", "--db"])
            .arg(file.join("x.db")),
        1,
        "is not an existing directory",
    );
}

#[cfg(target_os = "linux")]
#[test]
fn an_unwritable_database_path_is_reported() {
    // /proc refuses new files even to root.
    fails_with(
        slotpool().args(["bench", "--ops", "10", "--db", "/proc/slotpool-bench.db"]),
        1,
        "cannot open SQLite database `/proc/slotpool-bench.db`",
    );
    fails_with(
        slotpool().args([
            "bench",
            "--ops",
            "10",
            "--rows",
            "10",
            "-q",
            "--json",
            "/proc/slotpool.json",
        ]),
        1,
        "cannot write `/proc/slotpool.json`",
    );
}

#[test]
fn a_file_that_is_not_sqlite_is_rejected() {
    let dir = temp_dir();
    let file = write(
        &dir,
        "notes.db",
        &"these are not the bytes you seek\n".repeat(200),
    );
    fails_with(
        slotpool().args(["bench", "--ops", "10", "--db"]).arg(&file),
        1,
        "file is not a database",
    );
}

#[test]
fn bad_worker_counts_are_usage_errors() {
    fails_with(slotpool().args(["bench", "--workers", "0"]), 2, "--workers");
    fails_with(slotpool().args(["bench", "--workers", "many"]), 2, "'many'");
    fails_with(
        slotpool().args(["stats", "--workers", "-3"]),
        2,
        "--workers",
    );
    fails_with(
        slotpool().args(["bench", "--duration", "soon"]),
        2,
        "--duration",
    );
}

#[test]
fn an_unknown_profile_is_named_with_the_available_ones() {
    fails_with(
        slotpool()
            .args(["bench", "--profile", "nope", "--config"])
            .arg(repo_config()),
        1,
        "unknown profile `nope` (available: `dev`, `prod`, `staging`, `test`)",
    );
    fails_with(
        slotpool().args(["config", "show", "--profile", "nope"]),
        1,
        "unknown profile `nope`",
    );
}

#[test]
fn a_malformed_config_file_is_reported_on_one_line() {
    let dir = temp_dir();
    let file = write(&dir, "broken.toml", "[profiles.dev\nmax_size = = 3\n");
    fails_with(
        slotpool().args(["config", "show", "--config"]).arg(&file),
        1,
        "invalid TOML",
    );
    fails_with(
        slotpool().args(["config", "check"]).arg(&file),
        1,
        "invalid TOML",
    );
    fails_with(
        slotpool().args(["stats", "--config"]).arg(&file),
        1,
        "broken.toml",
    );
}

#[test]
fn a_missing_config_file_is_named() {
    fails_with(
        slotpool().args(["config", "check", "/nonexistent/slotpool.toml"]),
        1,
        "cannot read configuration file `/nonexistent/slotpool.toml`",
    );
}

#[test]
fn an_unknown_environment_variable_is_reported() {
    fails_with(
        slotpool()
            .args(["config", "show"])
            .env("SLOTPOOL_MAX_SZIE", "3"),
        1,
        "SLOTPOOL_MAX_SIZE",
    );
}

/// The README's `cargo run --release -- config show --profile prod`, run
/// from the repository root, reads `./config.toml` without `--config`.
#[test]
fn config_show_reads_the_working_directorys_config_toml() {
    let output = slotpool()
        .current_dir(repo_root())
        .args(["config", "show", "--profile", "prod"])
        .output()
        .expect("run slotpool");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("max_size = "))
        .unwrap_or_else(|| panic!("no max_size in:\n{stdout}"));
    assert!(line.starts_with("max_size = 10 "), "{line}");
    assert!(line.contains("config.toml [profiles.prod]"), "{line}");
}

/// `config check` with no file checks `./config.toml`.
#[test]
fn config_check_defaults_to_the_working_directorys_config_toml() {
    slotpool()
        .current_dir(repo_root())
        .args(["config", "check"])
        .assert()
        .success()
        .stdout(predicate::str::contains("profile `prod`: ok"));
    // Elsewhere, with no such file, it says which file it looked for.
    let dir = temp_dir();
    fails_with(
        slotpool().current_dir(dir.path()).args(["config", "check"]),
        1,
        "config.toml",
    );
}

/// Where there is no `config.toml` and none is named, `config show` shows
/// the defaults.
#[test]
fn config_show_without_a_file_elsewhere_shows_the_defaults() {
    let dir = temp_dir();
    let output = slotpool()
        .current_dir(dir.path())
        .args(["config", "show"])
        .output()
        .expect("run slotpool");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("max_size = 10"), "{stdout}");
}

/// A default that follows a setting the user set is shown as derived, with
/// its rule.
#[test]
fn config_show_marks_derived_defaults() {
    let dir = temp_dir();
    let file = write(
        &dir,
        "derived.toml",
        "[profiles.p]\nconnection_timeout = \"2s\"\nmax_lifetime = \"1m\"\n",
    );
    let output = slotpool()
        .args(["config", "show", "--profile", "p", "--config"])
        .arg(&file)
        .output()
        .expect("run slotpool");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let line = |key: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no `{key}` in:\n{stdout}"))
            .to_owned()
    };
    let validation = line("validation_timeout");
    assert!(validation.contains("\"1s\""), "{validation}");
    assert!(
        validation.contains("# derived: min(5s, connection_timeout / 2)"),
        "{validation}"
    );
    let idle = line("idle_timeout");
    assert!(
        idle.contains("\"off\"") && idle.contains("# derived: off"),
        "{idle}"
    );
    assert!(line("connection_timeout").contains("[profiles.p]"));
}
