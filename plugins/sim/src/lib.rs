//! `sim`: the simulator device, gateway-host's reference plugin.
//!
//! Event contract (`docs/architecture.md`, the `sim` device contract), with `P` the device prefix:
//! - created: `P/gateway/data/<point>` `{"value": <current>}` for every point;
//! - every `period` seconds: each point goes up by 1 and its data event is registered;
//! - `P/system/write/<point>` `{"value": v, "id": x}`: `P/gateway/data/<point>`
//!   `{"value": v}` then `P/gateway/write/<point>` `{"id": x, "success": true}` (one
//!   registration, in that order); unknown point or bad payload:
//!   `{"id": x, "success": false, "error": "..."}`;
//! - `P/system/burst` `{"count": n, "id": x}`: `n` data events (points in turn, value =
//!   sequence number 1..=n) registered in batches of [`BURST_BATCH_SIZE`] as fast as
//!   possible, then `P/gateway/burst` `{"id": x, "count": n}`. A bad burst payload
//!   gets `{"id": x, "count": 0, "error": "..."}`.
//!
//! Values start at 0. A point whose value was written as a non-number restarts at 0
//! on the next periodic increment.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use gateway_plugin_api::model::{Event, JsonText, Payload, RegisterEvent};
use gateway_plugin_api::sdk::{tracing, Client, Context, Device, Error};
use serde_json::{json, Value};

/// Device type.
pub const DEVICE_TYPE: &str = "sim";

/// `json_schema_id` of the configuration; the schema is `schemas/sim.json`.
pub const JSON_SCHEMA_ID: &str = "gateway-host://sim.json";

/// The configuration schema (JSON text).
pub const JSON_SCHEMA: &str = include_str!("../../../schemas/sim.json");

/// Events per registration during a burst: large enough to amortise the per-call
/// cost, small enough that one message stays well below the wire limits.
pub const BURST_BATCH_SIZE: usize = 1000;

gateway_plugin_api::export_plugin! {
    device_type: DEVICE_TYPE,
    json_schema_id: JSON_SCHEMA_ID,
    json_schema: JSON_SCHEMA,
    create: create,
}

/// Parsed device configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Point names (default `["p0"]`).
    pub points: Vec<String>,
    /// Time between spontaneous changes; `None` = none.
    pub period: Option<Duration>,
}

impl SimConfig {
    /// Reads the device entry (already validated against the schema by the host; the
    /// checks here keep a statically linked device safe too).
    pub fn from_value(conf: &Value) -> Result<Self, Error> {
        let points = match conf.get("points") {
            None | Some(Value::Null) => vec!["p0".to_owned()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item.as_str() {
                    Some(name) if !name.is_empty() => Ok(name.to_owned()),
                    _ => Err(Error::new("points: every point must be a non-empty string")),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(Error::new("points: must be a list of strings")),
        };
        if points.is_empty() {
            return Err(Error::new("points: at least one point is needed"));
        }
        let period = match conf.get("period") {
            None | Some(Value::Null) => None,
            Some(value) => match value.as_f64() {
                Some(0.0) => None,
                Some(secs) if secs > 0.0 && secs.is_finite() => Some(Duration::from_secs_f64(secs)),
                _ => return Err(Error::new("period: must be a non-negative number")),
            },
        };
        Ok(Self { points, period })
    }
}

/// Point values, shared by the device and its periodic task.
type Values = Arc<Mutex<Vec<Value>>>;

/// A simulator device.
pub struct SimDevice {
    client: Client,
    points: Vec<String>,
    values: Values,
}

impl std::fmt::Debug for SimDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimDevice")
            .field("client", &self.client)
            .field("points", &self.points)
            .finish_non_exhaustive()
    }
}

/// `create`: registers the initial data events and starts the periodic task.
pub async fn create(conf: Value, context: Context) -> Result<SimDevice, Error> {
    let config = SimConfig::from_value(&conf)?;
    let values: Values = Arc::new(Mutex::new(vec![json!(0); config.points.len()]));
    let device = SimDevice {
        client: context.client().clone(),
        points: config.points,
        values,
    };
    let initial = device.data_events_for_all();
    device.client.register(initial).await?;
    if let Some(period) = config.period {
        let client = device.client.clone();
        let points = device.points.clone();
        let values = device.values.clone();
        context.spawn(periodic_changes(client, points, values, period));
    }
    tracing::debug!(points = device.points.len(), "sim device created");
    Ok(device)
}

async fn periodic_changes(
    client: Client,
    points: Vec<String>,
    values: Values,
    period: Duration,
) -> Result<(), Error> {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // The task is dropped when the device closes (`Context::spawn`).
        interval.tick().await;
        let events = {
            let mut values = values.lock().unwrap_or_else(PoisonError::into_inner);
            for value in values.iter_mut() {
                *value = increment(value);
            }
            points
                .iter()
                .zip(values.iter())
                .map(|(point, value)| data_event(&client, point, value.clone()))
                .collect()
        };
        client.register(events).await?;
    }
}

fn increment(value: &Value) -> Value {
    if let Some(n) = value.as_i64() {
        json!(n.saturating_add(1))
    } else if let Some(x) = value.as_f64() {
        json!(x + 1.0)
    } else {
        json!(0)
    }
}

fn data_event(client: &Client, point: &str, value: Value) -> RegisterEvent {
    RegisterEvent::json(
        client.event_type(&["gateway", "data", point]),
        json!({ "value": value }),
    )
}

/// `{"value":<n>}` written straight as text: the same text as
/// `Payload::json(json!({"value": n}))`, without building a JSON map (its key and node
/// allocations) and serializing it for every event of a burst.
fn value_payload(n: u64) -> Payload {
    use std::fmt::Write as _;
    // `{"value":` + at most 20 digits + `}`.
    let mut text = String::with_capacity(30);
    // Writing into a `String` cannot fail.
    let _ = write!(text, "{{\"value\":{n}}}");
    // An object with one key and an integer: valid JSON by construction.
    Payload::Json(JsonText::new_unchecked(text))
}

fn json_payload(event: &Event) -> Option<Value> {
    match &event.payload {
        Some(Payload::Json(text)) => Some(text.value()),
        _ => None,
    }
}

impl SimDevice {
    fn data_events_for_all(&self) -> Vec<RegisterEvent> {
        let values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        self.points
            .iter()
            .zip(values.iter())
            .map(|(point, value)| data_event(&self.client, point, value.clone()))
            .collect()
    }

    async fn write(&self, point: &str, payload: Option<Value>) -> Result<(), Error> {
        let id = payload
            .as_ref()
            .and_then(|p| p.get("id"))
            .cloned()
            .unwrap_or(Value::Null);
        let response_type = self.client.event_type(&["gateway", "write", point]);
        let index = self.points.iter().position(|p| p == point);
        let value = payload.as_ref().and_then(|p| p.get("value")).cloned();
        let events = match (index, value) {
            (Some(index), Some(value)) => {
                self.values.lock().unwrap_or_else(PoisonError::into_inner)[index] = value.clone();
                vec![
                    data_event(&self.client, point, value),
                    RegisterEvent::json(response_type, json!({"id": id, "success": true})),
                ]
            }
            (None, _) => vec![RegisterEvent::json(
                response_type,
                json!({"id": id, "success": false, "error": format!("unknown point {point:?}")}),
            )],
            (Some(_), None) => vec![RegisterEvent::json(
                response_type,
                json!({"id": id, "success": false,
                       "error": "payload must be a JSON object with a \"value\""}),
            )],
        };
        self.client.register(events).await?;
        Ok(())
    }

    async fn burst(&self, payload: Option<Value>) -> Result<(), Error> {
        let id = payload
            .as_ref()
            .and_then(|p| p.get("id"))
            .cloned()
            .unwrap_or(Value::Null);
        let burst_type = self.client.event_type(&["gateway", "burst"]);
        let Some(count) = payload
            .as_ref()
            .and_then(|p| p.get("count"))
            .and_then(Value::as_u64)
        else {
            tracing::warn!(
                "burst payload must be {{\"count\": <non-negative integer>, \"id\": ...}}"
            );
            let answer = json!({"id": id, "count": 0,
                                "error": "payload must be a JSON object with a non-negative integer \"count\""});
            self.client
                .register(vec![RegisterEvent::json(burst_type, answer)])
                .await?;
            return Ok(());
        };
        let point_types: Vec<_> = self
            .points
            .iter()
            .map(|point| self.client.event_type(&["gateway", "data", point]))
            .collect();
        let mut batch = Vec::with_capacity(BURST_BATCH_SIZE);
        for sequence in 1..=count {
            let index = ((sequence - 1) % point_types.len() as u64) as usize;
            batch.push(RegisterEvent {
                event_type: point_types[index].clone(),
                source_timestamp: None,
                payload: Some(value_payload(sequence)),
            });
            if batch.len() == BURST_BATCH_SIZE {
                self.client.register(std::mem::take(&mut batch)).await?;
                batch.reserve(BURST_BATCH_SIZE);
            }
        }
        if !batch.is_empty() {
            self.client.register(batch).await?;
        }
        {
            let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
            let points = values.len() as u64;
            for (index, value) in values.iter_mut().enumerate() {
                // The last sequence number this point received, if any.
                let index = index as u64;
                if count > index {
                    *value = json!(count - (count - 1 - index) % points);
                }
            }
        }
        self.client
            .register(vec![RegisterEvent::json(
                burst_type,
                json!({"id": id, "count": count}),
            )])
            .await?;
        Ok(())
    }
}

impl Device for SimDevice {
    async fn process_event(&self, event: Event) -> Result<(), Error> {
        let prefix_len = self.client.prefix().len();
        let suffix: Vec<&str> = event
            .event_type
            .iter()
            .skip(prefix_len)
            .map(String::as_str)
            .collect();
        match suffix.as_slice() {
            ["system", "write", point] => self.write(point, json_payload(&event)).await,
            ["system", "burst"] => self.burst(json_payload(&event)).await,
            _ => {
                tracing::debug!(event_type = ?event.event_type, "event ignored");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests;
