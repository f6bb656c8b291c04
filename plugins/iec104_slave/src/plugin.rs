//! The plugin face: adapts the core device to the plugin SDK and exports it.

use std::sync::Arc;

use gateway_model::{Event, EventClient};
use gateway_plugin_api::sdk::{Context, Device, Error};

use crate::device::SlaveDevice;

/// An `iec104_slave` device as the SDK sees it.
#[derive(Debug)]
pub struct Iec104SlaveDevice {
    inner: Arc<SlaveDevice>,
}

/// SDK entry point: validates the entry, reads the current values and listens.
pub async fn create(conf: serde_json::Value, context: Context) -> Result<Iec104SlaveDevice, Error> {
    let client: Arc<dyn EventClient> = Arc::new(context.client().clone());
    let inner = SlaveDevice::create(&conf, context.prefix().to_vec(), client)
        .await
        .map(Arc::new)
        .map_err(|err| Error::new(err.to_string()))?;
    // The core task only ends early by panicking; report that as a failed device.
    let watched = inner.clone();
    context.spawn(async move {
        watched.closed().await;
        Err(Error::new("iec104_slave device task ended unexpectedly"))
    });
    Ok(Iec104SlaveDevice { inner })
}

impl Device for Iec104SlaveDevice {
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
    hat_modules: ["hat.gateway.devices.iec104.slave"],
    create: create,
}
