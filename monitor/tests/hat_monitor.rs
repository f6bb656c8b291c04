//! Against hat-monitor 0.8.23 itself: the venv's Python encodes and decodes the
//! `HatObserver` messages with hat's own SBS repository, and a real Monitor Server
//! elects one of our components with BLESS_ONE.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use gateway_monitor::client::{ComponentEvent, MonitorComponent, MonitorConfig, MonitorError};
use gateway_monitor::message::{
    BlessingReq, BlessingRes, ComponentInfo, MsgClient, MsgServer, ServerMsg, MSG_SERVER_TYPE,
};
use gateway_test_support::monitor::HatMonitor;
use gateway_test_support::venv_with;
use serde_json::json;

/// Bound on each wait for an event from the real monitor.
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn python(script: &str) -> String {
    let venv = venv_with(&["bin/python"]);
    let out = Command::new(venv.join("bin/python"))
        .arg("-c")
        .arg(script)
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn encoding_is_byte_identical_to_hat_monitor() {
    let client = MsgClient {
        name: "gateway-a".into(),
        group: "gateway".into(),
        data: "null".into(),
        blessing_res: BlessingRes {
            token: Some(300),
            ready: true,
        },
    };
    let server = MsgServer {
        cid: 7,
        mid: 0,
        components: vec![
            ComponentInfo {
                cid: 7,
                mid: 0,
                name: Some("gateway-a".into()),
                group: Some("gateway".into()),
                data: serde_json::Value::Null,
                rank: 1,
                blessing_req: BlessingReq {
                    token: Some(300),
                    timestamp: Some(1_700_000_000.25),
                },
                blessing_res: BlessingRes {
                    token: Some(300),
                    ready: true,
                },
            },
            ComponentInfo {
                cid: 8,
                mid: 0,
                name: None,
                group: None,
                data: json!({"server_id": 2}),
                rank: -70,
                blessing_req: BlessingReq {
                    token: None,
                    timestamp: None,
                },
                blessing_res: BlessingRes {
                    token: None,
                    ready: false,
                },
            },
        ],
    };
    let out = python(
        r#"
from hat.monitor.common import sbs_repo
c = sbs_repo.encode('HatObserver.MsgClient', {
    'name': 'gateway-a', 'group': 'gateway', 'data': 'null',
    'blessingRes': {'token': ('value', 300), 'ready': True}})
s = sbs_repo.encode('HatObserver.MsgServer', {'cid': 7, 'mid': 0, 'components': [
    {'cid': 7, 'mid': 0, 'name': ('value', 'gateway-a'), 'group': ('value', 'gateway'),
     'data': 'null', 'rank': 1,
     'blessingReq': {'token': ('value', 300), 'timestamp': ('value', 1700000000.25)},
     'blessingRes': {'token': ('value', 300), 'ready': True}},
    {'cid': 8, 'mid': 0, 'name': ('none', None), 'group': ('none', None),
     'data': '{"server_id":2}', 'rank': -70,
     'blessingReq': {'token': ('none', None), 'timestamp': ('none', None)},
     'blessingRes': {'token': ('none', None), 'ready': False}}]})
print(bytes(c).hex())
print(bytes(s).hex())
"#,
    );
    let mut lines = out.lines();
    let py_client = lines.next().unwrap();
    let py_server = lines.next().unwrap();
    assert_eq!(hex(&client.to_bytes()), py_client);
    assert_eq!(hex(&server.to_bytes()), py_server);
    // And hat decodes what we encode.
    let decoded = python(&format!(
        "from hat.monitor.common import sbs_repo\n\
         print(sbs_repo.decode('HatObserver.MsgClient', bytes.fromhex('{}')))",
        hex(&client.to_bytes())
    ));
    assert!(decoded.contains("'token': ('value', 300)"), "{decoded}");
    let parsed = ServerMsg::decode(MSG_SERVER_TYPE, &server.to_bytes()).unwrap();
    assert_eq!(parsed, ServerMsg::Server(server));
}

async fn next_event(c: &mut MonitorComponent) -> Result<ComponentEvent, MonitorError> {
    tokio::time::timeout(EVENT_TIMEOUT, c.next())
        .await
        .expect("no monitor event in time")
}

/// Waits for Start (answering any Stop); panics on an error.
async fn until_start(c: &mut MonitorComponent) {
    loop {
        match next_event(c).await.unwrap() {
            ComponentEvent::Start => return,
            ComponentEvent::Stop => c.runner_stopped(),
            ComponentEvent::StateChanged => {}
        }
    }
}

#[tokio::test]
async fn bless_one_elects_one_of_two_and_hands_over() {
    let mut monitor = HatMonitor::start(json!({})).await;
    let config = MonitorConfig::default();
    let mut a = MonitorComponent::connect(monitor.addr, "a", "g", "null", config.clone())
        .await
        .unwrap();
    a.set_ready(true);
    until_start(&mut a).await;
    let mut b = MonitorComponent::connect(monitor.addr, "b", "g", "{\"x\":1}", config)
        .await
        .unwrap();
    b.set_ready(true);
    // b sees a active and itself not blessed.
    loop {
        assert_eq!(
            next_event(&mut b).await.unwrap(),
            ComponentEvent::StateChanged
        );
        let comps = b.component().components();
        let own = b.component().info();
        if comps.len() == 2 && own.is_some_and(|i| i.blessing_res.ready) {
            let active: Vec<_> = comps.iter().filter(|i| i.is_active()).collect();
            assert_eq!(active.len(), 1);
            assert_eq!(active[0].name.as_deref(), Some("a"));
            let b_info = comps
                .iter()
                .find(|i| i.name.as_deref() == Some("b"))
                .unwrap();
            assert_eq!(b_info.data, json!({"x": 1}));
            break;
        }
    }
    assert!(!b.component().is_active());
    // a leaves: b takes over.
    let t0 = Instant::now();
    a.close().await;
    until_start(&mut b).await;
    eprintln!(
        "hand-over after the active component left: {:?}",
        t0.elapsed()
    );
    // The monitor stops: MsgClose.
    monitor.process.terminate().await;
    let err = loop {
        match next_event(&mut b).await {
            Ok(ComponentEvent::Stop) => b.runner_stopped(),
            Ok(_) => {}
            Err(err) => break err,
        }
    };
    assert_eq!(
        err,
        MonitorError::CloseRequested,
        "{}",
        monitor.process.log()
    );
}

#[tokio::test]
async fn killed_monitor_is_a_lost_connection() {
    let mut monitor = HatMonitor::start(json!({})).await;
    let mut a = MonitorComponent::connect(monitor.addr, "a", "g", "null", MonitorConfig::default())
        .await
        .unwrap();
    a.set_ready(true);
    until_start(&mut a).await;
    monitor.process.kill();
    let err = loop {
        match next_event(&mut a).await {
            Ok(ComponentEvent::Stop) => a.runner_stopped(),
            Ok(_) => {}
            Err(err) => break err,
        }
    };
    assert!(matches!(err, MonitorError::Lost(_)), "{err}");
    // And a monitor that is not there is a connect error.
    let err = MonitorComponent::connect(monitor.addr, "a", "g", "null", MonitorConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, MonitorError::Connect(_)), "{err}");
}
