//! Plugin log records in the host's log, under the plugin's own target.
//!
//! A plugin's `tracing` events arrive as `(level, target, message)` over the ABI
//! (the plugin has its own copy of `tracing`). The host re-emits each one at a
//! callsite whose metadata carries the plugin's target (`thermo`, `thermo::link`),
//! so the configured filter selects them like the host's own targets
//! (`filter: "info,thermo=debug"`), and the text and JSON formats print that target.
//! Callsites are created once per (target, level) and live as long as the process;
//! their number is bounded by [`MAX_PLUGIN_LOG_TARGETS`].
//!
//! Records are emitted in the current span: the device's span when they come through
//! a device's client, so they carry its `gateway`, `device_type` and `device` fields.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use gateway_plugin_api::abi::FfiLogLevel;
use tracing_core::callsite::{Callsite, Identifier};
use tracing_core::field::{FieldSet, Value};
use tracing_core::metadata::Kind;
use tracing_core::subscriber::Interest;
use tracing_core::{dispatcher, Event, Level, LevelFilter, Metadata};

/// Distinct `(target, level)` pairs that get a callsite of their own. Each costs a
/// few hundred bytes for the life of the process; a plugin that invented targets
/// without end would otherwise grow the host's memory. Records past the limit are
/// emitted under [`FALLBACK_TARGET`] with the plugin's target in `plugin_target`.
pub const MAX_PLUGIN_LOG_TARGETS: usize = 4096;

/// Target of plugin records past [`MAX_PLUGIN_LOG_TARGETS`] (and of empty targets).
pub const FALLBACK_TARGET: &str = "gateway_host::plugin_log";

/// The field that holds the record's text.
const MESSAGE_FIELD: &str = "message";

/// A callsite made at run time for one plugin target and level.
struct PluginCallsite {
    metadata: OnceLock<Metadata<'static>>,
}

static FALLBACK_METADATA: Metadata<'static> = Metadata::new(
    "plugin event",
    FALLBACK_TARGET,
    Level::ERROR,
    None,
    None,
    None,
    FieldSet::new(&[], Identifier(&FALLBACK_CALLSITE)),
    Kind::EVENT,
);

/// Never registered: only backs `PluginCallsite::metadata` before it is initialised,
/// which cannot happen (a callsite is initialised before it is registered).
struct Fallback;

static FALLBACK_CALLSITE: Fallback = Fallback;

impl Callsite for Fallback {
    fn set_interest(&self, _interest: Interest) {}

    fn metadata(&self) -> &Metadata<'_> {
        &FALLBACK_METADATA
    }
}

impl Callsite for PluginCallsite {
    fn set_interest(&self, _interest: Interest) {
        // Interest is not cached: every record asks the dispatcher (`enabled`).
    }

    fn metadata(&self) -> &Metadata<'_> {
        self.metadata.get().unwrap_or(&FALLBACK_METADATA)
    }
}

fn level(level: FfiLogLevel) -> Level {
    match level {
        FfiLogLevel::Error => Level::ERROR,
        FfiLogLevel::Warn => Level::WARN,
        FfiLogLevel::Info => Level::INFO,
        FfiLogLevel::Debug => Level::DEBUG,
        FfiLogLevel::Trace => Level::TRACE,
    }
}

type Callsites = HashMap<(String, Level), &'static PluginCallsite>;

/// The callsite of `(target, level)`, created on first use; `None` past the limit.
fn callsite(target: &str, level: Level) -> Option<&'static PluginCallsite> {
    static CALLSITES: OnceLock<Mutex<Callsites>> = OnceLock::new();
    let mut callsites = CALLSITES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(callsite) = callsites.get(&(target.to_owned(), level)) {
        return Some(callsite);
    }
    if callsites.len() >= MAX_PLUGIN_LOG_TARGETS {
        return None;
    }
    // Leaked on purpose: tracing keeps `&'static` callsites and metadata for the life
    // of the process, and the count is bounded above.
    let name: &'static str = Box::leak(target.to_owned().into_boxed_str());
    let callsite: &'static PluginCallsite = Box::leak(Box::new(PluginCallsite {
        metadata: OnceLock::new(),
    }));
    let _ = callsite.metadata.set(Metadata::new(
        "plugin event",
        name,
        level,
        None,
        None,
        Some(name),
        FieldSet::new(&[MESSAGE_FIELD], Identifier(callsite)),
        Kind::EVENT,
    ));
    tracing_core::callsite::register(callsite);
    callsites.insert((target.to_owned(), level), callsite);
    Some(callsite)
}

/// Emits a plugin's log record in the host's log (in the current span), under the
/// plugin's target.
pub(crate) fn emit_plugin_log(record_level: FfiLogLevel, target: &str, message: &str) {
    let level = level(record_level);
    if level > LevelFilter::current() {
        return;
    }
    let callsite = if target.is_empty() {
        None
    } else {
        callsite(target, level)
    };
    let Some(callsite) = callsite else {
        emit_fallback(record_level, target, message);
        return;
    };
    let metadata = callsite.metadata();
    if !dispatcher::get_default(|dispatch| dispatch.enabled(metadata)) {
        return;
    }
    let fields = metadata.fields();
    let Some(field) = fields.field(MESSAGE_FIELD) else {
        return;
    };
    let text = format_args!("{message}");
    let values = [(&field, Some(&text as &dyn Value))];
    Event::dispatch(metadata, &fields.value_set(&values));
}

fn emit_fallback(level: FfiLogLevel, target: &str, message: &str) {
    match level {
        FfiLogLevel::Error => {
            tracing::error!(target: FALLBACK_TARGET, plugin_target = target, "{message}")
        }
        FfiLogLevel::Warn => {
            tracing::warn!(target: FALLBACK_TARGET, plugin_target = target, "{message}")
        }
        FfiLogLevel::Info => {
            tracing::info!(target: FALLBACK_TARGET, plugin_target = target, "{message}")
        }
        FfiLogLevel::Debug => {
            tracing::debug!(target: FALLBACK_TARGET, plugin_target = target, "{message}")
        }
        FfiLogLevel::Trace => {
            tracing::trace!(target: FALLBACK_TARGET, plugin_target = target, "{message}")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::EnvFilter;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn captured(filter: &str, emit: impl FnOnce()) -> String {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(filter))
            .with_ansi(false)
            .with_writer(out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let text = String::from_utf8_lossy(&out.0.lock().unwrap()).into_owned();
        text
    }

    #[test]
    fn records_keep_the_plugin_target_and_filters_select_it() {
        let text = captured("info,unit_thermo=debug", || {
            emit_plugin_log(FfiLogLevel::Debug, "unit_thermo::link", "link up");
            emit_plugin_log(FfiLogLevel::Debug, "unit_other", "hidden debug");
            emit_plugin_log(FfiLogLevel::Info, "unit_other", "shown info");
            // The same callsite again (interned).
            emit_plugin_log(FfiLogLevel::Debug, "unit_thermo::link", "link down");
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].contains("DEBUG unit_thermo::link: link up"),
            "{text}"
        );
        assert!(lines[1].contains("INFO unit_other: shown info"), "{text}");
        assert!(
            lines[2].contains("DEBUG unit_thermo::link: link down"),
            "{text}"
        );
    }

    #[test]
    fn an_empty_target_uses_the_fallback_target() {
        let text = captured("info", || {
            emit_plugin_log(FfiLogLevel::Warn, "", "no target")
        });
        assert!(
            text.contains(&format!("WARN {FALLBACK_TARGET}: no target")),
            "{text}"
        );
    }
}
