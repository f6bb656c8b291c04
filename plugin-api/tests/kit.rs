//! The test kit itself: paused time, the host's close order, self-closing devices,
//! query answers, client failures, and expectations that fail.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gateway_plugin_api::model::{Event, QueryParams, RegisterEvent};
use gateway_plugin_api::sdk::testing::{block_on, block_on_paused, event, Call, DeviceTest};
use gateway_plugin_api::sdk::tokio;
use gateway_plugin_api::sdk::{Client, ClientError, Context, Device, Error};
use serde_json::{json, Value};

/// Registers `gateway/tick` every hour; on `system/query` queries and registers the
/// number of events found; on `system/fail` makes its background task fail.
struct Probe {
    client: Client,
    context: Context,
    closing_seen_in_close: Arc<AtomicBool>,
}

async fn create(_conf: Value, context: Context) -> Result<Probe, Error> {
    let client = context.client().clone();
    let ticks = client.clone();
    context.spawn(async move {
        for n in 1.. {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            let event_type = ticks.child_type("gateway/tick");
            ticks
                .register(vec![RegisterEvent::json(event_type, json!(n))])
                .await?;
        }
        Ok(())
    });
    Ok(Probe {
        client,
        context,
        closing_seen_in_close: Arc::new(AtomicBool::new(false)),
    })
}

impl Device for Probe {
    async fn process_event(&self, event: Event) -> Result<(), Error> {
        match self.client.suffix(&event.event_type).as_deref() {
            Some(["system", "query"]) => {
                let result = self
                    .client
                    .query(QueryParams::Latest(Default::default()))
                    .await?;
                let event_type = self.client.child_type("gateway/found");
                self.client
                    .register(vec![RegisterEvent::json(
                        event_type,
                        json!(result.events.len()),
                    )])
                    .await?;
            }
            Some(["system", "fail"]) => {
                self.context
                    .spawn(async { Err(Error::new("background failure")) });
            }
            _ => {}
        }
        Ok(())
    }

    async fn close(&self) {
        self.closing_seen_in_close
            .store(self.context.is_closing(), Ordering::SeqCst);
    }
}

async fn probe() -> DeviceTest<Probe> {
    DeviceTest::create("probe", json!({"name": "p1"}), create)
        .await
        .unwrap()
}

#[test]
fn paused_time_runs_timers_at_once_and_close_stops_background_tasks() {
    block_on_paused(async {
        let mut test = probe().await;
        assert_eq!(test.prefix(), ["gateway", "gw", "probe", "p1"]);
        let start = tokio::time::Instant::now();
        test.expect_registered("gateway/tick", json!(1)).await;
        test.expect_registered("gateway/tick", json!(2)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(7200));

        test.close().await;
        // The host's order: the context is closing before `Device::close` runs.
        assert!(test.device().closing_seen_in_close.load(Ordering::SeqCst));
        tokio::time::sleep(Duration::from_secs(10 * 3600)).await;
        test.assert_quiet();
    });
}

#[test]
fn a_failing_background_task_closes_the_device() {
    block_on(async {
        let test = probe().await;
        assert!(!test.is_closing());
        test.send("system/fail", json!(null)).await.unwrap();
        test.wait_closed_by_itself().await;
        assert!(test.is_closing());
    });
}

#[test]
fn queries_are_answered_and_recorded() {
    block_on(async {
        let mut test = probe().await;
        let prefix = test.prefix().to_vec();
        test.backend().answer_queries_with(vec![
            event(&prefix, "a", json!(1)),
            event(&prefix, "b", json!(2)),
        ]);
        test.send("system/query", json!(null)).await.unwrap();
        assert!(matches!(
            test.calls().next_call().await,
            Call::Query(QueryParams::Latest(_))
        ));
        test.expect_registered("gateway/found", json!(2)).await;
        let calls = test.disable().await;
        drop(calls);
    });
}

#[test]
fn client_failures_reach_the_device() {
    block_on(async {
        let test = probe().await;
        test.backend()
            .fail_with(Some(ClientError::ConnectionClosed));
        let err = test.send("system/query", json!(null)).await.unwrap_err();
        assert_eq!(err.message(), "event server connection closed");
    });
}

#[test]
#[should_panic(expected = "registered event")]
fn a_wrong_expectation_fails_the_test() {
    block_on_paused(async {
        let mut test = probe().await;
        test.expect_registered("gateway/tick", json!(99)).await;
    });
}

#[test]
#[should_panic(expected = "unexpected client call")]
fn assert_quiet_fails_on_an_unread_call() {
    block_on(async {
        let test = probe().await;
        test.send("system/query", json!(null)).await.unwrap();
        let mut test = test;
        test.assert_quiet();
    });
}

#[test]
fn status_reporter_registers_changes_only_and_payload_errors_name_the_event() {
    use gateway_plugin_api::sdk::testing::{summary, test_prefix, RecordingBackend};
    use gateway_plugin_api::sdk::{decode_payload, ConnectionStatus, PayloadError, StatusReporter};
    block_on(async {
        let (backend, mut calls) = RecordingBackend::new();
        let client = Client::new(backend.clone(), test_prefix("probe", "p1"));
        let status = StatusReporter::new(client.clone());
        assert!(status.set(ConnectionStatus::Connecting).await.unwrap());
        assert!(!status.set(ConnectionStatus::Connecting).await.unwrap());
        assert!(status.set(ConnectionStatus::Connected).await.unwrap());
        for expected in ["CONNECTING", "CONNECTED"] {
            let event = calls.next_event().await;
            assert_eq!(
                summary(client.prefix(), &event),
                ("gateway/status".to_owned(), json!(expected))
            );
        }
        calls.assert_quiet();
        // A failed registration is tried again by the next `set`.
        backend.fail_with(Some(ClientError::ConnectionClosed));
        assert!(status.set(ConnectionStatus::Disconnected).await.is_err());
        backend.fail_with(None);
        assert!(status.set(ConnectionStatus::Disconnected).await.unwrap());
        assert_eq!(status.last(), Some(ConnectionStatus::Disconnected));

        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Setpoint {
            value: f64,
        }
        let bad = event(client.prefix(), "system/setpoint", json!({"value": "hot"}));
        let err = decode_payload::<Setpoint>(&bad).unwrap_err();
        assert!(matches!(err, PayloadError::Invalid { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("gateway/gw/probe/p1/system/setpoint: unexpected payload"),
            "{err}"
        );
        let mut none = bad.clone();
        none.payload = None;
        assert!(matches!(
            decode_payload::<Setpoint>(&none),
            Err(PayloadError::Missing { .. })
        ));
    });
}
