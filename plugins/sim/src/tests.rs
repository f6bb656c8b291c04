//! Unit tests of the simulator's event contract, with an in-memory client.

use std::sync::Arc;

use gateway_plugin_api::model::{
    Event, EventId, JsonText, Payload, QueryParams, QueryResult, RegisterEvent, Timestamp,
};
use gateway_plugin_api::sdk::{BoxFuture, Client, ClientBackend, ClientError, Context, Device};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::*;

/// Records every registration call (one message per call).
struct Recorder(mpsc::UnboundedSender<Vec<RegisterEvent>>);

impl ClientBackend for Recorder {
    fn register(&self, events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>> {
        let sent = self
            .0
            .send(events)
            .map_err(|_| ClientError::ConnectionClosed);
        Box::pin(async move { sent })
    }

    fn register_with_response(
        &self,
        _events: Vec<RegisterEvent>,
    ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>> {
        Box::pin(async { Err(ClientError::ConnectionClosed) })
    }

    fn query(&self, _params: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>> {
        Box::pin(async { Ok(QueryResult::default()) })
    }
}

fn prefix() -> Vec<String> {
    ["gateway", "gw", "sim", "s1"].map(String::from).to_vec()
}

fn context() -> (Context, mpsc::UnboundedReceiver<Vec<RegisterEvent>>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = Client::new(Arc::new(Recorder(tx)), prefix());
    (Context::new(client), rx)
}

fn summary(events: &[RegisterEvent]) -> Vec<(String, Value)> {
    events
        .iter()
        .map(|e| {
            let value = match &e.payload {
                Some(Payload::Json(text)) => text.value(),
                _ => Value::Null,
            };
            (e.event_type[4..].join("/"), value)
        })
        .collect()
}

fn system_event(suffix: &[&str], payload: Option<Payload>) -> Event {
    let mut event_type = prefix();
    event_type.extend(suffix.iter().map(|s| s.to_string()));
    Event {
        id: EventId::default(),
        event_type,
        timestamp: Timestamp::now(),
        source_timestamp: None,
        payload,
    }
}

fn json_event(suffix: &[&str], value: Value) -> Event {
    system_event(suffix, Some(Payload::json(value)))
}

#[test]
fn config_defaults_and_errors() {
    let config = SimConfig::from_value(&json!({"name": "s", "module": "sim"})).unwrap();
    assert_eq!(config.points, vec!["p0"]);
    assert_eq!(config.period, None);
    let config = SimConfig::from_value(&json!({"points": ["a", "b"], "period": 0.5})).unwrap();
    assert_eq!(config.points, vec!["a", "b"]);
    assert_eq!(config.period, Some(Duration::from_millis(500)));
    assert_eq!(
        SimConfig::from_value(&json!({"period": 0})).unwrap().period,
        None
    );
    assert!(SimConfig::from_value(&json!({"points": []})).is_err());
    assert!(SimConfig::from_value(&json!({"points": [1]})).is_err());
    assert!(SimConfig::from_value(&json!({"period": -1})).is_err());
}

#[test]
fn schema_is_json_with_the_declared_id() {
    let schema: Value = serde_json::from_str(JSON_SCHEMA).unwrap();
    assert_eq!(schema["$id"], JSON_SCHEMA_ID);
}

#[tokio::test]
async fn created_registers_data_for_every_point() {
    let (ctx, mut rx) = context();
    let _device = create(json!({"points": ["a", "b"]}), ctx).await.unwrap();
    let first = rx.recv().await.unwrap();
    assert_eq!(
        summary(&first),
        vec![
            ("gateway/data/a".to_owned(), json!({"value": 0})),
            ("gateway/data/b".to_owned(), json!({"value": 0})),
        ]
    );
}

#[tokio::test]
async fn write_registers_data_then_response() {
    let (ctx, mut rx) = context();
    let device = create(json!({"points": ["a"]}), ctx).await.unwrap();
    rx.recv().await.unwrap();
    device
        .process_event(json_event(
            &["system", "write", "a"],
            json!({"value": 42, "id": 7}),
        ))
        .await
        .unwrap();
    assert_eq!(
        summary(&rx.recv().await.unwrap()),
        vec![
            ("gateway/data/a".to_owned(), json!({"value": 42})),
            (
                "gateway/write/a".to_owned(),
                json!({"id": 7, "success": true})
            ),
        ]
    );

    device
        .process_event(json_event(
            &["system", "write", "zz"],
            json!({"value": 1, "id": "x"}),
        ))
        .await
        .unwrap();
    let answer = summary(&rx.recv().await.unwrap());
    assert_eq!(answer.len(), 1);
    assert_eq!(answer[0].0, "gateway/write/zz");
    assert_eq!(answer[0].1["success"], false);
    assert_eq!(answer[0].1["id"], "x");
    assert!(answer[0].1["error"]
        .as_str()
        .unwrap()
        .contains("unknown point"));

    let binary = Payload::Binary {
        type_name: "x".into(),
        data: vec![1],
    };
    device
        .process_event(system_event(&["system", "write", "a"], Some(binary)))
        .await
        .unwrap();
    let answer = summary(&rx.recv().await.unwrap());
    assert_eq!(answer[0].1["success"], false);
    assert_eq!(answer[0].1["id"], Value::Null);

    let no_value = Payload::Json(JsonText::new(r#"{"id": 3}"#).unwrap());
    device
        .process_event(system_event(&["system", "write", "a"], Some(no_value)))
        .await
        .unwrap();
    let answer = summary(&rx.recv().await.unwrap());
    assert_eq!(answer[0].1["success"], false);
    assert_eq!(answer[0].1["id"], 3);
}

#[tokio::test]
async fn burst_registers_in_batches_then_the_burst_event() {
    let (ctx, mut rx) = context();
    let device = create(json!({"points": ["a", "b", "c"]}), ctx)
        .await
        .unwrap();
    rx.recv().await.unwrap();
    let count = BURST_BATCH_SIZE as u64 * 2 + 5;
    device
        .process_event(json_event(
            &["system", "burst"],
            json!({"count": count, "id": 1}),
        ))
        .await
        .unwrap();
    let mut data = Vec::new();
    let mut calls = 0;
    loop {
        let batch = summary(&rx.recv().await.unwrap());
        calls += 1;
        if batch[0].0 == "gateway/burst" {
            assert_eq!(
                batch,
                vec![("gateway/burst".to_owned(), json!({"id": 1, "count": count}))]
            );
            break;
        }
        assert!(batch.len() <= BURST_BATCH_SIZE);
        data.extend(batch);
    }
    assert_eq!(calls, 4, "3 data batches and the burst event");
    assert_eq!(data.len() as u64, count);
    for (i, (event_type, value)) in data.iter().enumerate() {
        let point = ["a", "b", "c"][i % 3];
        assert_eq!(event_type, &format!("gateway/data/{point}"));
        assert_eq!(value, &json!({"value": i as u64 + 1}));
    }
    let values = device.values.lock().unwrap().clone();
    // 2005 events over 3 points: a got 1, 4, ..., 2005; b 2, ..., 2003; c 3, ..., 2004.
    assert_eq!(
        values,
        vec![json!(count), json!(count - 2), json!(count - 1)]
    );
}

#[tokio::test]
async fn bad_burst_is_answered_with_an_error() {
    let (ctx, mut rx) = context();
    let device = create(json!({}), ctx).await.unwrap();
    rx.recv().await.unwrap();
    device
        .process_event(json_event(
            &["system", "burst"],
            json!({"count": -1, "id": 2}),
        ))
        .await
        .unwrap();
    let answer = summary(&rx.recv().await.unwrap());
    assert_eq!(answer[0].0, "gateway/burst");
    assert_eq!(answer[0].1["count"], 0);
    assert_eq!(answer[0].1["id"], 2);
    assert!(answer[0].1["error"].is_string());
}

#[tokio::test(start_paused = true)]
async fn period_increments_every_point() {
    let (ctx, mut rx) = context();
    let device = create(json!({"points": ["a", "b"], "period": 1}), ctx.clone())
        .await
        .unwrap();
    rx.recv().await.unwrap();
    device
        .process_event(json_event(
            &["system", "write", "b"],
            json!({"value": 10, "id": 0}),
        ))
        .await
        .unwrap();
    rx.recv().await.unwrap();
    // Paused time: the runtime advances the clock to the next timer when idle.
    assert_eq!(
        summary(&rx.recv().await.unwrap()),
        vec![
            ("gateway/data/a".to_owned(), json!({"value": 1})),
            ("gateway/data/b".to_owned(), json!({"value": 11})),
        ]
    );
    assert_eq!(
        summary(&rx.recv().await.unwrap()),
        vec![
            ("gateway/data/a".to_owned(), json!({"value": 2})),
            ("gateway/data/b".to_owned(), json!({"value": 12})),
        ]
    );
    // Closing the device stops the periodic task.
    ctx.close_self("test");
    device.close().await;
    drop(device);
    drop(ctx);
    assert!(rx.recv().await.is_none(), "no registration after close");
}

#[tokio::test]
async fn other_events_are_ignored() {
    let (ctx, mut rx) = context();
    let device = create(json!({}), ctx).await.unwrap();
    rx.recv().await.unwrap();
    device
        .process_event(json_event(&["system", "other"], json!(1)))
        .await
        .unwrap();
    drop(device);
    assert!(rx.try_recv().is_err());
}
