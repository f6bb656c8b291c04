//! Reload without restart, end to end through the real binary: the daemon with the
//! embedded event server and the real `sim` plugin, watched by `gateway-host events
//! watch`. One daemon goes through a refused invalid configuration, a refused change
//! that needs a restart, and a `gateway-host reload` that adds, removes, changes and
//! keeps devices at once.
#![allow(clippy::unwrap_used)]

mod cli_support;

use std::collections::BTreeMap;

use cli_support::{gateway_host, run, sim_plugin_dir, Proc, Stream, TempDir};
use serde_json::{json, Value};

/// The configuration: `keep` counts every 50 ms; the others are quiet.
fn config(name: &str, devices: &[Value]) -> String {
    json!({
        "name": name,
        "event_server": {"embedded": {
            "store": "memory",
            "eventer_server": {"host": "127.0.0.1", "port": 0},
            "enable_devices": true
        }},
        "devices": devices,
        "log": {"level": "info", "format": "json"}
    })
    .to_string()
}

fn keep() -> Value {
    json!({"module": "sim", "name": "keep", "points": ["p0"], "period": 0.05})
}

/// The address the embedded server listens on, from the daemon's JSON log line.
fn listen_addr(line: &str) -> String {
    let value: Value = serde_json::from_str(line).unwrap();
    let addr = value["fields"]["addr"].as_str().unwrap();
    addr.trim_start_matches("Some(")
        .trim_end_matches(')')
        .to_owned()
}

fn message(line: &str) -> String {
    serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|v| v["fields"]["message"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn type_of(event: &Value) -> String {
    event["type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("/")
}

/// Bound on every wait for events.
const WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// What the watcher saw: `running` values per device in order, and `keep`'s counter.
#[derive(Default)]
struct Seen {
    running: BTreeMap<String, Vec<bool>>,
    keep_values: Vec<i64>,
}

impl Seen {
    /// Reads watcher lines until `done` holds; fails after [`WAIT`] (the counter
    /// keeps lines coming, so the line reader's own bound does not end a wait).
    fn until(&mut self, watch: &mut Proc, done: impl Fn(&Seen) -> bool) {
        let deadline = std::time::Instant::now() + WAIT;
        while !done(self) {
            assert!(
                std::time::Instant::now() < deadline,
                "not seen within {WAIT:?}: running {:?}, keep's last value {} ({} seen)",
                self.running,
                self.last_keep(),
                self.keep_values.len()
            );
            let line = watch.expect_line(Stream::Stdout, |_| true);
            let event: Value = serde_json::from_str(&line).unwrap();
            let ty = type_of(&event);
            let parts: Vec<&str> = ty.split('/').collect();
            if parts.len() == 6 && parts[4] == "gateway" && parts[5] == "running" {
                let value = event["payload"]["json"].as_bool().unwrap();
                self.running
                    .entry(parts[3].to_owned())
                    .or_default()
                    .push(value);
            } else if ty == "gateway/gw/sim/keep/gateway/data/p0" {
                self.keep_values
                    .push(event["payload"]["json"]["value"].as_i64().unwrap());
            }
        }
    }

    fn running(&self, device: &str) -> Vec<bool> {
        self.running.get(device).cloned().unwrap_or_default()
    }

    fn last_keep(&self) -> i64 {
        self.keep_values.last().copied().unwrap_or(-1)
    }
}

#[test]
fn reload_adds_removes_changes_and_keeps_devices_and_refuses_bad_configurations() {
    let plugins = sim_plugin_dir();
    let dir = TempDir::new("ops-reload");
    let state = dir.path().join("state");
    let quiet =
        |name: &str, points: &[&str]| json!({"module": "sim", "name": name, "points": points});
    let conf = dir.write(
        "gateway.json",
        &config(
            "gw",
            &[keep(), quiet("change", &["p0"]), quiet("gone", &["p0"])],
        ),
    );
    let mut daemon = Proc::spawn(
        gateway_host()
            .env("XDG_STATE_HOME", &state)
            .arg("--conf")
            .arg(&conf)
            .arg("--plugins-dir")
            .arg(&plugins),
    );
    let line = daemon.expect_line(Stream::Stderr, |l| {
        l.contains("embedded event server listening")
    });
    let addr = listen_addr(&line);
    let mut watch = Proc::spawn(gateway_host().args([
        "events",
        "--server",
        &addr,
        "watch",
        "gateway/gw/sim/*",
    ]));
    watch.expect_line(Stream::Stderr, |l| l.starts_with("watching "));
    // The watcher may have started after the first `running` events: from here on,
    // every running event and every counter value is seen.
    let mut seen = Seen::default();
    seen.until(&mut watch, |s| s.keep_values.len() >= 3);
    let before: BTreeMap<String, Vec<bool>> = seen.running.clone();
    seen.running.clear();

    // 1. An invalid configuration: refused with the errors `check` prints.
    let bad = dir.write(
        "bad.json",
        &config(
            "gw",
            &[
                keep(),
                json!({"module": "sim", "name": "change", "points": 5}),
            ],
        ),
    );
    let check = run(
        gateway_host()
            .args(["check", "--plugins-dir"])
            .arg(&plugins)
            .arg("--conf")
            .arg(&bad),
        None,
    );
    check.assert_exit(2);
    std::fs::copy(&bad, &conf).unwrap();
    daemon.signal("HUP");
    let refused = daemon.expect_line(Stream::Stderr, |l| message(l).contains("reload refused"));
    let refused = message(&refused);
    let check_text = check
        .stderr
        .replace(&*bad.to_string_lossy(), &conf.to_string_lossy());
    for line in check_text.lines().filter(|l| !l.trim().is_empty()) {
        assert!(refused.contains(line), "{line:?} not in {refused:?}");
    }
    // `gateway-host reload` checks first: with errors it signals nothing, exit 2.
    let out = run(
        gateway_host()
            .env("XDG_STATE_HOME", &state)
            .args(["reload", "--plugins-dir"])
            .arg(&plugins)
            .arg("--conf")
            .arg(&conf),
        None,
    );
    out.assert_exit(2);

    // 2. A new gateway name cannot be applied live.
    std::fs::write(&conf, config("other", &[keep()])).unwrap();
    daemon.signal("HUP");
    let refused = daemon.expect_line(Stream::Stderr, |l| message(l).contains("reload refused"));
    assert!(
        message(&refused).contains("name changed; a restart is needed"),
        "{refused}"
    );

    // 3. Add `new`, remove `gone`, change `change` (a new point), keep `keep`; sent by
    // `gateway-host reload` through the pid file.
    std::fs::write(
        &conf,
        config(
            "gw",
            &[
                quiet("new", &["p0"]),
                quiet("change", &["p0", "p1"]),
                keep(),
            ],
        ),
    )
    .unwrap();
    let out = run(
        gateway_host()
            .env("XDG_STATE_HOME", &state)
            .args(["reload", "--plugins-dir"])
            .arg(&plugins)
            .arg("--conf")
            .arg(&conf),
        None,
    );
    out.assert_exit(0);
    assert!(out.stdout.contains("reload requested"), "{}", out.stdout);
    let applied = daemon.expect_line(Stream::Stderr, |l| message(l) == "reload applied");
    let fields: Value = serde_json::from_str::<Value>(&applied).unwrap()["fields"].clone();
    assert_eq!(
        (
            &fields["added"],
            &fields["removed"],
            &fields["changed"],
            &fields["kept"]
        ),
        (&json!(1), &json!(1), &json!(1), &json!(1)),
        "{applied}"
    );
    seen.until(&mut watch, |s| {
        s.running("new") == [false, true]
            && s.running("change") == [false, false, true]
            && s.running("gone") == [false]
    });
    // Well after the reload: keep still counts, and nothing else happened.
    let at = seen.last_keep();
    seen.until(&mut watch, |s| s.last_keep() >= at + 5);
    assert_eq!(
        seen.running,
        BTreeMap::from([
            ("change".to_owned(), vec![false, false, true]),
            ("gone".to_owned(), vec![false]),
            ("new".to_owned(), vec![false, true]),
        ]),
        "only the added, changed and removed devices changed state (refused reloads \
         changed nothing; before: {before:?})"
    );
    // `keep` never paused: its counter went up by one every time, never restarted.
    for pair in seen.keep_values.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "keep's counter: {:?}",
            seen.keep_values
        );
    }

    daemon.signal("TERM");
    assert_eq!(daemon.wait(), Some(0), "{}", daemon.transcript());
    assert!(
        !state.join("hat/gateway/gw.pid").exists(),
        "the pid file is removed at exit"
    );
}

/// The configuration of [`config`] with `event_types: hat-gateway-0.6`.
fn hat_config(devices: &[Value]) -> String {
    let mut doc: Value = serde_json::from_str(&config("gw", devices)).unwrap();
    doc["event_types"] = json!("hat-gateway-0.6");
    doc.to_string()
}

/// `running` values per device from watcher lines of the hat layout
/// (`gateway/sim/<device>/gateway/running`), until `done` holds.
fn hat_running_until(
    watch: &mut Proc,
    running: &mut BTreeMap<String, Vec<bool>>,
    done: impl Fn(&BTreeMap<String, Vec<bool>>) -> bool,
) {
    let deadline = std::time::Instant::now() + WAIT;
    while !done(running) {
        assert!(
            std::time::Instant::now() < deadline,
            "not seen within {WAIT:?}: running {running:?}"
        );
        let line = watch.expect_line(Stream::Stdout, |_| true);
        let event: Value = serde_json::from_str(&line).unwrap();
        let ty = type_of(&event);
        let parts: Vec<&str> = ty.split('/').collect();
        if parts.len() == 5 && parts[3] == "gateway" && parts[4] == "running" {
            let value = event["payload"]["json"].as_bool().unwrap();
            running.entry(parts[2].to_owned()).or_default().push(value);
        }
    }
}

#[test]
fn hat_layout_reload_changes_a_device_and_refuses_an_added_one() {
    let plugins = sim_plugin_dir();
    let dir = TempDir::new("ops-reload-hat");
    let state = dir.path().join("state");
    let sim =
        |name: &str, points: &[&str]| json!({"module": "sim", "name": name, "points": points});
    let conf = dir.write(
        "gateway.json",
        &hat_config(&[sim("change", &["p0"]), sim("keep", &["p0"])]),
    );
    let mut daemon = Proc::spawn(
        gateway_host()
            .env("XDG_STATE_HOME", &state)
            .arg("--conf")
            .arg(&conf)
            .arg("--plugins-dir")
            .arg(&plugins),
    );
    let line = daemon.expect_line(Stream::Stderr, |l| {
        l.contains("embedded event server listening")
    });
    let addr = listen_addr(&line);
    let mut watch =
        Proc::spawn(gateway_host().args(["events", "--server", &addr, "watch", "gateway/sim/*"]));
    watch.expect_line(Stream::Stderr, |l| l.starts_with("watching "));
    // The hat layout registers no initial `running=false`, and the watcher may have
    // missed the first `true`s: wait until the store has both.
    let mut queries = 0;
    loop {
        let out = run(
            gateway_host().args([
                "events",
                "--server",
                &addr,
                "query",
                "latest",
                "gateway/sim/?/gateway/running",
            ]),
            None,
        );
        out.assert_exit(0);
        let up = out
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["payload"]["json"] == json!(true))
            .count();
        if up == 2 {
            break;
        }
        queries += 1;
        assert!(queries < 300, "the devices never all ran: {}", out.stdout);
    }

    // 1. An added device needs a restart under the hat layout (its subscription is
    // fixed per connection): refused, nothing changes.
    std::fs::write(
        &conf,
        hat_config(&[
            sim("change", &["p0"]),
            sim("keep", &["p0"]),
            sim("new", &["p0"]),
        ]),
    )
    .unwrap();
    daemon.signal("HUP");
    let refused = daemon.expect_line(Stream::Stderr, |l| message(l).contains("reload refused"));
    assert!(
        message(&refused).contains("hat-gateway-0.6") && message(&refused).contains("restart"),
        "{refused}"
    );

    // 2. A changed device is closed and created again under its hat prefix; the kept
    // one is left alone.
    std::fs::write(
        &conf,
        hat_config(&[sim("change", &["p0", "p1"]), sim("keep", &["p0"])]),
    )
    .unwrap();
    daemon.signal("HUP");
    let applied = daemon.expect_line(Stream::Stderr, |l| message(l) == "reload applied");
    let fields: Value = serde_json::from_str::<Value>(&applied).unwrap()["fields"].clone();
    assert_eq!(
        (
            &fields["added"],
            &fields["removed"],
            &fields["changed"],
            &fields["kept"]
        ),
        (&json!(0), &json!(0), &json!(1), &json!(1)),
        "{applied}"
    );
    let mut running = BTreeMap::new();
    hat_running_until(&mut watch, &mut running, |r| {
        r.get("change").is_some_and(|v| v.ends_with(&[false, true]))
    });
    // The watcher may have seen the first `true`s; after them, only `change` went
    // down and up again: `keep` was never closed (the refused reload closed nothing).
    let strip_first =
        |v: &Vec<bool>| -> Vec<bool> { v.iter().copied().skip_while(|&up| up).collect() };
    assert_eq!(
        strip_first(&running["change"]),
        [false, true],
        "{running:?}"
    );
    assert!(
        running.get("keep").is_none_or(|v| v.iter().all(|&up| up)),
        "keep was closed: {running:?}"
    );
    assert!(!running.contains_key("new"), "{running:?}");

    daemon.signal("TERM");
    assert_eq!(daemon.wait(), Some(0), "{}", daemon.transcript());
}
