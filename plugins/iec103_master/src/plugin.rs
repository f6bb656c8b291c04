//! The plugin face: adapts the core device to the plugin SDK and exports it.

use std::sync::Arc;

use gateway_model::{Event, EventType, QueryLatestParams, QueryParams, RegisterEvent};
use gateway_plugin_api::sdk::{BoxFuture, Client, Context, Device, Error};

use crate::device::{EventSink, MasterDevice, SinkError};
use crate::serial::SerialOpener;

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

/// An `iec103_master` device as the SDK sees it.
#[derive(Debug)]
pub struct Iec103MasterDevice {
    inner: Arc<MasterDevice>,
}

/// SDK entry point: validates the entry, queries the enable events and starts the
/// device on the configured serial port.
pub async fn create(
    conf: serde_json::Value,
    context: Context,
) -> Result<Iec103MasterDevice, Error> {
    let sink = Arc::new(ClientSink(context.client().clone()));
    let inner = MasterDevice::create(
        &conf,
        context.prefix().to_vec(),
        sink,
        Arc::new(SerialOpener),
    )
    .await
    .map(Arc::new)
    .map_err(|err| Error::new(err.to_string()))?;
    // The core task only ends early by panicking; report that as a failed device.
    let watched = inner.clone();
    context.spawn(async move {
        watched.closed().await;
        Err(Error::new("iec103_master device task ended unexpectedly"))
    });
    Ok(Iec103MasterDevice { inner })
}

impl Device for Iec103MasterDevice {
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
