//! The host side of the boundary: a loaded plugin as a [`DeviceFactory`], its devices
//! as [`DeviceInstance`]s, and the host's [`DeviceClient`] as the FFI host client the
//! plugin calls.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RStr, RString, RVec};
use async_ffi::{FfiFuture, FutureExt as _};
use futures::future::BoxFuture;
use gateway_model::{Event, QueryParams, RegisterEvent};
use gateway_plugin_api::abi::{
    FfiClientError, FfiError, FfiErrorKind, FfiEvent, FfiEventType, FfiLogLevel, FfiQueryParams,
    FfiQueryResult, FfiRegisterEvent, HostClient, HostClient_TO, PluginDeviceBox, PluginRootRef,
};

use super::call_thread::{CallError, CallThread, Slot};
use super::log::emit_plugin_log;
use super::PluginInfo;
use crate::device::{
    ClientError, DeviceClient, DeviceContext, DeviceError, DeviceFactory, DeviceInstance,
    FactoryOrigin, FileStamp,
};

/// A loaded plugin library: what `module` resolves to. Implements [`DeviceFactory`].
pub struct LoadedPlugin {
    info: PluginInfo,
    root: PluginRootRef,
    /// The library file when it was loaded.
    stamp: Option<FileStamp>,
}

impl LoadedPlugin {
    pub(crate) fn new(info: PluginInfo, root: PluginRootRef, stamp: Option<FileStamp>) -> Self {
        Self { info, root, stamp }
    }

    /// What the plugin declares about itself, and its file.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

fn device_error(err: FfiError) -> DeviceError {
    match err.kind {
        FfiErrorKind::Failed => DeviceError::Failed(err.message.into()),
        FfiErrorKind::Panicked => DeviceError::Panicked(err.message.into()),
    }
}

impl DeviceFactory for LoadedPlugin {
    fn device_type(&self) -> &str {
        &self.info.device_type
    }

    fn json_schema_id(&self) -> Option<&str> {
        self.info.json_schema_id.as_deref()
    }

    fn json_schema(&self) -> Option<&serde_json::Value> {
        self.info.json_schema.as_ref()
    }

    fn origin(&self) -> Option<FactoryOrigin> {
        Some(FactoryOrigin {
            path: self.info.path.clone(),
            stamp: self.stamp,
        })
    }

    fn create(
        &self,
        conf: serde_json::Value,
        context: DeviceContext,
    ) -> BoxFuture<'static, Result<Box<dyn DeviceInstance>, DeviceError>> {
        // Every call of the device, its synchronous part included, runs on the
        // device's task in the plugin call pool (`call_thread`): a plugin that blocks
        // cannot take a host worker with it.
        let name = context.prefix.last().map_or("", String::as_str).to_owned();
        let thread = match CallThread::spawn(&name) {
            Ok(thread) => Arc::new(thread),
            Err(err) => {
                let err = DeviceError::Failed(format!(
                    "cannot start the thread for the device's plugin calls: {err}"
                ));
                return Box::pin(std::future::ready(Err(err)));
            }
        };
        let adapter = HostClientAdapter {
            client: context.client,
            span: context.span,
            runtime: tokio::runtime::Handle::try_current().ok(),
        };
        let client = HostClient_TO::from_value(adapter, TD_Opaque);
        let prefix: FfiEventType = context
            .prefix
            .iter()
            .map(|s| RString::from(s.as_str()))
            .collect();
        let root = self.root;
        let conf = RString::from(conf.to_string());
        let call = thread.call(
            Slot::Call,
            move || {
                let create = root.create();
                create(conf, client, prefix)
            },
            // The host stopped waiting (create timeout, enable=false, shutdown) and
            // the plugin produced an instance after all: close it, here.
            |created| match created {
                RResult::ROk(device) => Some(Box::pin(async move {
                    tracing::info!("abandoned device create finished; closing the instance");
                    device.close().await;
                }) as BoxFuture<'static, ()>),
                RResult::RErr(_) => None,
            },
        );
        Box::pin(async move {
            // A panic that escapes the plugin (the SDK lets none out; a hand-written
            // plugin might) is re-raised by async-ffi and caught on the call pool.
            match call.await.map_err(call_error)? {
                RResult::ROk(device) => Ok(Box::new(PluginDevice {
                    device: Arc::new(device),
                    thread,
                }) as Box<dyn DeviceInstance>),
                RResult::RErr(err) => Err(device_error(err)),
            }
        })
    }
}

fn call_error(err: CallError) -> DeviceError {
    match err {
        CallError::Panicked(message) => DeviceError::Panicked(message),
        CallError::ThreadGone => DeviceError::Failed("the device's call task ended".to_owned()),
    }
}

/// A device instance inside a plugin library, and its task on the call pool.
struct PluginDevice {
    device: Arc<PluginDeviceBox>,
    thread: Arc<CallThread>,
}

impl DeviceInstance for PluginDevice {
    fn process_event(&self, event: Event) -> BoxFuture<'_, Result<(), DeviceError>> {
        let device = self.device.clone();
        // By value: the event's buffers move into the FFI mirror (on the call pool).
        let call = self.thread.call(
            Slot::Call,
            move || device.process_event(FfiEvent::from(event)),
            |_| None,
        );
        Box::pin(async move {
            call.await
                .map_err(call_error)?
                .into_result()
                .map_err(device_error)
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        let device = self.device.clone();
        let call = self
            .thread
            .call(Slot::Call, move || device.close(), |()| None);
        Box::pin(async move {
            if let Err(err) = call.await {
                tracing::error!(error = ?err, "device close failed");
            }
        })
    }

    fn closed(&self) -> BoxFuture<'_, ()> {
        let device = self.device.clone();
        let call = self
            .thread
            .call(Slot::Watch, move || device.closed(), |()| None);
        Box::pin(async move {
            if let Err(err) = call.await {
                tracing::error!(error = ?err, "device closed() failed");
            }
        })
    }
}

/// The host's event client, as the plugin sees it.
struct HostClientAdapter {
    client: Arc<dyn DeviceClient>,
    /// The device's span: plugin log records are emitted inside it.
    span: tracing::Span,
    /// The host runtime `create` was called on. Client futures are polled on the
    /// plugin call pool when a call comes from `process_event` (the SDK polls it
    /// in place there), but on the plugin's own threads when it comes from `create`
    /// or a background task; entering this runtime on each poll lets the host's
    /// client use timers and I/O in every case without a thread hop.
    runtime: Option<tokio::runtime::Handle>,
}

impl HostClientAdapter {
    fn host_future<T, F>(&self, future: F) -> FfiFuture<T>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        InRuntime {
            runtime: self.runtime.clone(),
            future: Box::pin(future),
        }
        .into_ffi()
    }
}

/// Polls `future` inside the host runtime's context.
struct InRuntime<F> {
    runtime: Option<tokio::runtime::Handle>,
    future: Pin<Box<F>>,
}

impl<F: Future> Future for InRuntime<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _entered = self.runtime.as_ref().map(tokio::runtime::Handle::enter);
        self.future.as_mut().poll(cx)
    }
}

/// The client error in the FFI mirror, once, on the host side.
fn ffi_client_error(err: ClientError) -> FfiClientError {
    match err {
        ClientError::ConnectionClosed => FfiClientError::ConnectionClosed,
        ClientError::Other(reason) => FfiClientError::Other(reason.into()),
        #[allow(deprecated)] // never constructed; mapped for completeness
        ClientError::RegisterFailed => FfiClientError::RegisterFailed,
    }
}

/// Converts what a plugin asks to register, validating JSON payload text: the SDK
/// only builds it from `JsonText`, but a plugin is third-party code (raw ABI,
/// `JsonText::new_unchecked`) and invalid text must never reach the event server.
/// Parsing a small payload costs well under a microsecond (the boundary benchmark
/// includes it); a bad event reaching the server would end the host's session with
/// it or be stored and break every other subscriber. The whole call is refused, so a
/// registration is never half done, and the plugin gets the reason.
fn checked_events(events: RVec<FfiRegisterEvent>) -> Result<Vec<RegisterEvent>, FfiClientError> {
    events
        .into_iter()
        .enumerate()
        .map(|(index, event)| {
            event.into_register_event().map_err(|err| {
                tracing::warn!(index, error = %err, "plugin registration refused");
                FfiClientError::Other(
                    format!("event {index} of the registration refused: {err}").into(),
                )
            })
        })
        .collect()
}

impl HostClient for HostClientAdapter {
    fn register(&self, events: RVec<FfiRegisterEvent>) -> FfiFuture<RResult<(), FfiClientError>> {
        let events = match checked_events(events) {
            Ok(events) => events,
            Err(err) => return std::future::ready(RResult::RErr(err)).into_ffi(),
        };
        let client = self.client.clone();
        self.host_future(async move {
            client
                .register(events)
                .await
                .map_err(ffi_client_error)
                .into()
        })
    }

    fn register_with_response(
        &self,
        events: RVec<FfiRegisterEvent>,
    ) -> FfiFuture<RResult<ROption<RVec<FfiEvent>>, FfiClientError>> {
        let events = match checked_events(events) {
            Ok(events) => events,
            Err(err) => return std::future::ready(RResult::RErr(err)).into_ffi(),
        };
        let client = self.client.clone();
        self.host_future(async move {
            match client.register_with_response(events).await {
                Ok(stored) => RResult::ROk(
                    stored
                        .map(|events| events.into_iter().map(FfiEvent::from).collect())
                        .into(),
                ),
                Err(err) => RResult::RErr(ffi_client_error(err)),
            }
        })
    }

    fn query(&self, params: FfiQueryParams) -> FfiFuture<RResult<FfiQueryResult, FfiClientError>> {
        let params = QueryParams::from(params);
        let client = self.client.clone();
        self.host_future(async move {
            match client.query(params).await {
                Ok(result) => RResult::ROk(FfiQueryResult::from(result)),
                Err(err) => RResult::RErr(ffi_client_error(err)),
            }
        })
    }

    fn log(&self, level: FfiLogLevel, target: RStr<'_>, message: RStr<'_>) {
        let _entered = self.span.enter();
        // A panic must not unwind into the plugin (the vtable entry is `extern "C"`).
        let _ =
            std::panic::catch_unwind(|| emit_plugin_log(level, target.as_str(), message.as_str()));
    }
}

/// The plugin-wide log function given to every library (records outside any device).
pub(crate) extern "C" fn host_log(level: FfiLogLevel, target: RStr<'_>, message: RStr<'_>) {
    // A panic must not unwind into the plugin (this is an `extern "C"` function).
    let _ = std::panic::catch_unwind(|| emit_plugin_log(level, target.as_str(), message.as_str()));
}
