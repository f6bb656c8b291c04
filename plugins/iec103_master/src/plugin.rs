//! The plugin face: adapts the core device to the plugin SDK and exports it.

use std::sync::Arc;

use gateway_model::{Event, EventClient};
use gateway_plugin_api::sdk::{Context, Device, Error};

use crate::device::MasterDevice;
use crate::serial::SerialOpener;

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
    let client: Arc<dyn EventClient> = Arc::new(context.client().clone());
    let inner = MasterDevice::create(
        &conf,
        context.prefix().to_vec(),
        client,
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
    hat_modules: ["hat.gateway.devices.iec103.master"],
    create: create,
}
