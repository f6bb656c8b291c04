//! The embedded server's security and memory bounds (issue 11 items 3 and 4), with raw
//! TCP clients and the eventer client: token, listen address policy, forged gateway
//! outputs, distinct event types, and RSS bounds under the three memory attacks
//! (scaled down so they run in seconds). The RSS tests run one at a time (a lock) and
//! measure this process's VmRSS.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::BytesMut;
use gateway_eventer::chatter::{Msg, MsgHeader};
use gateway_eventer::client::{Client, ClientConfig};
use gateway_eventer::message::{EventerMsg, InitReq};
use gateway_host::embedded::{EmbeddedConfig, EmbeddedServer, TcpLimits};
use gateway_model::{event_type_from_str as t, RegisterEvent};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(20);
const MIB: usize = 1024 * 1024;

static RSS_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

async fn client(
    addr: std::net::SocketAddr,
    token: Option<&str>,
    subscriptions: &[&str],
) -> Result<Client, String> {
    let mut config = ClientConfig::new("test/client");
    config.client_token = token.map(str::to_owned);
    config.subscriptions = subscriptions.iter().map(|s| t(s)).collect();
    tokio::time::timeout(WAIT, Client::connect(addr, config))
        .await
        .unwrap()
        .map(|(client, _notifications)| client)
        .map_err(|err| err.to_string())
}

fn frame(id: i64, msg: &EventerMsg) -> BytesMut {
    let mut buf = BytesMut::new();
    msg.encode_frame(&MsgHeader::new_conversation(id, false), &mut buf);
    buf
}

async fn listen(config: EmbeddedConfig) -> (EmbeddedServer, std::net::SocketAddr) {
    let server = EmbeddedServer::new(config);
    let listener = server.listen("127.0.0.1:0", None).await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Keeps running when the handle is dropped.
    drop(listener);
    (server, addr)
}

#[tokio::test]
async fn with_a_token_clients_without_it_or_with_another_are_refused() {
    let (_server, addr) = listen(EmbeddedConfig {
        token: Some("s3cret".to_owned()),
        ..EmbeddedConfig::default()
    })
    .await;
    let none = client(addr, None, &[]).await.unwrap_err();
    assert!(none.contains("invalid client token"), "{none}");
    let wrong = client(addr, Some("s3creT"), &[]).await.unwrap_err();
    assert!(wrong.contains("invalid client token"), "{wrong}");
    client(addr, Some("s3cret"), &[]).await.unwrap();
}

#[tokio::test]
async fn non_loopback_addresses_need_allow_remote_and_a_token() {
    let server = EmbeddedServer::new(EmbeddedConfig::default());
    let err = server.listen("0.0.0.0:0", None).await.unwrap_err();
    assert!(err.to_string().contains("allow_remote"), "{err}");
    let server = EmbeddedServer::new(EmbeddedConfig {
        allow_remote: true,
        ..EmbeddedConfig::default()
    });
    let err = server.listen("0.0.0.0:0", None).await.unwrap_err();
    assert!(err.to_string().contains("needs a token"), "{err}");
    let server = EmbeddedServer::new(EmbeddedConfig {
        allow_remote: true,
        token: Some("t".to_owned()),
        ..EmbeddedConfig::default()
    });
    server
        .listen("0.0.0.0:0", None)
        .await
        .unwrap()
        .close()
        .await;
}

#[tokio::test]
async fn tcp_clients_cannot_forge_the_gateways_outputs() {
    let (server, addr) = listen(EmbeddedConfig {
        own_gateway: Some("G".to_owned()),
        ..EmbeddedConfig::default()
    })
    .await;
    let tcp = client(addr, None, &[]).await.unwrap();
    let running = "gateway/G/sim/d/gateway/running";
    let forged = RegisterEvent::json(t(running), serde_json::json!(true));
    assert_eq!(
        tcp.register_with_response(vec![forged.clone()])
            .await
            .unwrap(),
        None
    );
    // Inputs (system/...) are still accepted from TCP clients.
    let enable = RegisterEvent::json(t("gateway/G/sim/d/system/enable"), serde_json::json!(true));
    assert!(tcp
        .register_with_response(vec![enable])
        .await
        .unwrap()
        .is_some());
    let latest = |ty: &str| {
        server
            .query(&gateway_model::QueryParams::Latest(
                gateway_model::QueryLatestParams {
                    event_types: Some(vec![t(ty)]),
                },
            ))
            .events
            .len()
    };
    assert_eq!(latest(running), 0);
    // Another gateway's outputs are its own business (it may use this server).
    let other = RegisterEvent::json(
        t("gateway/H/sim/d/gateway/running"),
        serde_json::json!(true),
    );
    assert!(tcp
        .register_with_response(vec![other])
        .await
        .unwrap()
        .is_some());
    // The gateway's own (in-process) connection may.
    assert!(server.register(vec![forged]).await.is_some());
    assert_eq!(latest(running), 1);
}

#[tokio::test]
async fn unique_event_types_past_the_limit_are_refused_and_rss_stays_bounded() {
    let _one = RSS_LOCK.lock().await;
    const LIMIT: usize = 5_000;
    const ATTEMPTS: usize = 100_000;
    let (server, addr) = listen(EmbeddedConfig {
        max_event_types: LIMIT,
        ..EmbeddedConfig::default()
    })
    .await;
    let tcp = client(addr, None, &[]).await.unwrap();
    let before = rss_bytes();
    let mut refused = 0;
    for chunk in 0..ATTEMPTS / 100 {
        let events = (0..100)
            .map(|i| {
                RegisterEvent::json(
                    t(&format!("flood/{chunk}/{i}/xxxxxxxxxxxxxxxxxxxxxxxx")),
                    serde_json::json!(i),
                )
            })
            .collect();
        if tcp.register_with_response(events).await.unwrap().is_none() {
            refused += 1;
        }
    }
    let grown = rss_bytes().saturating_sub(before);
    assert!(server.event_types() <= LIMIT, "{}", server.event_types());
    assert!(refused >= ATTEMPTS / 100 - LIMIT / 100, "{refused}");
    assert_eq!(server.refused_registers(), refused as u64);
    eprintln!(
        "unique types: {ATTEMPTS} attempted, RSS grew {} KiB",
        grown / 1024
    );
    assert!(grown < 64 * MIB, "RSS grew {grown} bytes");
}

#[tokio::test]
async fn a_subscriber_that_never_reads_is_closed_within_its_byte_budget() {
    let _one = RSS_LOCK.lock().await;
    let server = EmbeddedServer::new(EmbeddedConfig {
        retained_events: 10,
        tcp: TcpLimits {
            max_outbound_bytes: 2 * MIB,
            ..TcpLimits::default()
        },
        ..EmbeddedConfig::default()
    });
    let listener = server.listen("127.0.0.1:0", None).await.unwrap();
    let addr = listener.local_addr().unwrap();
    // A raw subscriber: init, then pings, never reading a byte.
    let mut raw = TcpStream::connect(addr).await.unwrap();
    let init = EventerMsg::InitReq(InitReq {
        client_name: "stalled".to_owned(),
        client_token: None,
        subscriptions: vec![t("*")],
        server_id: None,
        persisted: false,
    });
    raw.write_all(&frame(1, &init)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_bytes();
    let payload = "x".repeat(64 * 1024);
    let mut id = 2;
    let mut peak = 0;
    // 2,000 batches of 64 KiB: 125 MiB if the queue kept them.
    for i in 0..2_000 {
        let event = RegisterEvent::json(t("big/a"), serde_json::json!(payload));
        server.register(vec![event]).await.unwrap();
        if i % 50 == 0 {
            let mut ping = BytesMut::new();
            gateway_eventer::chatter::encode_frame(&Msg::ping(id), &mut ping);
            id += 1;
            // The socket may already be closed by the server: that is the point.
            let _ = raw.write_all(&ping).await;
            peak = peak.max(rss_bytes().saturating_sub(before));
        }
    }
    eprintln!("stalled subscriber: RSS peak growth {} KiB", peak / 1024);
    // Closed as a slow consumer: the server no longer lists it.
    assert_eq!(
        listener.connection_count(),
        0,
        "the stalled subscriber is still connected"
    );
    assert!(peak < 48 * MIB, "RSS grew {peak} bytes");
}

#[tokio::test]
async fn partial_frames_of_many_connections_stay_within_the_input_budget() {
    let _one = RSS_LOCK.lock().await;
    const FRAME: usize = 4 * MIB;
    const CONNECTIONS: usize = 30;
    let (_server, addr) = listen(EmbeddedConfig {
        tcp: TcpLimits {
            max_frame_size: FRAME,
            max_buffered_input: 3 * FRAME,
            ..TcpLimits::default()
        },
        ..EmbeddedConfig::default()
    })
    .await;
    let before = rss_bytes();
    let body = vec![0u8; FRAME - 1];
    let mut streams = Vec::new();
    let mut accepted_bytes = 0;
    for _ in 0..CONNECTIONS {
        let mut raw = TcpStream::connect(addr).await.unwrap();
        // Announces FRAME bytes, sends all but one.
        let len = (FRAME as u32).to_be_bytes();
        raw.write_all(&[4, len[0], len[1], len[2], len[3]])
            .await
            .unwrap();
        if raw.write_all(&body).await.is_ok() {
            accepted_bytes += body.len();
        }
        streams.push(raw);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown = rss_bytes().saturating_sub(before);
    eprintln!(
        "partial frames: {CONNECTIONS} x {FRAME} sent ({} MiB), RSS grew {} KiB",
        accepted_bytes / MIB,
        grown / 1024
    );
    // The budget (12 MiB), the kernel's socket buffers of the refused connections and
    // the clients' own buffers.
    assert!(grown < 64 * MIB, "RSS grew {grown} bytes");
}

/// Runs `py/token_client.py` (the real hat-event eventer client) against `addr`.
async fn python_client(
    addr: std::net::SocketAddr,
    token: Option<&str>,
    forge: Option<&str>,
) -> serde_json::Value {
    let venv = gateway_test_support::venv_with(&["bin/python"]);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/token_client.py");
    let mut command = tokio::process::Command::new(venv.join("bin/python"));
    command
        .arg(script)
        .arg(addr.port().to_string())
        .arg(token.unwrap_or(""));
    if let Some(forge) = forge {
        command.arg(forge);
    }
    let output = tokio::time::timeout(WAIT, command.kill_on_drop(true).output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|err| {
        panic!(
            "{err}: stdout {stdout:?}, stderr {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[tokio::test]
async fn the_hat_python_client_needs_the_token_and_cannot_forge_running() {
    let (_server, addr) = listen(EmbeddedConfig {
        token: Some("s3cret".to_owned()),
        own_gateway: Some("G".to_owned()),
        ..EmbeddedConfig::default()
    })
    .await;
    let none = python_client(addr, None, None).await;
    assert_eq!(none["result"], "init_error", "{none}");
    let wrong = python_client(addr, Some("nope"), None).await;
    assert_eq!(wrong["result"], "init_error", "{wrong}");
    let forged = python_client(
        addr,
        Some("s3cret"),
        Some("gateway/G/sim/d/gateway/running"),
    )
    .await;
    assert_eq!(forged["result"], "connected", "{forged}");
    assert_eq!(forged["forged"], "failure", "{forged}");
}
