//! The metrics endpoint, `/health`, `/ready`, systemd notify and `gateway-host status`
//! (issue 16 items 1, 2 and 5), against the real binary: scrapes over real HTTP parsed
//! by Python's `prometheus_client` parser (the test venv), a real Eventer client
//! sending the devices events, a real Unix datagram socket as systemd's notify socket.
//! Needs the `sim` and `gateway_fixture_faulty` cdylibs (`cargo build --workspace
//! --all-targets`) and the test venv (`scripts/test-env.sh`).
#![allow(clippy::unwrap_used)]

mod cli_support;
mod plugin_support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::{gateway_host, run, Proc, Stream, TempDir};
use gateway_eventer::client::{Client, ClientConfig};
use gateway_model::{event_type_from_str, RegisterEvent};
use plugin_support::PluginDir;
use serde_json::{json, Value};

/// Bound on every wait for the daemon.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A plugin directory with `sim` and the faulty fixture.
fn plugins() -> PluginDir {
    let dir = PluginDir::new();
    dir.add_library("sim", None);
    dir.add_library("gateway_fixture_faulty", None);
    dir
}

fn spawn(conf: &std::path::Path, plugins: &PluginDir) -> Proc {
    Proc::spawn(
        gateway_host()
            .arg("--conf")
            .arg(conf)
            .arg("--plugins-dir")
            .arg(&plugins.path),
    )
}

/// The address from the daemon's `metrics endpoint listening` line (JSON log).
fn metrics_address(daemon: &mut Proc) -> String {
    let line = daemon.expect_line(Stream::Stderr, |l| l.contains("metrics endpoint listening"));
    let record: Value = serde_json::from_str(&line).unwrap();
    record["fields"]["address"].as_str().unwrap().to_owned()
}

/// One HTTP/1.1 exchange of raw bytes; returns what the server sent until it closed.
fn exchange(address: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// `GET path`: (status code, body).
fn get(address: &str, path: &str) -> (u16, String) {
    let answer = exchange(
        address,
        format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let code = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned();
    (code, body)
}

fn get_json(address: &str, path: &str) -> (u16, Value) {
    let (code, body) = get(address, path);
    (
        code,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}")),
    )
}

/// Polls `/status` (bounded) until `done` holds for it; returns it.
fn wait_status(address: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let (_, status) = get_json(address, "/status");
        if done(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "{what}: last status {status:#}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn device<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device"] == name)
        .unwrap_or_else(|| panic!("no device {name} in {status:#}"))
}

/// Samples of one scrape: `name{label="value",...}` (labels sorted) -> value, as
/// Python's `prometheus_client.parser` reads the text.
type Samples = HashMap<String, f64>;

/// Scrapes `/metrics` and parses it with the real parser.
fn scrape(address: &str) -> Samples {
    let (code, text) = get(address, "/metrics");
    assert_eq!(code, 200, "{text}");
    let venv = gateway_test_support::venv_with(&["bin/python"]);
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        out[f"{s.name}{{{labels}}}"] = s.value
json.dump(out, sys.stdout)
"#;
    let mut python = Command::new(venv.join("bin/python"))
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    python
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = python.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the parser refused the text: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn labels(device_type: &str, device: &str) -> String {
    format!(r#"device="{device}",device_type="{device_type}",gateway="gw1""#)
}

fn sample(samples: &Samples, key: &str) -> f64 {
    *samples
        .get(key)
        .unwrap_or_else(|| panic!("no sample {key}; have {:#?}", sorted(samples)))
}

fn sorted(samples: &Samples) -> Vec<(&String, &f64)> {
    let mut all: Vec<_> = samples.iter().collect();
    all.sort_by(|a, b| a.0.cmp(b.0));
    all
}

/// Every metric of issue 16 item 1 is there and moves as the devices work: `sim`
/// registers data and answers a write, one faulty device fails every create and is
/// restarted, one faulty device blocks in `process_event` until its queue of 2
/// overflows. Then `gateway-host status` prints every device and exits 1 (a device
/// failed), and 3 for a daemon that is not there.
#[test]
fn every_metric_is_scraped_parsed_and_moves() {
    let plugins = plugins();
    let dir = TempDir::new("ops-metrics");
    let eventer_port = gateway_test_support::free_port();
    let metrics_port = gateway_test_support::free_port();
    let conf = dir.write(
        "gateway.yaml",
        &format!(
            "name: gw1\n\
             event_server:\n  embedded:\n    store: memory\n    enable_devices: true\n    \
             eventer_server: {{host: 127.0.0.1, port: {eventer_port}}}\n\
             devices:\n\
             \x20 - {{module: sim, name: s1, points: [p0], period: 0.05}}\n\
             \x20 - {{module: gateway_fixture_faulty, name: f, fail: create_error, restart: on-failure}}\n\
             \x20 - {{module: gateway_fixture_faulty, name: q, event_queue_size: 2}}\n\
             metrics: {{port: {metrics_port}}}\n\
             log: {{level: info, format: json}}\n"
        ),
    );
    let mut daemon = spawn(&conf, &plugins);
    let address = metrics_address(&mut daemon);
    assert_eq!(address, format!("127.0.0.1:{metrics_port}"));
    wait_status(&address, "s1 and q running", |s| {
        device(s, "s1")["state"] == "running" && device(s, "q")["state"] == "running"
    });
    let before = scrape(&address);

    // An Eventer client: a write for s1; for q a 1.5 s block, then more events than
    // its queue holds.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = runtime.block_on(async {
        let (client, _notifications) =
            Client::connect(("127.0.0.1", eventer_port), ClientConfig::new("ops-test"))
                .await
                .unwrap();
        let q = |suffix: &str, value: Value| {
            RegisterEvent::json(
                event_type_from_str(&format!("gateway/gw1/fixture_faulty/q/system/{suffix}")),
                value,
            )
        };
        client
            .register_with_response(vec![
                RegisterEvent::json(
                    event_type_from_str("gateway/gw1/sim/s1/system/write/p0"),
                    json!({"value": 42, "id": 1}),
                ),
                q("block", json!({"ms": 1500})),
            ])
            .await
            .unwrap();
        client
            .register_with_response((0..6).map(|i| q("x", json!(i))).collect())
            .await
            .unwrap();
        client
    });
    let status = wait_status(&address, "q failed, f restarted", |s| {
        device(s, "q")["state"] == "failed"
            && device(s, "f")["restarts"].as_u64() >= Some(1)
            && device(s, "s1")["events_in"].as_u64() >= Some(1)
    });
    assert!(
        device(&status, "q")["last_error"]
            .as_str()
            .unwrap()
            .contains("event queue full"),
        "{status:#}"
    );
    let after = scrape(&address);
    eprintln!("{:#?}", sorted(&after));

    let s1 = labels("sim", "s1");
    let f = labels("fixture_faulty", "f");
    let q = labels("fixture_faulty", "q");
    let grew = |key: &str| {
        assert!(
            sample(&after, key) > sample(&before, key),
            "{key}: {} then {}",
            sample(&before, key),
            sample(&after, key)
        );
    };
    // Per device.
    grew(&format!("gateway_device_events_in_total{{{s1}}}"));
    grew(&format!("gateway_device_events_out_total{{{s1}}}"));
    grew(&format!("gateway_device_events_in_total{{{q}}}"));
    grew(&format!("gateway_device_create_failures_total{{{f}}}"));
    grew(&format!("gateway_device_restarts_total{{{f}}}"));
    grew(&format!("gateway_device_dropped_total{{{q}}}"));
    grew(&format!("gateway_device_queue_high_water{{{q}}}"));
    // The events waiting in its queue and in the engine's hand-over, at their most.
    assert!(sample(&after, &format!("gateway_device_queue_high_water{{{q}}}")) >= 2.0);
    sample(&after, &format!("gateway_device_queue_depth{{{q}}}"));
    assert_eq!(
        sample(
            &after,
            &format!(r#"gateway_device_state{{{q},state="failed"}}"#)
        ),
        1.0
    );
    assert_eq!(
        sample(
            &before,
            &format!(r#"gateway_device_state{{{q},state="running"}}"#)
        ),
        1.0
    );
    assert_eq!(
        sample(&after, &format!("gateway_device_enabled{{{s1}}}")),
        1.0
    );
    let since = sample(
        &after,
        &format!("gateway_device_seconds_since_last_event{{{s1}}}"),
    );
    assert!((0.0..5.0).contains(&since), "{since}");
    // The connection.
    let gw = r#"gateway="gw1""#;
    assert_eq!(
        sample(&after, &format!("gateway_event_server_connected{{{gw}}}")),
        1.0
    );
    assert_eq!(
        sample(
            &after,
            &format!("gateway_event_server_reconnects_total{{{gw}}}")
        ),
        0.0
    );
    grew(&format!(
        "gateway_event_server_notified_events_total{{{gw}}}"
    ));
    grew(&format!(
        "gateway_event_server_register_seconds_count{{{gw}}}"
    ));
    grew(&format!(
        r#"gateway_event_server_register_seconds_bucket{{{gw},le="+Inf"}}"#
    ));
    assert!(
        sample(
            &after,
            &format!("gateway_event_server_register_seconds_sum{{{gw}}}")
        ) > 0.0
    );
    // Plugins.
    let api = gateway_plugin_api::abi::API_VERSION;
    for (plugin, device_type) in [("sim", "sim"), ("gateway_fixture_faulty", "fixture_faulty")] {
        let key = after
            .keys()
            .find(|k| {
                k.starts_with("gateway_plugin_info{")
                    && k.contains(&format!(r#"plugin="{plugin}""#))
                    && k.contains(&format!(r#"device_type="{device_type}""#))
                    && k.contains(&format!(r#"api_version="{api}""#))
                    && k.contains("version=")
            })
            .unwrap_or_else(|| panic!("no info of {plugin}: {:#?}", sorted(&after)));
        assert_eq!(after[key], 1.0);
    }
    // The embedded server: the sim data are stored; the gateway and this client are
    // connected.
    grew("gateway_embedded_stored_events{}");
    sample(&after, "gateway_embedded_event_types{}");
    assert!(sample(&after, "gateway_embedded_subscribers{}") >= 2.0);
    // The process.
    assert!(sample(&after, "process_resident_memory_bytes{}") > 1e6);
    assert!(sample(&after, "process_open_fds{}") > 3.0);
    assert!(
        sample(&after, "process_cpu_seconds_total{}")
            >= sample(&before, "process_cpu_seconds_total{}")
    );
    assert!(sample(&after, "process_start_time_seconds{}") > 1.7e9);

    // `status`: a table of every device; exit 1 because q failed.
    let out = run(gateway_host().arg("status").arg("--conf").arg(&conf), None);
    out.assert_exit(1);
    let row = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row {name}:\n{}", out.stdout))
            .to_owned()
    };
    assert!(
        out.stdout.starts_with("gateway gw1: connected"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.lines().nth(1).unwrap().starts_with("DEVICE"));
    assert!(row("sim/s1 ").contains(" running "), "{}", out.stdout);
    let q_row = row("fixture_faulty/q ");
    assert!(q_row.contains(" failed "), "{}", out.stdout);
    assert!(q_row.contains("event queue full"), "{}", out.stdout);
    assert!(
        row("fixture_faulty/f ").contains("fixture: error from create"),
        "{}",
        out.stdout
    );
    // Nobody there: exit 3, naming the address.
    let nobody = format!("127.0.0.1:{}", gateway_test_support::free_port());
    let out = run(
        gateway_host()
            .arg("status")
            .arg("--metrics")
            .arg(format!("http://{nobody}")),
        None,
    );
    out.assert_exit(3);
    assert!(out.stderr.contains(&nobody), "{}", out.stderr);

    runtime.block_on(client.close());
    daemon.signal("TERM");
    assert_eq!(daemon.wait(), Some(0), "{}", daemon.transcript());
}

/// A systemd notify socket of the test's own: a Unix datagram socket in a temp dir.
struct NotifySocket {
    socket: std::os::unix::net::UnixDatagram,
    path: std::path::PathBuf,
    /// Every message received so far.
    seen: Vec<String>,
}

impl NotifySocket {
    fn new(dir: &TempDir) -> Self {
        let path = dir.path().join("notify.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(TIMEOUT)).unwrap();
        Self {
            socket,
            path,
            seen: Vec::new(),
        }
    }

    /// Waits (bounded) for a message with the line `line`; returns the message.
    fn expect(&mut self, line: &str) -> String {
        let mut buffer = vec![0; 4096];
        loop {
            let n = self
                .socket
                .recv(&mut buffer)
                .unwrap_or_else(|err| panic!("no {line} ({err}); received {:#?}", self.seen));
            let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
            self.seen.push(message.clone());
            if message.lines().any(|l| l == line) {
                return message;
            }
        }
    }
}

/// `/health` is 200 from the start; `/ready` is 503 (naming the device) while the
/// device is being created and 200 once it runs; READY=1 comes only then, with a
/// STATUS= line; WATCHDOG=1 comes every half WATCHDOG_USEC; a malformed request gets
/// 400, an oversized one 431, a POST 405, a connection past `max_connections` is
/// closed, and the daemon goes on serving; `status` exits 0; SIGTERM sends
/// STOPPING=1.
#[test]
fn health_ready_notify_and_bad_requests() {
    let plugins = plugins();
    let dir = TempDir::new("ops-ready");
    let conf = dir.write(
        "gateway.yaml",
        "name: gw1\n\
         event_server:\n  embedded:\n    store: memory\n    enable_devices: true\n\
         devices:\n\
         \x20 - {module: gateway_fixture_faulty, name: c, fail: block_create, block_ms: 1500}\n\
         metrics: {port: 0, max_connections: 2, max_request_bytes: 8192}\n\
         log: {level: info, format: json}\n",
    );
    let mut notify = NotifySocket::new(&dir);
    let mut daemon = Proc::spawn(
        gateway_host()
            .arg("--conf")
            .arg(&conf)
            .arg("--plugins-dir")
            .arg(&plugins.path)
            .env("NOTIFY_SOCKET", &notify.path)
            .env("WATCHDOG_USEC", "200000")
            .env_remove("WATCHDOG_PID"),
    );
    let address = metrics_address(&mut daemon);
    daemon.expect_line(Stream::Stderr, |l| l.contains("fixture device creating"));
    let (code, health) = get_json(&address, "/health");
    assert_eq!((code, &health["status"]), (200, &json!("alive")));
    let (code, ready) = get_json(&address, "/ready");
    assert_eq!(code, 503, "{ready:#}");
    assert_eq!(ready["ready"], false);
    assert_eq!(ready["not_running"], json!(["fixture_faulty/c (creating)"]));

    let message = notify.expect("READY=1");
    assert!(
        message.contains("STATUS=connected; 1 of 1 device(s) running"),
        "{message}"
    );
    assert!(
        notify.seen[..notify.seen.len() - 1]
            .iter()
            .all(|m| !m.contains("READY=1")),
        "{:#?}",
        notify.seen
    );
    let (code, ready) = get_json(&address, "/ready");
    assert_eq!(code, 200, "{ready:#}");
    assert_eq!(ready["running"], 1);
    let first = Instant::now();
    notify.expect("WATCHDOG=1");
    notify.expect("WATCHDOG=1");
    // Two pings of a 100 ms period, well under the 200 ms interval each.
    assert!(
        first.elapsed() < Duration::from_secs(2),
        "{:?}",
        first.elapsed()
    );

    // Malformed, oversized, one connection too many: each refused alone.
    let answer = exchange(&address, b"NOT HTTP AT ALL\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(10_000)
    );
    let answer = exchange(&address, huge.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    // Two connections held open, each served: a request on it is answered, and it
    // stays. The server frees the slots of the connections above only after their
    // tasks end, so a connection may still be refused at first: try again until two
    // are held (bounded).
    let deadline = Instant::now() + TIMEOUT;
    let mut idle: Vec<TcpStream> = Vec::new();
    while idle.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "no two connections served within {TIMEOUT:?}"
        );
        let mut stream = TcpStream::connect(&address).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buffer = [0; 12];
        match stream.read_exact(&mut buffer) {
            Ok(()) => {
                assert_eq!(&buffer, b"HTTP/1.1 200");
                idle.push(stream);
            }
            Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(err) => panic!("{err}"),
        }
    }
    let answer = exchange(&address, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(answer, "", "a third connection is closed unanswered");
    drop(idle);
    let deadline = Instant::now() + TIMEOUT;
    // The slots come back once the server has seen the two close.
    loop {
        let answer = exchange(
            &address,
            b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "no slot came back: {answer:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, body) = get(&address, "/nope");
    assert_eq!(code, 404, "{body}");
    let answer = exchange(
        &address,
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer:?}");

    let out = run(
        gateway_host()
            .arg("status")
            .arg("--metrics")
            .arg(format!("http://{address}/")),
        None,
    );
    out.assert_exit(0);
    assert!(
        out.stdout.contains("fixture_faulty/c  running"),
        "{}",
        out.stdout
    );

    daemon.signal("TERM");
    notify.expect("STOPPING=1");
    assert_eq!(daemon.wait(), Some(0), "{}", daemon.transcript());
}

/// A metrics port that is taken: exit 2 at start, naming the address; `status`
/// against a configuration without `metrics`: exit 2.
#[test]
fn a_metrics_port_in_use_exits_2_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = TempDir::new("ops-port");
    let conf = dir.write(
        "gateway.yaml",
        &format!(
            "name: gw1\nevent_server:\n  embedded: {{store: memory}}\ndevices: []\n\
             metrics: {{host: 127.0.0.1, port: {port}}}\n"
        ),
    );
    let out = run(gateway_host().arg("--conf").arg(&conf), None);
    out.assert_exit(2);
    assert!(
        out.stderr.contains(&format!(
            "metrics endpoint cannot listen on 127.0.0.1:{port}"
        )),
        "{}",
        out.stderr
    );
    // `status` with a configuration that has no metrics section: exit 2, saying so.
    let bare = dir.write(
        "bare.yaml",
        "name: gw1\nevent_server:\n  embedded: {store: memory}\ndevices: []\n",
    );
    let out = run(gateway_host().arg("status").arg("--conf").arg(&bare), None);
    out.assert_exit(2);
    assert!(out.stderr.contains("no metrics section"), "{}", out.stderr);
}

/// The connection metrics against the real hat-event-server: connected while it
/// runs, 0 (and `/ready` 503) once it is killed, 1 again with one reconnect counted
/// after it is restarted on the same port; register round trips are measured.
#[test]
fn connection_metrics_follow_a_real_hat_event_server() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut hat = runtime.block_on(gateway_test_support::hat::HatEventServer::start());
    let plugins = plugins();
    let dir = TempDir::new("ops-remote");
    let conf = dir.write(
        "gateway.yaml",
        &format!(
            "name: gw1\n\
             event_server:\n  eventer_server: {{host: 127.0.0.1, port: {}}}\n\
             devices:\n  - {{module: sim, name: s1, points: [p0]}}\n\
             metrics: {{port: 0}}\n\
             log: {{level: info, format: json}}\n",
            hat.addr.port()
        ),
    );
    let mut daemon = spawn(&conf, &plugins);
    let address = metrics_address(&mut daemon);
    let gw = r#"gateway="gw1""#;
    let connected = format!("gateway_event_server_connected{{{gw}}}");
    let reconnects = format!("gateway_event_server_reconnects_total{{{gw}}}");
    let round_trips = format!("gateway_event_server_register_seconds_count{{{gw}}}");
    wait_status(&address, "connected, s1 disabled", |s| {
        s["connected"] == true && device(s, "s1")["state"] == "disabled"
    });
    let first = scrape(&address);
    assert_eq!(sample(&first, &connected), 1.0);
    assert_eq!(sample(&first, &reconnects), 0.0);
    // The seed running=false of s1 was answered by the server.
    assert!(sample(&first, &round_trips) >= 1.0);
    // A disabled device does not keep the gateway from being ready.
    assert_eq!(get(&address, "/ready").0, 200);

    hat.kill();
    wait_status(&address, "disconnected", |s| s["connected"] == false);
    let (code, ready) = get_json(&address, "/ready");
    assert_eq!(
        (code, &ready["connected"]),
        (503, &json!(false)),
        "{ready:#}"
    );
    assert_eq!(sample(&scrape(&address), &connected), 0.0);

    runtime.block_on(hat.restart());
    let status = wait_status(&address, "reconnected", |s| s["connected"] == true);
    assert_eq!(status["reconnects"], 1, "{status:#}");
    let last = scrape(&address);
    assert_eq!(sample(&last, &connected), 1.0);
    assert_eq!(sample(&last, &reconnects), 1.0);
    assert!(sample(&last, &round_trips) > sample(&first, &round_trips));

    daemon.signal("TERM");
    assert_eq!(daemon.wait(), Some(0), "{}", daemon.transcript());
}
