//! Unit tests of the simulator's event contract, run with the SDK test kit
//! (`sdk::testing`): its recording client keeps every registration call, so the
//! batching of each answer is checked as well as its events.

use gateway_plugin_api::model::{JsonText, Payload, RegisterEvent};
use gateway_plugin_api::sdk::testing::{self, block_on, block_on_paused, within, DeviceTest};
use serde_json::{json, Value};

use super::*;

/// The simulator under test, named `s1`, created from `conf` plus that name; the
/// initial data registration is left unread.
async fn sim(mut conf: Value) -> DeviceTest<SimDevice> {
    conf["name"] = json!("s1");
    DeviceTest::create(DEVICE_TYPE, conf, create).await.unwrap()
}

/// Like [`sim`], with the initial data registration read and dropped.
async fn started(conf: Value) -> DeviceTest<SimDevice> {
    let mut test = sim(conf).await;
    test.calls().next_register().await;
    test
}

/// One registration call's events as `(suffix after the prefix, JSON payload)`.
fn summary(prefix: &[String], events: &[RegisterEvent]) -> Vec<(String, Value)> {
    events
        .iter()
        .map(|event| testing::summary(prefix, event))
        .collect()
}

/// The next fire-and-forget registration call, summarised.
async fn next_batch(test: &mut DeviceTest<SimDevice>) -> Vec<(String, Value)> {
    let events = test.calls().next_register().await;
    summary(test.prefix(), &events)
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

#[test]
fn created_registers_data_for_every_point() {
    block_on(async {
        let mut test = sim(json!({"points": ["a", "b"]})).await;
        assert_eq!(test.prefix(), ["gateway", "gw", "sim", "s1"]);
        assert_eq!(
            next_batch(&mut test).await,
            vec![
                ("gateway/data/a".to_owned(), json!({"value": 0})),
                ("gateway/data/b".to_owned(), json!({"value": 0})),
            ]
        );
    });
}

#[test]
fn write_registers_data_then_response() {
    block_on(async {
        let mut test = started(json!({"points": ["a"]})).await;
        test.send("system/write/a", json!({"value": 42, "id": 7}))
            .await
            .unwrap();
        assert_eq!(
            next_batch(&mut test).await,
            vec![
                ("gateway/data/a".to_owned(), json!({"value": 42})),
                (
                    "gateway/write/a".to_owned(),
                    json!({"id": 7, "success": true})
                ),
            ]
        );

        test.send("system/write/zz", json!({"value": 1, "id": "x"}))
            .await
            .unwrap();
        let answer = next_batch(&mut test).await;
        assert_eq!(answer.len(), 1);
        assert_eq!(answer[0].0, "gateway/write/zz");
        assert_eq!(answer[0].1["success"], false);
        assert_eq!(answer[0].1["id"], "x");
        assert!(answer[0].1["error"]
            .as_str()
            .unwrap()
            .contains("unknown point"));

        let mut binary = test.event("system/write/a", Value::Null);
        binary.payload = Some(Payload::Binary {
            type_name: "x".into(),
            data: vec![1],
        });
        test.process(binary).await.unwrap();
        let answer = next_batch(&mut test).await;
        assert_eq!(answer[0].0, "gateway/write/a");
        assert_eq!(answer[0].1["success"], false);
        assert_eq!(answer[0].1["id"], Value::Null);

        let mut no_value = test.event("system/write/a", Value::Null);
        no_value.payload = Some(Payload::Json(JsonText::new(r#"{"id": 3}"#).unwrap()));
        test.process(no_value).await.unwrap();
        let answer = next_batch(&mut test).await;
        assert_eq!(answer[0].1["success"], false);
        assert_eq!(answer[0].1["id"], 3);
        test.assert_quiet();
    });
}

#[test]
fn burst_registers_in_batches_then_the_burst_event() {
    block_on(async {
        let mut test = started(json!({"points": ["a", "b", "c"]})).await;
        let count = BURST_BATCH_SIZE as u64 * 2 + 5;
        test.send("system/burst", json!({"count": count, "id": 1}))
            .await
            .unwrap();
        let mut data = Vec::new();
        let mut calls = 0;
        loop {
            let batch = next_batch(&mut test).await;
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
        let values = test.device().values.lock().unwrap().clone();
        // 2005 events over 3 points: a got 1, 4, ..., 2005; b 2, ..., 2003; c 3, ..., 2004.
        assert_eq!(
            values,
            vec![json!(count), json!(count - 2), json!(count - 1)]
        );
    });
}

#[test]
fn bad_burst_is_answered_with_an_error() {
    block_on(async {
        let mut test = started(json!({})).await;
        test.send("system/burst", json!({"count": -1, "id": 2}))
            .await
            .unwrap();
        let answer = next_batch(&mut test).await;
        assert_eq!(answer.len(), 1);
        assert_eq!(answer[0].0, "gateway/burst");
        assert_eq!(answer[0].1["count"], 0);
        assert_eq!(answer[0].1["id"], 2);
        assert!(answer[0].1["error"].is_string());
    });
}

#[test]
fn period_increments_every_point() {
    // Paused time: the runtime advances the clock to the next timer when idle.
    block_on_paused(async {
        let mut test = started(json!({"points": ["a", "b"], "period": 1})).await;
        test.send("system/write/b", json!({"value": 10, "id": 0}))
            .await
            .unwrap();
        next_batch(&mut test).await;
        assert_eq!(
            next_batch(&mut test).await,
            vec![
                ("gateway/data/a".to_owned(), json!({"value": 1})),
                ("gateway/data/b".to_owned(), json!({"value": 11})),
            ]
        );
        assert_eq!(
            next_batch(&mut test).await,
            vec![
                ("gateway/data/a".to_owned(), json!({"value": 2})),
                ("gateway/data/b".to_owned(), json!({"value": 12})),
            ]
        );
        // Closing the device stops the periodic task: once it is dropped, the last
        // holder of the recording client is gone and the log ends with no further call
        // (a task still running would register at the next tick instead).
        let mut calls = test.disable().await;
        let after_close = within("the call log to end", calls.recv()).await;
        assert!(
            after_close.is_none(),
            "registration after close: {after_close:?}"
        );
    });
}

#[test]
fn other_events_are_ignored() {
    block_on(async {
        let mut test = started(json!({})).await;
        test.send("system/other", json!(1)).await.unwrap();
        test.assert_quiet();
    });
}

#[test]
fn burst_payload_text_is_what_serde_json_writes() {
    for n in [0, 1, 9, 10, 12_345, u64::MAX] {
        let written = value_payload(n);
        assert_eq!(written, Payload::json(json!({ "value": n })), "value {n}");
        let Payload::Json(text) = written else {
            panic!("not JSON")
        };
        assert_eq!(JsonText::new(text.as_str()).unwrap(), text);
    }
}
