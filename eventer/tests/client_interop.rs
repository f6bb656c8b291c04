//! Our Eventer client against the real hat-event-server 0.9.44 (LMDB backend).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{connect_operational, next_events, next_notification, types, EventServer, WAIT};
use gateway_eventer::client::{Client, ClientConfig, ClientError, Notification};
use gateway_eventer::connection::ConnectionError;
use gateway_eventer::model::{
    event_type_from_str as t, JsonText, Order, Payload, QueryLatestParams, QueryParams,
    QueryServerParams, QueryTimeseriesParams, RegisterEvent, Status, Timestamp,
};
use serde_json::json;

fn config(name: &str, subscriptions: &[&str]) -> ClientConfig {
    let mut config = ClientConfig::new(name);
    config.subscriptions = subscriptions.iter().map(|s| t(s)).collect();
    config
}

#[tokio::test]
async fn register_notify_and_query_against_real_server() {
    let server = EventServer::start().await;
    let (main, mut main_rx) =
        connect_operational(server.addr, config("test/main", &["test/*"])).await;
    let (other, mut other_rx) =
        connect_operational(server.addr, config("test/other", &["other/*"])).await;

    // Register with response: two events, one JSON with a source timestamp, one binary.
    let source = Timestamp::new(1_700_000_000, 250_000);
    let registered = main
        .register_with_response(vec![
            RegisterEvent {
                event_type: t("test/a"),
                source_timestamp: Some(source),
                payload: Some(Payload::Json(
                    JsonText::new(r#"{"value":1.5,"unit":"kV"}"#).unwrap(),
                )),
            },
            RegisterEvent {
                event_type: t("test/b"),
                source_timestamp: None,
                payload: Some(Payload::Binary {
                    type_name: "raw".to_owned(),
                    data: vec![1, 2, 3],
                }),
            },
        ])
        .await
        .unwrap()
        .expect("server answered failure");
    assert_eq!(types(&registered), ["test/a", "test/b"]);
    assert_eq!(registered[0].id.server, 1);
    assert_eq!(registered[0].id.session, registered[1].id.session);
    assert_eq!(
        (registered[0].id.instance, registered[1].id.instance),
        (1, 2)
    );
    assert_eq!(registered[0].timestamp, registered[1].timestamp);
    assert_eq!(registered[0].source_timestamp, Some(source));
    assert_eq!(
        registered[0].payload.as_ref().unwrap().json_value(),
        Some(json!({"value": 1.5, "unit": "kV"}))
    );
    assert_eq!(
        registered[1].payload,
        Some(Payload::Binary {
            type_name: "raw".to_owned(),
            data: vec![1, 2, 3]
        })
    );
    // The registering client is notified of the same batch (the notify may well have
    // arrived before the response).
    assert_eq!(next_events(&mut main_rx).await, registered);

    // A second client registers without response; only subscribers of other/* hear it.
    other
        .register(vec![RegisterEvent::json(t("other/x"), json!(1))])
        .await
        .unwrap();
    assert_eq!(types(&next_events(&mut other_rx).await), ["other/x"]);
    main.register(vec![RegisterEvent::json(t("test/c"), json!("no response"))])
        .await
        .unwrap();
    // main's next batch is test/c: other/x (registered before it) never reached main.
    assert_eq!(types(&next_events(&mut main_rx).await), ["test/c"]);
    other
        .register(vec![RegisterEvent::json(t("other/y"), json!(2))])
        .await
        .unwrap();
    assert_eq!(types(&next_events(&mut other_rx).await), ["other/y"]);

    // Empty register is answered with no events.
    assert_eq!(
        main.register_with_response(Vec::new()).await.unwrap(),
        Some(Vec::new())
    );

    // latest
    let latest = main
        .query(QueryParams::Latest(QueryLatestParams {
            event_types: Some(vec![t("test/*")]),
        }))
        .await
        .unwrap();
    let mut latest_types = types(&latest.events);
    latest_types.sort();
    assert_eq!(latest_types, ["test/a", "test/b", "test/c"]);
    assert!(!latest.more_follows);

    // timeseries, ascending, paged by two
    let page = |last_event_id| {
        QueryParams::Timeseries(QueryTimeseriesParams {
            event_types: Some(vec![t("test/*")]),
            order: Order::Ascending,
            max_results: Some(2),
            last_event_id,
            ..QueryTimeseriesParams::default()
        })
    };
    let first = main.query(page(None)).await.unwrap();
    assert_eq!(types(&first.events), ["test/a", "test/b"]);
    assert!(first.more_follows);
    let rest = main.query(page(Some(first.events[1].id))).await.unwrap();
    assert_eq!(types(&rest.events), ["test/c"]);
    assert!(!rest.more_follows);

    // server: every event of server 1 in id order (including hat's own events)
    let all = main
        .query(QueryParams::Server(QueryServerParams {
            server_id: 1,
            persisted: false,
            max_results: None,
            last_event_id: None,
        }))
        .await
        .unwrap();
    let ids: Vec<_> = all.events.iter().map(|e| e.id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    for expected in ["test/a", "test/b", "test/c", "other/x", "other/y"] {
        assert!(
            types(&all.events).iter().any(|t| t == expected),
            "{expected} missing"
        );
    }

    // Nothing else was queued for either client.
    assert!(main_rx.try_recv().is_err());
    assert!(other_rx.try_recv().is_err());
    main.close().await;
    assert!(matches!(*main.closed().await, ConnectionError::LocalClose));
}

#[tokio::test]
async fn init_errors_are_typed() {
    let server = EventServer::start().await;
    let mut with_token = config("test/token", &[]);
    with_token.client_token = Some("wrong".to_owned());
    match Client::connect(server.addr, with_token).await {
        Err(ClientError::InitError(text)) => assert_eq!(text, "invalid client token"),
        other => panic!("expected init error, got {other:?}"),
    }
    match Client::connect(server.addr, config("test/bad-sub", &["a/*/b"])).await {
        Err(ClientError::InitError(text)) => assert_eq!(text, "invalid query event type"),
        other => panic!("expected init error, got {other:?}"),
    }
}

#[tokio::test]
async fn idle_connection_survives_short_keepalive() {
    let server = EventServer::start().await;
    let mut short = config("test/idle", &["test/*"]);
    short.ping_delay = Some(Duration::from_millis(300));
    short.ping_timeout = Duration::from_millis(500);
    let (client, mut rx) = connect_operational(server.addr, short).await;
    // The wait is the behaviour under test: twice the delay plus timeout of silence
    // from our side, during which our pings must be answered by hat's pongs.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(!client.is_closed(), "closed: {:?}", client.closed().await);
    let registered = client
        .register_with_response(vec![RegisterEvent::json(t("test/alive"), json!(true))])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(types(&registered), ["test/alive"]);
    assert_eq!(types(&next_events(&mut rx).await), ["test/alive"]);
}

#[tokio::test]
async fn persisted_client_is_notified_after_flush_and_filtered_by_server_id() {
    let server = EventServer::start().await;
    let mut persisted = config("test/persisted", &["test/*"]);
    persisted.persisted = true;
    persisted.server_id = Some(1);
    let (_persisted, mut persisted_rx) = connect_operational(server.addr, persisted).await;
    let mut foreign = config("test/foreign", &["test/*"]);
    foreign.server_id = Some(2);
    let (_foreign, mut foreign_rx) = connect_operational(server.addr, foreign).await;
    let (writer, _writer_rx) = connect_operational(server.addr, config("test/writer", &[])).await;

    let registered = writer
        .register_with_response(vec![RegisterEvent::json(t("test/p"), json!(7))])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next_events(&mut persisted_rx).await, registered);
    // Server id 2 never matches events of server 1.
    writer
        .register_with_response(vec![RegisterEvent::json(t("test/q"), json!(8))])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(types(&next_events(&mut persisted_rx).await), ["test/q"]);
    assert!(foreign_rx.try_recv().is_err());
}

#[tokio::test]
async fn server_shutdown_sends_status_then_closes_and_fails_calls() {
    let mut server = EventServer::start().await;
    let (client, mut rx) =
        connect_operational(server.addr, config("test/shutdown", &["test/*"])).await;
    server.terminate();
    assert_eq!(
        next_notification(&mut rx).await,
        Notification::Status(Status::Stopping)
    );
    assert_eq!(
        next_notification(&mut rx).await,
        Notification::Status(Status::Standby)
    );
    let reason = tokio::time::timeout(WAIT, client.closed()).await.unwrap();
    assert!(matches!(*reason, ConnectionError::PeerClosed), "{reason}");
    server.wait_exit().await;
    match client
        .query(QueryParams::Latest(QueryLatestParams::default()))
        .await
    {
        Err(ClientError::ConnectionClosed(reason)) => {
            assert!(matches!(*reason, ConnectionError::PeerClosed))
        }
        other => panic!("expected ConnectionClosed, got {other:?}"),
    }
    assert_eq!(client.status(), Status::Standby);
}
