//! The daemon with an event store file it cannot use: a clear error naming the file,
//! exit code 2 at start.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gateway_test_support::TempDir;

/// Runs the daemon on `db_path` and returns (exit code, stderr); kills it after 30 s.
fn run_on(dir: &TempDir, db_path: &std::path::Path) -> (Option<i32>, String) {
    let conf = dir.write(
        "gateway.json",
        &serde_json::json!({
            "name": "gw",
            "event_server": {"embedded": {"db_path": db_path}},
            "devices": []
        })
        .to_string(),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_gateway-host"))
        .arg("--conf")
        .arg(&conf)
        .env_remove("RUST_LOG")
        .env(
            "XDG_STATE_HOME",
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("state"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.code(), stderr)
}

#[test]
fn a_corrupt_event_store_file_exits_2_naming_the_file() {
    let dir = TempDir::new("store-cli-corrupt");
    let db = dir.write("events.redb", &"garbage ".repeat(2000));
    let (code, stderr) = run_on(&dir, &db);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(&db.display().to_string()), "{stderr}");
}

#[test]
fn an_event_store_under_a_regular_file_exits_2_naming_the_file() {
    let dir = TempDir::new("store-cli-place");
    let file = dir.write("not-a-dir", "x");
    let db = file.join("events.redb");
    let (code, stderr) = run_on(&dir, &db);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(&db.display().to_string()), "{stderr}");
}
