//! Unit tests with the SDK's test kit: no host, a recording client, paused time.

use gateway_plugin_api::sdk::testing::{block_on_paused, DeviceTest};
use gateway_plugin_api::sdk::tokio;
use serde_json::json;

use super::{create, DEVICE_TYPE};

#[test]
fn reports_status_readings_and_setpoints() {
    block_on_paused(async {
        let conf = json!({"name": "d1", "module": "{{name}}", "interval": 10});
        let mut test = DeviceTest::create(DEVICE_TYPE, conf, create).await.unwrap();
        test.expect_registered("gateway/status", json!("CONNECTED"))
            .await;
        // Paused time: the 10 s interval passes as soon as the test waits.
        let start = tokio::time::Instant::now();
        test.expect_registered("gateway/reading", json!({"count": 1}))
            .await;
        assert_eq!(start.elapsed().as_secs(), 10);

        test.send("system/setpoint", json!({"value": 21.5}))
            .await
            .unwrap();
        test.expect_registered("gateway/setpoint", json!({"value": 21.5}))
            .await;
        // A bad payload is ignored, not a failure.
        test.send("system/setpoint", json!("hot")).await.unwrap();
        test.assert_quiet();

        test.close().await;
        test.expect_registered("gateway/status", json!("DISCONNECTED"))
            .await;
        // The background task stopped with the device: no more readings.
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        test.assert_quiet();
    });
}
