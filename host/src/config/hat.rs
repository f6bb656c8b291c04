//! hat-gateway 0.6 configuration files as they are (issue 17): the event-type layout
//! (`event_types`, picked for a file with hat-gateway module names), and hat's `log`
//! section (a Python `logging.dictConfig` document) mapped onto ours.

use serde_json::{Map, Value};

use crate::logging::LogConfig;
use crate::plugins::is_hat_module;
use crate::spec::EventTypes;

/// Where a configuration's event-type layout came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutSource {
    /// The `event_types` key.
    Configured,
    /// No `event_types` and no hat-gateway module names: the default (`seeds`).
    Default,
    /// No `event_types`, but a device's `module` is a hat-gateway module name: the
    /// file is a hat-gateway configuration, so `hat-gateway-0.6`.
    HatModules,
}

/// What a configuration uses of hat-gateway's compatibility (`gateway-host check`
/// prints it; the daemon logs it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compat {
    /// The event-type layout.
    pub event_types: EventTypes,
    /// Why that layout.
    pub source: LayoutSource,
    /// hat-gateway features of the file and what each maps to, one line each.
    pub mapped: Vec<String>,
}

impl Compat {
    /// `hat-gateway-0.6 (picked: device modules are hat-gateway module names)`.
    pub fn layout_line(&self) -> String {
        let why = match self.source {
            LayoutSource::Configured => "event_types",
            LayoutSource::Default => "default",
            LayoutSource::HatModules => {
                "picked: no event_types, and device modules are hat-gateway module names"
            }
        };
        format!("{} ({why})", self.event_types.as_str())
    }
}

/// The layout of a document that passed the main schema.
pub(crate) fn layout(doc: &Value) -> (EventTypes, LayoutSource) {
    match doc.get("event_types").and_then(Value::as_str) {
        Some("hat-gateway-0.6") => (EventTypes::HatGateway06, LayoutSource::Configured),
        Some(_) => (EventTypes::Seeds, LayoutSource::Configured),
        None => {
            let hat_modules = doc
                .get("devices")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|d| d.get("module").and_then(Value::as_str))
                .any(is_hat_module);
            if hat_modules {
                (EventTypes::HatGateway06, LayoutSource::HatModules)
            } else {
                (EventTypes::Seeds, LayoutSource::Default)
            }
        }
    }
}

/// A Python logging level (name or number) as a tracing level; `None` for `NOTSET`
/// (inherit) and for what is not a level.
fn python_level(value: &Value) -> Option<&'static str> {
    let number = match value {
        Value::String(name) => match name.to_ascii_uppercase().as_str() {
            "CRITICAL" | "FATAL" => 50,
            "ERROR" => 40,
            "WARNING" | "WARN" => 30,
            "INFO" => 20,
            "DEBUG" => 10,
            "NOTSET" => 0,
            other => other.parse().ok()?,
        },
        Value::Number(n) => n.as_u64()?,
        _ => return None,
    };
    Some(match number {
        0 => return None,
        1..=9 => "trace",
        10..=19 => "debug",
        20..=29 => "info",
        30..=39 => "warn",
        _ => "error",
    })
}

/// The more severe of two tracing levels.
fn stricter(a: &'static str, b: &'static str) -> &'static str {
    const ORDER: [&str; 5] = ["trace", "debug", "info", "warn", "error"];
    let rank = |l: &str| ORDER.iter().position(|o| *o == l).unwrap_or(0);
    if rank(a) >= rank(b) {
        a
    } else {
        b
    }
}

/// The targets of ours a Python logger name stands for, or `None` when nothing of ours
/// corresponds to it.
fn logger_targets(name: &str) -> Option<Vec<String>> {
    let parts: Vec<&str> = name.split('.').collect();
    match parts.as_slice() {
        ["hat", "gateway", "devices", protocol, role, ..] => {
            Some(vec![format!("{protocol}_{role}")])
        }
        ["hat", "event", ..] => Some(vec!["gateway_eventer".to_owned()]),
        ["hat", "monitor", ..] => Some(vec!["gateway_monitor".to_owned()]),
        ["hat"] | ["hat", "gateway", ..] => Some(vec!["gateway_host".to_owned()]),
        // A tracing target of ours given as it is (`gateway_host::engine`,
        // `modbus_master`: what `gateway-host log-level` sends through the Adminer).
        _ if name.contains("::") || name.contains('_') => Some(vec![name.to_owned()]),
        _ => None,
    }
}

/// The levels of a `logging.dictConfig` document (root, loggers and handlers) that
/// are not Python levels, one line each (`root: "LOUD"`): Python's `dictConfig`
/// refuses such a document, and so does the Adminer's `set`.
pub(crate) fn unknown_levels(section: &Map<String, Value>) -> Vec<String> {
    let known = |level: &Value| {
        python_level(level).is_some()
            || level
                .as_str()
                .is_some_and(|l| l.eq_ignore_ascii_case("NOTSET"))
            || level.as_u64() == Some(0)
    };
    let mut unknown = Vec::new();
    if let Some(level) = section.get("root").and_then(|r| r.get("level")) {
        if !known(level) {
            unknown.push(format!("root: {level}"));
        }
    }
    for key in ["loggers", "handlers"] {
        for (name, entry) in section
            .get(key)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if let Some(level) = entry.get("level") {
                if !known(level) {
                    unknown.push(format!("{key} {name:?}: {level}"));
                }
            }
        }
    }
    unknown
}

/// Console handler classes of Python's logging (what writes to stderr/stdout).
fn is_console_handler(class: &str) -> bool {
    matches!(class, "logging.StreamHandler" | "StreamHandler")
}

/// Maps a hat `log` section (a `logging.dictConfig` document, version 1) onto ours:
/// the root logger's level (raised to its console handlers' lowest level) becomes the
/// level, every logger with a counterpart of ours a filter directive. Returns the log
/// configuration, what was mapped and warnings naming what is ignored.
pub(crate) fn map_dict_config(
    section: &Map<String, Value>,
) -> (LogConfig, Vec<String>, Vec<String>) {
    let mut log = LogConfig::default();
    let mut mapped = Vec::new();
    let mut ignored = Vec::new();
    let empty = Map::new();
    let handlers = section
        .get("handlers")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut console = Vec::new();
    for (name, handler) in handlers {
        let class = handler.get("class").and_then(Value::as_str).unwrap_or("?");
        if is_console_handler(class) {
            console.push(name.as_str());
        } else {
            ignored.push(format!(
                "handler {name:?} ({class}): gateway-host logs to standard error only"
            ));
        }
    }
    let handler_level = |name: &str| {
        handlers
            .get(name)
            .and_then(|h| h.get("level"))
            .and_then(python_level)
    };

    if let Some(root) = section.get("root").and_then(Value::as_object) {
        let root_handlers: Vec<&str> = root
            .get("handlers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let mut level = root.get("level").and_then(python_level).unwrap_or("warn");
        // Python's default root level is WARNING.
        let console_levels: Vec<&'static str> = root_handlers
            .iter()
            .filter(|h| console.contains(h))
            .map(|h| handler_level(h).unwrap_or("trace"))
            .collect();
        if let Some(lowest) =
            console_levels
                .iter()
                .copied()
                .reduce(|a, b| if stricter(a, b) == a { b } else { a })
        {
            level = stricter(level, lowest);
        } else if !root_handlers.is_empty() {
            ignored.push(
                "root has no console handler: gateway-host logs to standard error anyway"
                    .to_owned(),
            );
        }
        level.clone_into(&mut log.level);
        mapped.push(format!("log: root level -> {level}"));
    } else {
        "warn".clone_into(&mut log.level);
        mapped.push("log: no root logger -> level warn (Python's default)".to_owned());
    }

    let mut directives = Vec::new();
    if let Some(loggers) = section.get("loggers").and_then(Value::as_object) {
        for (name, logger) in loggers {
            let Some(level) = logger.get("level").and_then(python_level) else {
                continue; // NOTSET or none: inherits, as ours do.
            };
            match logger_targets(name) {
                Some(targets) => {
                    for target in targets {
                        mapped.push(format!("log: logger {name} -> {target}={level}"));
                        directives.push(format!("{target}={level}"));
                    }
                }
                None => ignored.push(format!(
                    "logger {name:?}: nothing in gateway-host logs under it"
                )),
            }
        }
    }
    if !directives.is_empty() {
        log.filter = Some(directives.join(","));
    }
    if !console.is_empty() {
        mapped.push(format!(
            "log: console handlers {} -> standard error",
            console.join(", ")
        ));
    }
    for key in ["formatters", "filters"] {
        if section
            .get(key)
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty())
        {
            ignored.push(format!("{key}: gateway-host's own line format is used"));
        }
    }
    let warnings = ignored
        .into_iter()
        .map(|what| format!("log (hat logging.dictConfig): {what}; ignored"))
        .collect();
    (log, mapped, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_levels() {
        assert_eq!(python_level(&json!("DEBUG")), Some("debug"));
        assert_eq!(python_level(&json!("warning")), Some("warn"));
        assert_eq!(python_level(&json!("CRITICAL")), Some("error"));
        assert_eq!(python_level(&json!(20)), Some("info"));
        assert_eq!(python_level(&json!("5")), Some("trace"));
        assert_eq!(python_level(&json!("NOTSET")), None);
        assert_eq!(python_level(&json!("LOUD")), None);
    }

    #[test]
    fn dict_config_maps_root_loggers_and_console_and_names_the_rest() {
        let section = json!({
            "version": 1,
            "formatters": {"f": {"format": "%(message)s"}},
            "handlers": {
                "console": {"class": "logging.StreamHandler", "formatter": "f", "level": "DEBUG"},
                "syslog": {"class": "hat.syslog.handler.SyslogHandler", "host": "127.0.0.1"}
            },
            "loggers": {
                "hat.gateway": {"level": "DEBUG"},
                "hat.gateway.devices.modbus.master": {"level": "WARNING"},
                "hat.event.eventer": {"level": "NOTSET"},
                "asyncio": {"level": "ERROR"}
            },
            "root": {"level": "INFO", "handlers": ["console", "syslog"]},
            "disable_existing_loggers": false
        });
        let (log, mapped, warnings) = map_dict_config(section.as_object().unwrap());
        assert_eq!(log.level, "info");
        assert_eq!(
            log.filter.as_deref(),
            Some("gateway_host=debug,modbus_master=warn")
        );
        log.env_filter().unwrap();
        assert!(
            mapped.contains(&"log: root level -> info".to_owned()),
            "{mapped:?}"
        );
        assert!(
            mapped
                .iter()
                .any(|m| m.contains("console handlers console")),
            "{mapped:?}"
        );
        let text = warnings.join("\n");
        assert!(
            text.contains("handler \"syslog\" (hat.syslog.handler.SyslogHandler)"),
            "{text}"
        );
        assert!(text.contains("logger \"asyncio\""), "{text}");
        assert!(text.contains("formatters"), "{text}");
        assert_eq!(warnings.len(), 3, "{warnings:?}");
    }

    #[test]
    fn our_own_targets_map_as_they_are_and_unknown_levels_are_named() {
        let section = json!({
            "version": 1,
            "loggers": {
                "gateway_host::engine": {"level": "DEBUG"},
                "modbus_master": {"level": 5},
                "asyncio": {"level": "LOUD"}
            },
            "root": {"level": "INFO"}
        });
        let section = section.as_object().unwrap();
        let (log, _, _) = map_dict_config(section);
        assert_eq!(
            log.filter.as_deref(),
            Some("gateway_host::engine=debug,modbus_master=trace")
        );
        assert_eq!(unknown_levels(section), [r#"loggers "asyncio": "LOUD""#]);
        let fine = json!({"version": 1, "root": {"level": "NOTSET"}});
        assert!(unknown_levels(fine.as_object().unwrap()).is_empty());
    }

    #[test]
    fn console_handler_level_raises_the_root_level() {
        let section = json!({
            "version": 1,
            "handlers": {"c": {"class": "logging.StreamHandler", "level": "ERROR"}},
            "root": {"level": "DEBUG", "handlers": ["c"]}
        });
        let (log, _, warnings) = map_dict_config(section.as_object().unwrap());
        assert_eq!(log.level, "error");
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn layout_is_configured_default_or_picked_from_hat_modules() {
        let hat =
            json!({"devices": [{"module": "hat.gateway.devices.modbus.master", "name": "a"}]});
        assert_eq!(
            layout(&hat),
            (EventTypes::HatGateway06, LayoutSource::HatModules)
        );
        let ours = json!({"devices": [{"module": "modbus_master", "name": "a"}]});
        assert_eq!(layout(&ours), (EventTypes::Seeds, LayoutSource::Default));
        let mut forced = hat.clone();
        forced["event_types"] = json!("seeds");
        assert_eq!(
            layout(&forced),
            (EventTypes::Seeds, LayoutSource::Configured)
        );
        let mut set = ours.clone();
        set["event_types"] = json!("hat-gateway-0.6");
        assert_eq!(
            layout(&set),
            (EventTypes::HatGateway06, LayoutSource::Configured)
        );
    }
}
