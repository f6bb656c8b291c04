//! Glue the [`export_plugin!`](crate::export_plugin) expansion calls. Not a public API.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RString};
use async_ffi::{FfiFuture, FutureExt as _};
use gateway_model::{Event, QueryParams, QueryResult, RegisterEvent};
use tokio::sync::OnceCell;

use super::client::{BoxFuture, Client, ClientBackend, ClientError};
use super::device::{Context, Device, Error, Lifecycle};
use super::log::{self, DeviceLog, LogSink};
use super::runtime::{in_place_ffi, spawn_ffi};
use crate::abi::{
    FfiClientError, FfiError, FfiEvent, FfiEventType, FfiLogLevel, FfiQueryParams,
    FfiRegisterEvent, HostClientBox, HostLogFn, PluginDevice, PluginDeviceBox, PluginDevice_TO,
};

/// Called by the root-module constructor: installs log forwarding and the panic hook.
pub fn init_plugin() {
    log::install();
}

/// `PluginRoot::set_host_log`.
pub extern "C" fn set_host_log(host_log: HostLogFn) {
    log::set_host_log(host_log);
}

/// `PluginRoot::create`: builds the device on the plugin runtime.
pub fn create<D, F, Fut>(
    create: F,
    conf: RString,
    client: HostClientBox,
    prefix: FfiEventType,
) -> FfiFuture<RResult<PluginDeviceBox, FfiError>>
where
    D: Device,
    F: FnOnce(serde_json::Value, Context) -> Fut + Send + 'static,
    Fut: Future<Output = Result<D, Error>> + Send + 'static,
{
    let started = catch_unwind(AssertUnwindSafe(move || {
        let host = Arc::new(HostClientBackend { host: client });
        let log: DeviceLog = host.clone();
        let prefix = prefix.iter().map(|s| s.as_str().to_owned()).collect();
        let context = Context::with_log(Client::new(host, prefix), log.clone());
        let device_log = log.clone();
        spawn_ffi(Some(log), false, async move {
            let conf: serde_json::Value = serde_json::from_str(conf.as_str())
                .map_err(|err| FfiError::failed(format!("configuration is not JSON: {err}")))?;
            let lifecycle = context.lifecycle().clone();
            let device = create(conf, context)
                .await
                .map_err(|err| FfiError::failed(err.to_string()))?;
            let exported = ExportedDevice {
                device: Arc::new(device),
                lifecycle,
                log: device_log,
                closed: Arc::new(OnceCell::new()),
            };
            Ok(PluginDevice_TO::from_value(exported, TD_Opaque))
        })
    }));
    match started {
        Ok(future) => future,
        Err(payload) => {
            let err = FfiError::panicked(crate::panic_message(payload.as_ref()));
            async move { RResult::RErr(err) }.into_ffi()
        }
    }
}

/// A device as the host sees it.
struct ExportedDevice<D> {
    device: Arc<D>,
    lifecycle: Lifecycle,
    log: DeviceLog,
    /// Set once `Device::close` has completed.
    closed: Arc<OnceCell<()>>,
}

impl<D: Device> PluginDevice for ExportedDevice<D> {
    fn process_event(&self, event: FfiEvent) -> FfiFuture<RResult<(), FfiError>> {
        let device = self.device.clone();
        // The host builds JSON payloads only from validated `JsonText`.
        let event = event.into_event_unchecked();
        in_place_ffi(Some(self.log.clone()), false, async move {
            device
                .process_event(event)
                .await
                .map_err(|err| FfiError::failed(err.to_string()))
        })
    }

    fn close(&self) -> FfiFuture<()> {
        let device = self.device.clone();
        let closed = self.closed.clone();
        self.lifecycle.start_closing();
        // Detached: the close runs to its end even if the host stops waiting.
        let done = in_place_ffi(Some(self.log.clone()), true, async move {
            closed.get_or_init(|| device.close()).await;
            Ok(())
        });
        async move {
            if let RResult::RErr(err) = done.await {
                tracing::error!(error = %err, "closing the device failed");
            }
        }
        .into_ffi()
    }

    fn closed(&self) -> FfiFuture<()> {
        let lifecycle = self.lifecycle.clone();
        let done = in_place_ffi(None, false, async move {
            lifecycle.wait_closing().await;
            Ok(())
        });
        async move {
            let _ = done.await;
        }
        .into_ffi()
    }
}

/// The host's client, seen from the plugin.
struct HostClientBackend {
    host: HostClientBox,
}

/// The FFI mirror's client error, once, on the plugin side.
fn client_error(err: FfiClientError) -> ClientError {
    match err {
        FfiClientError::ConnectionClosed => ClientError::ConnectionClosed,
        // No host sends it (the variant stays in the ABI layout); keep its meaning.
        FfiClientError::RegisterFailed => {
            ClientError::Other("event server refused the registration".to_owned())
        }
        FfiClientError::Other(message) => ClientError::Other(message.into()),
    }
}

impl ClientBackend for HostClientBackend {
    fn register(&self, events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>> {
        let call = self
            .host
            .register(events.into_iter().map(FfiRegisterEvent::from).collect());
        Box::pin(async move { call.await.into_result().map_err(client_error) })
    }

    fn register_with_response(
        &self,
        events: Vec<RegisterEvent>,
    ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>> {
        let call = self
            .host
            .register_with_response(events.into_iter().map(FfiRegisterEvent::from).collect());
        Box::pin(async move {
            let stored = call.await.into_result().map_err(client_error)?;
            // The host builds JSON payloads only from validated `JsonText`.
            Ok(stored.into_option().map(|events| {
                events
                    .into_iter()
                    .map(FfiEvent::into_event_unchecked)
                    .collect()
            }))
        })
    }

    fn query(&self, params: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>> {
        let call = self.host.query(FfiQueryParams::from(params));
        Box::pin(async move {
            let result = call.await.into_result().map_err(client_error)?;
            Ok(result.into_query_result_unchecked())
        })
    }
}

impl LogSink for HostClientBackend {
    fn log(&self, level: FfiLogLevel, target: &str, message: &str) {
        self.host.log(level, target.into(), message.into());
    }
}
