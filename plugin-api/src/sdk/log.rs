//! Log forwarding: plugin tracing events and panic messages go to the host's log.
//!
//! A plugin library has its own copy of `tracing` and of std's panic hook, so neither
//! reaches the host by itself. The SDK installs, inside the library only, a tracing
//! subscriber whose layer forwards every event to the host, and a panic hook that logs
//! the panic as a tracing event. Events emitted while a device's entry point or
//! background task runs go through that device's host client, which the host emits
//! inside the device's span; other events use the plugin-wide host log function.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::{Arc, Once, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::abi::{FfiLogLevel, HostLogFn};

/// Where a device's log records go (its host client).
pub(crate) trait LogSink: Send + Sync {
    /// Emits one record.
    fn log(&self, level: FfiLogLevel, target: &str, message: &str);
}

/// A device's log sink.
pub(crate) type DeviceLog = Arc<dyn LogSink>;

tokio::task_local! {
    /// The log sink of the device whose code the current task runs.
    static DEVICE_LOG: Option<DeviceLog>;
}

/// The host's plugin-wide log function, set once right after loading.
static HOST_LOG: OnceLock<HostLogFn> = OnceLock::new();

/// Runs `future` with `log` as the device log sink of the task.
pub(crate) fn with_device_log<F: Future>(
    log: Option<DeviceLog>,
    future: F,
) -> impl Future<Output = F::Output> {
    DEVICE_LOG.scope(log, future)
}

pub(crate) fn set_host_log(log: HostLogFn) {
    // The host calls this once per library; a second call keeps the first function.
    let _ = HOST_LOG.set(log);
}

/// Installs the forwarding subscriber and the panic hook, once per library.
pub(crate) fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(ForwardLayer);
        // Fails only if this library already has a global subscriber: keep that one.
        let _ = tracing::subscriber::set_global_default(subscriber);
        std::panic::set_hook(Box::new(|info| {
            let message = crate::panic_message(info.payload());
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            tracing::error!(target: "panic", location = %location, "plugin panicked: {message}");
        }));
    });
}

fn emit(level: FfiLogLevel, target: &str, message: &str) {
    let delivered = DEVICE_LOG
        .try_with(|log| match log {
            Some(log) => {
                log.log(level, target, message);
                true
            }
            None => false,
        })
        .unwrap_or(false);
    if delivered {
        return;
    }
    match HOST_LOG.get() {
        Some(host) => (host.log)(level, target.into(), message.into()),
        // Before the host handed over its log function (cannot happen through the
        // gateway-host loader) the record would otherwise be lost.
        None => eprintln!("{target}: {message}"),
    }
}

fn ffi_level(level: &Level) -> FfiLogLevel {
    match *level {
        Level::ERROR => FfiLogLevel::Error,
        Level::WARN => FfiLogLevel::Warn,
        Level::INFO => FfiLogLevel::Info,
        Level::DEBUG => FfiLogLevel::Debug,
        Level::TRACE => FfiLogLevel::Trace,
    }
}

/// Formats an event's message and fields as `message key=value ...`.
#[derive(Default)]
struct FieldText {
    message: String,
    fields: String,
}

impl Visit for FieldText {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

/// Fields of a plugin-side span, kept in the span's extensions.
struct SpanFields(String);

/// The layer that forwards plugin events to the host.
struct ForwardLayer;

impl<S> Layer<S> for ForwardLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        let mut text = FieldText::default();
        attrs.record(&mut text);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(text.fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        let mut text = FieldText::default();
        values.record(&mut text);
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<SpanFields>() {
                fields.0.push_str(&text.fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        let mut text = FieldText::default();
        event.record(&mut text);
        let mut line = String::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                line.push_str(span.name());
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    if !fields.0.is_empty() {
                        let _ = write!(line, "{{{}}}", fields.0.trim_start());
                    }
                }
                line.push_str(": ");
            }
        }
        line.push_str(&text.message);
        line.push_str(&text.fields);
        let metadata = event.metadata();
        emit(ffi_level(metadata.level()), metadata.target(), &line);
    }
}
