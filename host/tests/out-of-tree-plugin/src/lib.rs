//! An out-of-tree plugin: device type `vendor_counter`. Every event it receives
//! increments a counter, registered as `P/gateway/count` `{"count": n, "last": <payload>}`.

use std::sync::atomic::{AtomicU64, Ordering};

use gateway_plugin_api::model::{Event, RegisterEvent};
use gateway_plugin_api::sdk::{Client, Context, Device, Error};
use serde_json::{json, Value};

gateway_plugin_api::export_plugin! {
    device_type: "vendor_counter",
    json_schema_id: "vendor://counter.json",
    json_schema: r#"{"$id": "vendor://counter.json", "type": "object"}"#,
    create: create,
}

pub struct Counter {
    client: Client,
    count: AtomicU64,
}

pub async fn create(_conf: Value, context: Context) -> Result<Counter, Error> {
    Ok(Counter {
        client: context.client().clone(),
        count: AtomicU64::new(0),
    })
}

impl Device for Counter {
    async fn process_event(&self, event: Event) -> Result<(), Error> {
        let count = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        let last = event.payload.and_then(|p| p.json_value()).unwrap_or(Value::Null);
        let event_type = self.client.event_type(&["gateway", "count"]);
        self.client
            .register(vec![RegisterEvent::json(event_type, json!({"count": count, "last": last}))])
            .await?;
        Ok(())
    }
}
