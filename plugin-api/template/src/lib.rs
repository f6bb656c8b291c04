//! `{{device_type}}`: a gateway-host device plugin.
//!
//! Events (prefix `gateway/<gateway>/{{device_type}}/<device>`):
//! - registers `gateway/status` (`"CONNECTED"` after create, `"DISCONNECTED"` on close);
//! - registers `gateway/reading` `{"count": n}` every `interval` seconds (a background
//!   task);
//! - on `system/setpoint` `{"value": <number>}`, registers `gateway/setpoint` with the
//!   value it now holds. Bad payloads and unknown events are logged and ignored.

use std::sync::Mutex;
use std::time::Duration;

use gateway_plugin_api::model::{Event, RegisterEvent};
use gateway_plugin_api::sdk::tokio;
use gateway_plugin_api::sdk::{
    decode_payload, tracing, Client, ConnectionStatus, Context, Device, Error, StatusReporter,
};
use serde::Deserialize;
use serde_json::{json, Value};

/// Device type: segment 3 of the event-type prefix.
pub const DEVICE_TYPE: &str = "{{device_type}}";

gateway_plugin_api::export_plugin! {
    device_type: DEVICE_TYPE,
    json_schema_id: "vendor://{{name}}.json",
    json_schema: include_str!("../schema.json"),
    create: create,
}

/// The device's own configuration keys (the host validated them against
/// `schema.json`; host-owned keys such as `name` are ignored here).
#[derive(Debug, Deserialize)]
struct Conf {
    /// Seconds between two readings.
    #[serde(default = "default_interval")]
    interval: f64,
}

fn default_interval() -> f64 {
    1.0
}

/// `system/setpoint` payload.
#[derive(Debug, Deserialize)]
struct Setpoint {
    value: f64,
}

/// One device instance.
pub struct Plugin {
    client: Client,
    status: StatusReporter,
    setpoint: Mutex<Option<f64>>,
}

/// Creates a device: reports its status and starts its background task.
pub async fn create(conf: Value, context: Context) -> Result<Plugin, Error> {
    let conf: Conf = serde_json::from_value(conf)?;
    let interval = Duration::from_secs_f64(conf.interval);
    let client = context.client().clone();
    let status = StatusReporter::new(client.clone());
    status.set(ConnectionStatus::Connected).await?;

    let task_client = client.clone();
    // Dropped when the device closes; an error here closes the device as failed.
    context.spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await; // the first tick completes at once
        for count in 1u64.. {
            ticker.tick().await;
            let event_type = task_client.child_type("gateway/reading");
            task_client
                .register(vec![RegisterEvent::json(
                    event_type,
                    json!({"count": count}),
                )])
                .await?;
            tracing::debug!(count, "reading registered");
        }
        Ok(())
    });
    tracing::info!(interval_s = conf.interval, "device created");
    Ok(Plugin {
        client,
        status,
        setpoint: Mutex::new(None),
    })
}

impl Device for Plugin {
    async fn process_event(&self, event: Event) -> Result<(), Error> {
        match self.client.suffix(&event.event_type).as_deref() {
            Some(["system", "setpoint"]) => {
                // A bad payload is the sender's mistake: log it, keep the device running.
                let setpoint: Setpoint = match decode_payload(&event) {
                    Ok(setpoint) => setpoint,
                    Err(err) => {
                        tracing::warn!(error = %err, "setpoint ignored");
                        return Ok(());
                    }
                };
                *self.setpoint.lock().unwrap_or_else(|e| e.into_inner()) = Some(setpoint.value);
                let event_type = self.client.child_type("gateway/setpoint");
                // An error from the client (connection gone) fails the device.
                self.client
                    .register(vec![RegisterEvent::json(
                        event_type,
                        json!({"value": setpoint.value}),
                    )])
                    .await?;
            }
            _ => tracing::debug!(event_type = %event.event_type.join("/"), "event ignored"),
        }
        Ok(())
    }

    async fn close(&self) {
        // The client still works in close: the status lands before running=false.
        if let Err(err) = self.status.set(ConnectionStatus::Disconnected).await {
            tracing::debug!(error = %err, "status not registered");
        }
        tracing::info!("device closed");
    }
}

#[cfg(test)]
mod tests;
