//! Monitor mode (issue 15) with real parts: hat-monitor 0.8.23, two hat-event-server
//! 0.9.44 in group `event` and two `gateway-host` binaries in group `gateway` (BLESS_ONE
//! for both). Only the blessed gateway runs its devices; killing the active event
//! server moves the gateway to the other one; killing the active gateway hands the
//! devices to the standby; the monitor's MsgClose, its death, or no monitor at all end
//! the gateway with a clear log line and exit status 1. Needs the test venv
//! (scripts/test-env.sh) and the sim plugin built in the same target dir.
#![allow(clippy::unwrap_used)]

mod cli_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cli_support::{gateway_host, sim_plugin_dir, Proc, Stream, TempDir};
use gateway_eventer::client::{Client, ClientConfig, Notification};
use gateway_model::{Event, RegisterEvent};
use gateway_monitor::client::{ComponentEvent, MonitorComponent, MonitorConfig};
use gateway_monitor::ComponentInfo;
use gateway_test_support::free_port;
use gateway_test_support::monitor::{HatMonitor, MonitoredEventServer, MonitoredHatGateway};
use serde_json::json;
use tokio::sync::mpsc;

/// Bound on every wait for a state, an event or a log line.
const WAIT: Duration = Duration::from_secs(30);

/// A gateway-host in monitor mode with one sim device `d`.
fn spawn_gateway(dir: &TempDir, name: &str, monitor: SocketAddr) -> Proc {
    let conf = dir.write(
        &format!("{name}.yaml"),
        &format!(
            "name: {name}\n\
             event_server:\n  monitor_component:\n    host: 127.0.0.1\n    port: {}\n    \
             gateway_group: gateway\n    event_server_group: event\n\
             devices:\n  - {{module: sim, name: d}}\n\
             log: {{level: info}}\n",
            monitor.port()
        ),
    );
    Proc::spawn(
        gateway_host()
            .arg("--conf")
            .arg(&conf)
            .arg("--plugins-dir")
            .arg(sim_plugin_dir()),
    )
}

fn enable(gateway: &str) -> RegisterEvent {
    RegisterEvent::json(
        ["gateway", gateway, "sim", "d", "system", "enable"]
            .map(String::from)
            .to_vec(),
        json!(true),
    )
}

/// An Eventer client of one event server that collects `gateway/*` events (any
/// status: a standby server notifies what it syncs from the active one).
struct Observer {
    client: Client,
    rx: mpsc::Receiver<Notification>,
    events: Vec<Event>,
}

impl Observer {
    async fn connect(addr: SocketAddr) -> Observer {
        let mut config = ClientConfig::new("test/observer");
        config.subscriptions = vec![gateway_model::event_type_from_str("gateway/*")];
        let (client, rx) = Client::connect(addr, config).await.unwrap();
        Observer {
            client,
            rx,
            events: Vec::new(),
        }
    }

    /// `running` values registered on server `server_id` by `gateway`'s device.
    fn running(&self, gateway: &str, server_id: i64) -> Vec<bool> {
        self.running_of(
            &["gateway", gateway, "sim", "d", "gateway", "running"],
            server_id,
            0,
        )
    }

    /// Payloads of the boolean events of type `event_type` registered on `server_id`,
    /// among the events received from the `from`-th on.
    fn running_of(&self, event_type: &[&str], server_id: i64, from: usize) -> Vec<bool> {
        self.events[from.min(self.events.len())..]
            .iter()
            .filter(|e| e.id.server == server_id && e.event_type == event_type)
            .filter_map(|e| e.payload.as_ref()?.json_value()?.as_bool())
            .collect()
    }

    /// Waits until a `true` of type `event_type` on `server_id` arrives among the events
    /// from the `from`-th on; false when it did not within [`WAIT`].
    async fn wait_true(&mut self, event_type: &[&str], server_id: i64, from: usize) -> bool {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.running_of(event_type, server_id, from).contains(&true) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(Notification::Events(events))) => self.events.extend(events),
                Ok(Some(Notification::Status(_))) => {}
                Ok(None) => panic!("observer disconnected waiting for {event_type:?}"),
                Err(_) => return false,
            }
        }
        true
    }

    /// Waits until `gateway`'s device registered `running=true` on `server_id`; false
    /// when it did not within [`WAIT`].
    async fn wait_running(&mut self, gateway: &str, server_id: i64) -> bool {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.running(gateway, server_id).contains(&true) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(Notification::Events(events))) => self.events.extend(events),
                Ok(Some(Notification::Status(_))) => {}
                Ok(None) => panic!("observer disconnected waiting for {gateway} running"),
                Err(_) => {
                    eprintln!("{gateway} not running on server {server_id} within {WAIT:?}; events: {:#?}", self.events);
                    return false;
                }
            }
        }
        true
    }

    /// Waits until the server says it is operational: a server blessed in the monitor's
    /// list refuses registers until it has taken the blessing itself.
    async fn wait_operational(&mut self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.client.status() != gateway_model::Status::Operational {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(Notification::Events(events))) => self.events.extend(events),
                Ok(Some(Notification::Status(_))) => {}
                Ok(None) => panic!("observer disconnected waiting for operational"),
                Err(_) => panic!("server not operational within {WAIT:?}"),
            }
        }
    }

    /// Waits until the `enable` events of `gateways` are on this server (registered
    /// here or synced from the active server).
    async fn wait_enables(&mut self, gateways: &[&str]) {
        let has = |events: &[Event], g: &str| {
            events
                .iter()
                .any(|e| e.event_type == ["gateway", g, "sim", "d", "system", "enable"])
        };
        let deadline = tokio::time::Instant::now() + WAIT;
        while !gateways.iter().all(|g| has(&self.events, g)) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(Notification::Events(events))) => self.events.extend(events),
                Ok(Some(Notification::Status(_))) => {}
                Ok(None) => panic!("observer disconnected waiting for enable events"),
                Err(_) => panic!("enable events not synced within {WAIT:?}"),
            }
        }
    }
}

/// A component in its own group, never ready: watches the monitor's component list.
struct Watcher(MonitorComponent);

impl Watcher {
    async fn connect(monitor: SocketAddr) -> Watcher {
        let c =
            MonitorComponent::connect(monitor, "test", "watcher", "null", MonitorConfig::default())
                .await
                .unwrap();
        Watcher(c)
    }

    /// Waits until `pred` holds for the component list; returns what it returns.
    async fn wait<T>(&mut self, what: &str, pred: impl Fn(&[ComponentInfo]) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(t) = pred(self.0.component().components()) {
                return t;
            }
            match tokio::time::timeout_at(deadline, self.0.next()).await {
                Ok(Ok(ComponentEvent::StateChanged)) => {}
                Ok(other) => panic!("watcher: {other:?} waiting for {what}"),
                Err(_) => panic!(
                    "{what} not within {WAIT:?}; components: {:#?}",
                    self.0.component().components()
                ),
            }
        }
    }

    /// The active member of `group` (its name), once there is one.
    async fn active(&mut self, group: &str) -> String {
        self.wait(&format!("an active member of {group}"), |c| {
            let active: Vec<_> = c
                .iter()
                .filter(|i| i.group.as_deref() == Some(group) && i.is_active())
                .collect();
            assert!(active.len() <= 1, "two active in {group}: {active:#?}");
            active.first().and_then(|i| i.name.clone())
        })
        .await
    }
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redundant_topology_fails_over_servers_and_gateways() {
    let mut monitor =
        HatMonitor::start(json!({"event": "BLESS_ONE", "gateway": "BLESS_ONE"})).await;
    let mut watcher = Watcher::connect(monitor.addr).await;
    let (es1, es2) = tokio::join!(
        MonitoredEventServer::start(monitor.addr, "event", "event1", 1),
        MonitoredEventServer::start(monitor.addr, "event", "event2", 2),
    );
    let mut servers = [Some(es1), Some(es2)];
    let active_es = watcher.active("event").await;
    let (active_i, standby_i) = if active_es == "event1" {
        (0, 1)
    } else {
        (1, 0)
    };
    let active_id = servers[active_i].as_ref().unwrap().server_id;
    let standby_id = servers[standby_i].as_ref().unwrap().server_id;
    let mut on_active = Observer::connect(servers[active_i].as_ref().unwrap().addr).await;
    let mut on_standby = Observer::connect(servers[standby_i].as_ref().unwrap().addr).await;
    on_active.wait_operational().await;
    let stored = on_active
        .client
        .register_with_response(vec![enable("gw_a"), enable("gw_b")])
        .await
        .unwrap();
    assert!(
        stored.is_some(),
        "the active server refused the enable events"
    );

    let dir = TempDir::new("monitor-redundancy");
    let mut gateways = [
        Some(spawn_gateway(&dir, "gw_a", monitor.addr)),
        Some(spawn_gateway(&dir, "gw_b", monitor.addr)),
    ];
    let blessed = watcher.active("gateway").await;
    let (blessed_i, other_i) = if blessed == "gw_a" { (0, 1) } else { (1, 0) };
    let other = if blessed_i == 0 { "gw_b" } else { "gw_a" };
    let transcripts = |gateways: &[Option<Proc>; 2]| {
        gateways
            .iter()
            .flatten()
            .map(Proc::transcript)
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    assert!(
        on_active.wait_running(&blessed, active_id).await,
        "{}",
        transcripts(&gateways)
    );
    // The standby is connected and ready (so it had every chance to run) ...
    watcher
        .wait("the standby gateway ready", |c| {
            c.iter()
                .any(|i| i.name.as_deref() == Some(other) && i.blessing_res.ready)
                .then_some(())
        })
        .await;
    let standby_gw = gateways[other_i].as_mut().unwrap();
    blocking(|| standby_gw.expect_line(Stream::Stderr, |l| l.contains("standby until blessed")));
    // ... and runs nothing.
    assert!(on_active.running(other, active_id).is_empty());

    // The standby server has synced the enable events, then the active one is killed:
    // the gateway follows to the other one.
    on_standby.wait_enables(&["gw_a", "gw_b"]).await;
    let t0 = Instant::now();
    servers[active_i].take().unwrap().process.kill();
    assert!(
        on_standby.wait_running(&blessed, standby_id).await,
        "{}",
        transcripts(&gateways)
    );
    let server_failover = t0.elapsed();
    eprintln!("event server failover: devices running on the new server after {server_failover:?}");
    assert!(on_standby.running(other, standby_id).is_empty());

    // Kill the active gateway: the standby takes over.
    let t1 = Instant::now();
    gateways[blessed_i].as_ref().unwrap().signal("KILL");
    assert!(
        on_standby.wait_running(other, standby_id).await,
        "{}",
        transcripts(&gateways)
    );
    let gateway_failover = t1.elapsed();
    eprintln!("gateway failover: standby's devices running after {gateway_failover:?}");

    // The monitor stops (MsgClose): the gateway exits non-zero, saying why.
    monitor.process.terminate().await;
    let survivor = gateways[other_i].as_mut().unwrap();
    let line = blocking(|| {
        survivor.expect_line(Stream::Stderr, |l| l.contains("monitor connection ended"))
    });
    assert!(line.contains("MsgClose"), "{line}");
    assert_eq!(
        blocking(|| survivor.wait()),
        Some(1),
        "{}",
        survivor.transcript()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_monitor_or_no_monitor_ends_the_gateway_non_zero() {
    let mut monitor = HatMonitor::start(json!({})).await;
    let dir = TempDir::new("monitor-killed");
    let mut gw = spawn_gateway(&dir, "gw_a", monitor.addr);
    blocking(|| {
        gw.expect_line(Stream::Stderr, |l| {
            l.contains("no active event server in the monitor group")
        })
    });
    monitor.process.kill();
    let line =
        blocking(|| gw.expect_line(Stream::Stderr, |l| l.contains("monitor connection ended")));
    assert!(line.contains("monitor connection lost"), "{line}");
    assert_eq!(blocking(|| gw.wait()), Some(1), "{}", gw.transcript());

    // Nothing listening on the monitor port at all.
    let mut gw = spawn_gateway(&dir, "gw_b", monitor.addr);
    let line = blocking(|| {
        gw.expect_line(Stream::Stderr, |l| {
            l.contains("cannot connect to the monitor server")
        })
    });
    assert!(line.contains("exiting"), "{line}");
    assert_eq!(blocking(|| gw.wait()), Some(1), "{}", gw.transcript());
}

/// One implementation of a gateway in the mixed group: hat-gateway 0.6.48 (with its
/// Modbus TCP master `m`, no remote devices, its peer address closed: the device runs
/// and keeps reconnecting) or gateway-host (with a `sim` device).
enum Member {
    Hat(MonitoredHatGateway),
    Host(Proc),
}

/// The group member called `name`, started.
async fn start_member(name: &str, dir: &TempDir, monitor: SocketAddr) -> Member {
    if name == "gw_py" {
        Member::Hat(
            MonitoredHatGateway::start(
                monitor,
                name,
                "gateway",
                "event",
                json!([{
                    "module": "hat.gateway.devices.modbus.master",
                    "name": "m",
                    "connection": {
                        "modbus_type": "TCP",
                        "transport": {"type": "TCP", "host": "127.0.0.1", "port": free_port()},
                        "connect_timeout": 1, "connect_delay": 1, "request_timeout": 1,
                        "request_delay": 0, "request_retry_immediate_count": 0,
                        "request_retry_delayed_count": 0, "request_retry_delay": 1
                    },
                    "remote_devices": []
                }]),
            )
            .await,
        )
    } else {
        Member::Host(spawn_gateway(dir, name, monitor))
    }
}

impl Member {
    fn kill(self) {
        match self {
            Member::Hat(mut gw) => gw.process.kill(),
            Member::Host(p) => p.signal("KILL"),
        }
    }

    fn transcript(&self) -> String {
        match self {
            Member::Hat(gw) => gw.process.log(),
            Member::Host(p) => p.transcript(),
        }
    }
}

/// The `running` event type of each member's device: hat-gateway's layout has no
/// gateway name in it.
fn running_type(name: &str) -> Vec<&str> {
    if name == "gw_py" {
        vec!["gateway", "modbus_master", "m", "gateway", "running"]
    } else {
        vec!["gateway", name, "sim", "d", "gateway", "running"]
    }
}

/// A hat-gateway 0.6.48 and a gateway-host in one monitor group (BLESS_ONE): exactly one
/// of them is active and runs its device while the other stays ready and runs nothing;
/// killing the active one hands the blessing to the other, in both directions (the
/// blessing is sticky, so the killed one comes back as the standby and the second kill
/// hands it back). Our monitor client and hat's take part in one election.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hat_gateway_and_gateway_host_share_one_election() {
    let monitor = HatMonitor::start(json!({"event": "BLESS_ONE", "gateway": "BLESS_ONE"})).await;
    let mut watcher = Watcher::connect(monitor.addr).await;
    let es = MonitoredEventServer::start(monitor.addr, "event", "event1", 1).await;
    assert_eq!(watcher.active("event").await, "event1");
    let mut observer = Observer::connect(es.addr).await;
    let enables = vec![
        enable("gw_rs"),
        RegisterEvent::json(
            ["gateway", "modbus_master", "m", "system", "enable"]
                .map(String::from)
                .to_vec(),
            json!(true),
        ),
    ];
    observer.wait_operational().await;
    assert!(observer
        .client
        .register_with_response(enables)
        .await
        .unwrap()
        .is_some());

    let dir = TempDir::new("monitor-mixed");
    let names = ["gw_py", "gw_rs"];
    let (py, rs) = tokio::join!(
        start_member("gw_py", &dir, monitor.addr),
        start_member("gw_rs", &dir, monitor.addr)
    );
    let mut members = [Some(py), Some(rs)];
    let transcripts = |members: &[Option<Member>; 2]| {
        members
            .iter()
            .flatten()
            .map(Member::transcript)
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    let mut handed_over = Vec::new();
    // Where in the observer's events the active member's running=true is to be found,
    // and from where on the standby must have registered none.
    let (mut active_from, mut standby_from) = (0, 0);
    for _round in 0..2 {
        let active = watcher.active("gateway").await;
        let active_i = names.iter().position(|n| *n == active).unwrap();
        let standby = names[1 - active_i];
        assert!(
            observer
                .wait_true(&running_type(&active), 1, active_from)
                .await,
            "{active} not running; {}",
            transcripts(&members)
        );
        // The standby is ready (it had every chance to run) and runs nothing.
        watcher
            .wait(&format!("{standby} ready"), |c| {
                c.iter()
                    .any(|i| i.name.as_deref() == Some(standby) && i.blessing_res.ready)
                    .then_some(())
            })
            .await;
        assert!(
            !observer
                .running_of(&running_type(standby), 1, standby_from)
                .contains(&true),
            "standby {standby} runs its device"
        );

        // Kill the active one: the standby is blessed and runs its device.
        let takeover_from = observer.events.len();
        let t0 = Instant::now();
        members[active_i].take().unwrap().kill();
        assert!(
            observer
                .wait_true(&running_type(standby), 1, takeover_from)
                .await,
            "{standby} did not take over from {active}; {}\nevents: {:#?}",
            transcripts(&members),
            &observer.events[takeover_from..]
        );
        eprintln!(
            "{active} -> {standby}: standby's device running after {:?}",
            t0.elapsed()
        );
        watcher
            .wait(&format!("{standby} the only active gateway"), |c| {
                let active: Vec<_> = c
                    .iter()
                    .filter(|i| i.group.as_deref() == Some("gateway") && i.is_active())
                    .filter_map(|i| i.name.as_deref())
                    .collect();
                (active == [standby]).then_some(())
            })
            .await;
        handed_over.push((active.clone(), standby.to_owned()));
        // The killed one comes back, as the standby.
        standby_from = observer.events.len();
        members[active_i] = Some(start_member(&active, &dir, monitor.addr).await);
        active_from = takeover_from;
    }
    handed_over.sort();
    assert_eq!(
        handed_over,
        [
            ("gw_py".to_owned(), "gw_rs".to_owned()),
            ("gw_rs".to_owned(), "gw_py".to_owned())
        ]
    );
}
