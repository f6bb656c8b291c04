//! The plugin face: adapts the core device to the plugin SDK and exports it.

use std::sync::Arc;

use gateway_model::{Event, EventClient};
use gateway_plugin_api::sdk::{Context, Device, Error};

use crate::device::MasterDevice;

/// An `iec101_master` device as the SDK sees it.
#[derive(Debug)]
pub struct Iec101MasterDevice {
    inner: Arc<MasterDevice>,
}

/// SDK entry point: validates the entry, reads the enable events and starts the
/// device.
pub async fn create(
    conf: serde_json::Value,
    context: Context,
) -> Result<Iec101MasterDevice, Error> {
    let client: Arc<dyn EventClient> = Arc::new(context.client().clone());
    let inner = MasterDevice::create(&conf, context.prefix().to_vec(), client)
        .await
        .map(Arc::new)
        .map_err(|err| Error::new(err.to_string()))?;
    // The core task only ends early by panicking; report that as a failed device.
    let watched = inner.clone();
    context.spawn(async move {
        watched.closed().await;
        Err(Error::new("iec101_master device task ended unexpectedly"))
    });
    Ok(Iec101MasterDevice { inner })
}

impl Device for Iec101MasterDevice {
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
    hat_modules: ["hat.gateway.devices.iec101.master"],
    create: create,
}
