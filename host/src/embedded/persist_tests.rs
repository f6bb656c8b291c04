//! The event store file: restart, failed commits, lock, corruption, retention.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use gateway_model::{
    event_type_from_str as t, Order, OrderBy, QueryLatestParams, QueryParams,
    QueryTimeseriesParams, RegisterEvent,
};
use gateway_test_support::TempDir;

use super::{EmbeddedConfig, EmbeddedServer, OpenError};

fn config(path: &Path) -> EmbeddedConfig {
    EmbeddedConfig {
        db_path: Some(path.to_owned()),
        ..EmbeddedConfig::default()
    }
}

fn reg(ty: &str, v: i64) -> RegisterEvent {
    RegisterEvent::json(t(ty), serde_json::json!(v))
}

fn latest(server: &EmbeddedServer) -> Vec<(String, i64)> {
    server
        .query(&QueryParams::Latest(QueryLatestParams {
            event_types: None,
        }))
        .events
        .iter()
        .map(|e| {
            let v = e.payload.as_ref().and_then(|p| p.json_value()).unwrap();
            (e.event_type.join("/"), v.as_i64().unwrap())
        })
        .collect()
}

fn timeseries(server: &EmbeddedServer) -> Vec<gateway_model::Event> {
    server
        .query(&QueryParams::Timeseries(QueryTimeseriesParams {
            order: Order::Ascending,
            order_by: OrderBy::Timestamp,
            ..Default::default()
        }))
        .events
}

#[tokio::test]
async fn events_latest_and_ids_survive_a_restart() {
    let dir = TempDir::new("store-restart");
    let path = dir.path().join("events.redb");
    let server = EmbeddedServer::open(config(&path)).unwrap();
    let first = server
        .register(vec![reg("a/x", 1), reg("a/y", 2)])
        .await
        .unwrap();
    server.register(vec![reg("a/x", 3)]).await.unwrap();
    let before_latest = latest(&server);
    let before_history = timeseries(&server);
    assert_eq!(before_history.len(), 3);
    drop(server);

    let server = EmbeddedServer::open(config(&path)).unwrap();
    assert_eq!(latest(&server), before_latest);
    assert_eq!(timeseries(&server), before_history);
    let next = server.register(vec![reg("a/z", 4)]).await.unwrap();
    assert!(next[0].id > before_history[2].id, "{:?}", next[0].id);
    assert_eq!(first[0].id.session + 2, next[0].id.session);
}

#[tokio::test]
async fn a_failed_commit_answers_failure_and_the_server_goes_on() {
    let dir = TempDir::new("store-fail");
    let path = dir.path().join("events.redb");
    let server = EmbeddedServer::open(config(&path)).unwrap();
    server.register(vec![reg("a", 1)]).await.unwrap();
    server.fail_commits(true);
    assert!(server.register(vec![reg("a", 2)]).await.is_none());
    // Neither stored nor visible.
    assert_eq!(latest(&server), vec![("a".to_owned(), 1)]);
    server.fail_commits(false);
    let third = server.register(vec![reg("a", 3)]).await.unwrap();
    // The failed request's session is not given out again.
    assert_eq!(third[0].id.session, 3);
    drop(server);
    let server = EmbeddedServer::open(config(&path)).unwrap();
    let values: Vec<i64> = timeseries(&server)
        .iter()
        .map(|e| {
            e.payload
                .as_ref()
                .and_then(|p| p.json_value())
                .unwrap()
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(values, vec![1, 3]);
}

#[tokio::test]
async fn a_second_server_on_the_same_file_is_refused_naming_the_file() {
    let dir = TempDir::new("store-lock");
    let path = dir.path().join("events.redb");
    let _server = EmbeddedServer::open(config(&path)).unwrap();
    let err = EmbeddedServer::open(config(&path)).unwrap_err();
    assert!(matches!(err, OpenError::Locked { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("locked"), "{message}");
}

#[tokio::test]
async fn a_corrupt_file_or_a_bad_place_is_an_error_naming_the_file() {
    let dir = TempDir::new("store-corrupt");
    let path = dir.write("events.redb", &"not a database ".repeat(1000));
    let err = EmbeddedServer::open(config(&path)).unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    // A path whose directory is a regular file.
    let under_file = path.join("events.redb");
    let err = EmbeddedServer::open(config(&under_file)).unwrap_err();
    assert!(matches!(err, OpenError::Io { .. }), "{err}");
    assert!(err.to_string().contains(&under_file.display().to_string()));
}

#[tokio::test]
async fn retention_forgets_old_events_in_the_file_and_keeps_the_latest_of_each_type() {
    let dir = TempDir::new("store-retention");
    let path = dir.path().join("events.redb");
    let limited = || EmbeddedConfig {
        retained_events: 10,
        ..config(&path)
    };
    let server = EmbeddedServer::open(limited()).unwrap();
    server.register(vec![reg("once", 0)]).await.unwrap();
    for i in 1..=40 {
        server.register(vec![reg("often", i)]).await.unwrap();
    }
    assert_eq!(timeseries(&server).len(), 10);
    drop(server);
    let size_before = std::fs::metadata(&path).unwrap().len();

    let server = EmbeddedServer::open(limited()).unwrap();
    let history = timeseries(&server);
    assert_eq!(history.len(), 10, "{history:?}");
    assert_eq!(
        latest(&server),
        vec![("once".to_owned(), 0), ("often".to_owned(), 40)]
    );
    drop(server);
    // Reopened with no limit, the file holds no more than what was retained (the
    // deletion ran; its floor lags the index by one commit), plus the latest of `once`.
    let server = EmbeddedServer::open(config(&path)).unwrap();
    let kept = timeseries(&server).len();
    assert!((10..=11).contains(&kept), "{kept}");
    assert_eq!(latest(&server).len(), 2);
    assert!(size_before > 0);
}

#[tokio::test]
async fn concurrent_requests_waiting_for_a_commit_do_not_pass_max_event_types_together() {
    let dir = TempDir::new("store-types");
    let path = dir.path().join("events.redb");
    let server = EmbeddedServer::open(EmbeddedConfig {
        max_event_types: 5,
        ..config(&path)
    })
    .unwrap();
    // All of them get their ids before the first commit is done.
    let requests = (0..20).map(|i| server.register(vec![reg(&format!("t/{i}"), i)]));
    let answers = futures::future::join_all(requests).await;
    let accepted = answers.iter().filter(|a| a.is_some()).count();
    assert_eq!(accepted, 5);
    assert_eq!(server.event_types(), 5);
    // A refused or failed request leaves nothing reserved: known types still go in,
    // and once types are stored, new ones are refused by the stored count.
    server.fail_commits(true);
    assert!(server.register(vec![reg("t/0", 1)]).await.is_none());
    server.fail_commits(false);
    assert!(server.register(vec![reg("t/0", 2)]).await.is_some());
    assert!(server.register(vec![reg("t/new", 3)]).await.is_none());
}
