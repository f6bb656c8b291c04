//! The plugin face: adapts the core device to the plugin SDK and exports it.

use std::sync::Arc;

use gateway_model::{Event, EventType, QueryLatestParams, QueryParams, RegisterEvent};
use gateway_plugin_api::sdk::{BoxFuture, Client, Context, Device, Error};

use crate::device::{EventSink, SinkError, SlaveDevice};

/// The SDK client as the core's event sink.
struct ClientSink(Client);

impl EventSink for ClientSink {
    fn register(&self, events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            self.0
                .register(events)
                .await
                .map_err(|err| SinkError(err.to_string()))
        })
    }

    fn query_latest(
        &self,
        event_types: Vec<EventType>,
    ) -> BoxFuture<'_, Result<Vec<Event>, SinkError>> {
        Box::pin(async move {
            let params = QueryParams::Latest(QueryLatestParams {
                event_types: Some(event_types),
            });
            self.0
                .query(params)
                .await
                .map(|result| result.events)
                .map_err(|err| SinkError(err.to_string()))
        })
    }
}

/// An `iec101_slave` device as the SDK sees it.
#[derive(Debug)]
pub struct Iec101SlaveDevice {
    inner: Arc<SlaveDevice>,
}

/// SDK entry point: validates the entry, reads the current values and opens the link.
pub async fn create(conf: serde_json::Value, context: Context) -> Result<Iec101SlaveDevice, Error> {
    let sink = Arc::new(ClientSink(context.client().clone()));
    let inner = SlaveDevice::create(&conf, context.prefix().to_vec(), sink)
        .await
        .map(Arc::new)
        .map_err(|err| Error::new(err.to_string()))?;
    // The core task only ends early by panicking; report that as a failed device.
    let watched = inner.clone();
    context.spawn(async move {
        watched.closed().await;
        Err(Error::new("iec101_slave device task ended unexpectedly"))
    });
    Ok(Iec101SlaveDevice { inner })
}

impl Device for Iec101SlaveDevice {
    async fn process_event(&self, event: Event) -> Result<(), Error> {
        self.inner.process_event(event).await;
        Ok(())
    }

    async fn close(&self) {
        self.inner.close().await;
    }
}

gateway_plugin_api::export_plugin! {
    device_type: crate::DEVICE_TYPE,
    json_schema_id: crate::JSON_SCHEMA_ID,
    json_schema: crate::JSON_SCHEMA,
    create: create,
}
