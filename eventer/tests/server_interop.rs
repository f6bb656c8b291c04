//! The real Python eventer client (hat-event 0.9.44) against our Eventer server.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::memory::MemoryHandler;
use common::python::PyClient;
use common::WAIT;
use gateway_eventer::model::{
    event_type_from_str as t, Event, EventId, Payload, Status, Subscription, Timestamp,
};
use gateway_eventer::server::{Server, ServerConfig};
use serde_json::{json, Value};

async fn start_server(config: ServerConfig) -> (Server, Arc<MemoryHandler>) {
    let (handler, _closed) = MemoryHandler::new();
    let server = Server::listen("127.0.0.1:0", handler.clone(), config)
        .await
        .unwrap();
    (server, handler)
}

fn operational() -> ServerConfig {
    ServerConfig {
        initial_status: Status::Operational,
        ..ServerConfig::default()
    }
}

fn event_types(line: &Value) -> Vec<String> {
    line["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["type"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect()
}

#[tokio::test]
async fn python_client_registers_queries_and_is_notified() {
    let (server, handler) = start_server(operational()).await;
    let port = server.local_addr().unwrap().port();
    let mut py = PyClient::start(port);

    py.send(json!({"op": "connect", "name": "py/main", "subscriptions": [["test", "*"]]}))
        .await;
    let connected = py.expect("connected").await;
    assert_eq!(connected["status"], "OPERATIONAL");
    let infos = server.connection_infos();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].client_name, "py/main");
    assert_eq!(
        infos[0].subscription,
        Subscription::new(vec![t("test/*")]).unwrap()
    );
    assert_eq!((infos[0].server_id, infos[0].persisted), (None, false));

    // Register with response: the notify of the batch reaches the Python client first.
    py.send(json!({"op": "register", "with_response": true,
                   "events": [{"type": ["test", "a"], "payload": {"v": 1}}]}))
        .await;
    let lines = py.until("registered").await;
    let kinds: Vec<_> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["events", "registered"]);
    assert_eq!(lines[0]["events"], lines[1]["events"]);
    assert_eq!(lines[1]["events"][0]["id"], json!([1, 1, 1]));
    assert_eq!(lines[1]["events"][0]["payload"]["data"], json!({"v": 1}));

    // Without response: stored, notified, never answered.
    py.send(json!({"op": "register", "with_response": false,
                   "events": [{"type": ["test", "b"], "payload": "x"}]}))
        .await;
    py.expect("registered").await;
    assert_eq!(event_types(&py.expect("events").await), ["test/b"]);

    // Not subscribed: registered, but the next notification is test/c.
    py.send(json!({"op": "register", "with_response": true,
                   "events": [{"type": ["other", "x"]}]}))
        .await;
    let other = py.expect("registered").await;
    assert_eq!(event_types(&other), ["other/x"]);
    py.send(json!({"op": "register", "with_response": true,
                   "events": [{"type": ["test", "c"]}]}))
        .await;
    assert_eq!(event_types(&py.expect("events").await), ["test/c"]);
    py.expect("registered").await;
    assert_eq!(handler.events().len(), 4);

    // Empty register: events([]), no notification.
    py.send(json!({"op": "register", "with_response": true, "events": []}))
        .await;
    assert_eq!(py.expect("registered").await["events"], json!([]));

    py.send(json!({"op": "query", "params": {"kind": "latest", "event_types": [["test", "*"]]}}))
        .await;
    let result = py.expect("query_result").await;
    let mut types = event_types(&result);
    types.sort();
    assert_eq!(types, ["test/a", "test/b", "test/c"]);
    assert_eq!(result["more_follows"], false);

    // Status change reaches the client.
    server.set_status(Status::Standby).await;
    assert_eq!(py.expect("status").await["status"], "STANDBY");
    assert_eq!(server.status(), Status::Standby);
    // ...and the handler now refuses: hat's failure answer becomes None in Python.
    py.send(json!({"op": "register", "with_response": true,
                   "events": [{"type": ["test", "d"]}]}))
        .await;
    assert_eq!(py.expect("registered").await["events"], Value::Null);

    // A notify that asks for an ack: returns only after the Python client acked.
    let pushed = Event {
        id: EventId {
            server: 1,
            session: 99,
            instance: 1,
        },
        event_type: t("test/pushed"),
        timestamp: Timestamp::new(1_700_000_000, 0),
        source_timestamp: None,
        payload: Some(Payload::json(json!([1, 2]))),
    };
    let skipped = Event {
        event_type: t("elsewhere/x"),
        ..pushed.clone()
    };
    let notified = tokio::time::timeout(
        WAIT,
        server.notify_events(&[skipped, pushed.clone()], false, true),
    )
    .await
    .expect("no ack from the Python client");
    assert_eq!(notified, 1);
    let line = py.expect("events").await;
    assert_eq!(event_types(&line), ["test/pushed"]);
    assert_eq!(line["events"][0]["timestamp"], json!([1_700_000_000, 0]));
    // Persisted notifications do not go to a non-persisted client.
    assert_eq!(server.notify_events(&[pushed], true, false).await, 0);

    py.send(json!({"op": "close"})).await;
    py.expect("closed").await;
    assert!(py.wait().await);
    server.close().await;
    assert!(server.connection_infos().is_empty());
}

#[tokio::test]
async fn python_client_init_errors() {
    let config = ServerConfig {
        server_token: Some("secret".to_owned()),
        ..operational()
    };
    let (server, _handler) = start_server(config).await;
    let port = server.local_addr().unwrap().port();

    let mut py = PyClient::start(port);
    py.send(json!({"op": "connect", "name": "py/bad", "subscriptions": [], "token": "wrong"}))
        .await;
    assert_eq!(
        py.expect("init_error").await["error"],
        "invalid client token"
    );
    py.send(json!({"op": "connect", "name": "py/bad", "subscriptions": [["a", "*", "b"]]}))
        .await;
    assert_eq!(
        py.expect("init_error").await["error"],
        "invalid query event type"
    );
    // The right token, and no token at all, are both accepted.
    py.send(json!({"op": "connect", "name": "py/good", "subscriptions": [], "token": "secret"}))
        .await;
    assert_eq!(py.expect("connected").await["status"], "OPERATIONAL");
    py.send(json!({"op": "close"})).await;
    assert!(py.wait().await);

    let mut py = PyClient::start(port);
    py.send(json!({"op": "connect", "name": "py/anon", "subscriptions": []}))
        .await;
    assert_eq!(py.expect("connected").await["status"], "OPERATIONAL");
    py.send(json!({"op": "close"})).await;
    assert!(py.wait().await);
    server.close().await;
}
