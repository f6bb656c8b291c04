//! The Adminer protocol end to end: hat-gateway's own Python adminer client
//! (`hat.gateway.adminer` from the test venv) gets and sets the log configuration of
//! the real daemon, and the level really changes (a debug line appears once set);
//! then `gateway-host log-level` does the same as a client.
#![allow(clippy::unwrap_used)]

mod cli_support;

use std::process::Command;

use cli_support::{gateway_host, run, Proc, Stream, TempDir};
use serde_json::{json, Value};

fn fields(line: &str) -> Value {
    serde_json::from_str::<Value>(line)
        .map(|v| v["fields"].clone())
        .unwrap_or(Value::Null)
}

fn message(line: &str) -> String {
    fields(line)["message"].as_str().unwrap_or("").to_owned()
}

/// The engine logs this (at debug) for an event of no configured device.
const IGNORED: &str = "ignoring event for no configured device";

fn register_unknown(addr: &str, n: u32) {
    let out = run(
        gateway_host().args([
            "events",
            "--server",
            addr,
            "register",
            &format!("gateway/gw/sim/nobody{n}/system/x"),
            "--json",
            "1",
        ]),
        None,
    );
    out.assert_exit(0);
}

#[test]
fn hat_adminer_client_and_log_level_set_the_log_configuration() {
    let venv = gateway_test_support::venv_with(&["bin/python"]);
    let dir = TempDir::new("ops-adminer");
    let conf = dir.write(
        "gateway.json",
        &json!({
            "name": "gw",
            "event_server": {"embedded": {"store": "memory", "eventer_server": {"host": "127.0.0.1", "port": 0}}},
            "adminer_server": {"host": "127.0.0.1", "port": 0},
            "devices": [],
            "log": {"level": "info", "format": "json"}
        })
        .to_string(),
    );
    let mut daemon = Proc::spawn(gateway_host().arg("--conf").arg(&conf));
    let line = daemon.expect_line(Stream::Stderr, |l| message(l) == "adminer server listening");
    let adminer = fields(&line)["addr"].as_str().unwrap().to_owned();
    let line = daemon.expect_line(Stream::Stderr, |l| {
        l.contains("embedded event server listening")
    });
    let eventer = fields(&line)["addr"]
        .as_str()
        .unwrap()
        .trim_start_matches("Some(")
        .trim_end_matches(')')
        .to_owned();
    // At info, an ignored event leaves no line; the daemon logs the first one it
    // receives after the set below.
    register_unknown(&eventer, 0);

    let (host, port) = adminer.rsplit_once(':').unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/adminer_client.py");
    let out = Command::new(venv.join("bin/python"))
        .arg(&script)
        .args([host, port])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let steps: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The configured level as a dictConfig, what was set, then a refusal with a reason.
    assert_eq!(steps[0]["get"]["version"], json!(1), "{stdout}");
    assert_eq!(steps[0]["get"]["root"]["level"], json!("INFO"), "{stdout}");
    assert_eq!(steps[1], json!({"set": "ok"}));
    assert_eq!(steps[2]["get"]["root"]["level"], json!("DEBUG"), "{stdout}");
    assert!(
        steps[3]["bad_set"].as_str().unwrap().contains("LOUD"),
        "{stdout}"
    );
    daemon.expect_line(Stream::Stderr, |l| {
        message(l) == "log filter set through the adminer"
    });
    register_unknown(&eventer, 1);
    let line = daemon.expect_line(Stream::Stderr, |l| message(l) == IGNORED);
    assert!(
        line.contains("nobody1"),
        "the debug line is the one after the set: {line}"
    );

    // `gateway-host log-level`: back to info with the engine at debug, then read back.
    let out = run(
        gateway_host().args([
            "log-level",
            "info,gateway_host::engine=trace",
            "--adminer",
            &adminer,
        ]),
        None,
    );
    out.assert_exit(0);
    let out = run(
        gateway_host().args(["log-level", "--adminer", &adminer]),
        None,
    );
    out.assert_exit(0);
    let got: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(got["root"]["level"], json!("INFO"), "{got}");
    assert_eq!(
        got["loggers"]["gateway_host::engine"]["level"],
        json!(5),
        "{got}"
    );
    // A directive that has no dictConfig form is refused by the client, exit 2.
    let out = run(
        gateway_host().args(["log-level", "info,[span]=debug", "--adminer", &adminer]),
        None,
    );
    out.assert_exit(2);
    // No adminer there: exit 1 with the address.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = closed.local_addr().unwrap().to_string();
    drop(closed);
    let out = run(
        gateway_host().args(["log-level", "debug", "--adminer", &nobody]),
        None,
    );
    out.assert_exit(1);
    assert!(out.stderr.contains(&nobody), "{}", out.stderr);

    daemon.signal("TERM");
    assert_eq!(daemon.wait(), Some(0), "{}", daemon.transcript());
}
