//! Configuration: read a YAML / JSON / TOML document, validate it against the main
//! schema and every device entry against its plugin's schema, check names, and build
//! the [`GatewaySpec`] the runner consumes.
//!
//! Every problem is collected (not just the first) and reported as
//! `FILE: JSON-POINTER: REASON`; nothing here touches the network.

mod error;
mod hat;
mod parse;
mod schema;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

pub use error::{escape_token, ConfigError, ConfigErrors, ErrorLocation};
pub use hat::{Compat, LayoutSource};
pub use parse::{
    find_default, find_default_from_env, parse, read, ConfigSource, Format, RawConfig,
    DEFAULT_FILE_NAMES, STDIN_NAME,
};
pub use schema::{main_schema, DeviceSchema, HOST_DEVICE_KEYS, MAIN_SCHEMA_ID, MAIN_SCHEMA_TEXT};

use crate::device::DeviceFactory;
use crate::embedded::{EmbeddedConfig, TcpLimits};
use crate::logging::{LogConfig, LogFormat};
use crate::spec::{
    DeviceSpec, EventServerSpec, EventTypes, GatewaySpec, RestartPolicy, DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_CREATE_TIMEOUT, DEFAULT_EVENT_QUEUE_SIZE,
};

/// Top-level keys of the main schema.
const TOP_LEVEL_KEYS: [&str; 11] = [
    "type",
    "event_types",
    "version",
    "name",
    "event_server",
    "devices",
    "adminer_server",
    "plugins_dir",
    "allow_insecure_plugins",
    "log",
    "metrics",
];

/// Finds the plugin for a device entry's `module`; the error is the reason, shown to the
/// operator after the entry's pointer.
pub type PluginResolver<'a> = &'a dyn Fn(&str) -> Result<Arc<dyn DeviceFactory>, String>;

/// A configuration that passed every check.
#[derive(Clone)]
pub struct ValidatedConfig {
    /// What the runner runs.
    pub spec: GatewaySpec,
    /// The `log` section.
    pub log: LogConfig,
    /// Things that are accepted but not acted on (log them once logging is up).
    pub warnings: Vec<String>,
    /// The embedded event server's settings (defaults in the other modes).
    pub embedded: EmbeddedConfig,
    /// The `metrics` section; `None`: no metrics endpoint.
    pub metrics: Option<crate::ops::MetricsConfig>,
    /// The event-type layout and the hat-gateway features the file uses.
    pub compat: Compat,
    /// `adminer_server`: where the Adminer server listens and its limits (`None`: not
    /// served).
    pub adminer: Option<crate::adminer::AdminerConfig>,
}

impl std::fmt::Debug for ValidatedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let devices: Vec<(&str, &str)> = self
            .spec
            .devices
            .iter()
            .map(|d| (d.device_type.as_str(), d.name.as_str()))
            .collect();
        f.debug_struct("ValidatedConfig")
            .field("name", &self.spec.name)
            .field("event_server", &self.spec.event_server)
            .field("devices", &devices)
            .field("log", &self.log)
            .field("warnings", &self.warnings)
            .field("compat", &self.compat)
            .field("adminer", &self.adminer)
            .finish()
    }
}

/// The configuration's `plugins_dir` entries (a string or a list), resolved against the
/// configuration's directory. Read leniently, before validation: the loader needs them
/// to resolve device modules, and a wrongly typed value is reported by the schema.
pub fn plugin_dirs(raw: &RawConfig) -> Vec<PathBuf> {
    let resolve = |dir: &str| -> PathBuf {
        let path = Path::new(dir);
        if path.is_absolute() {
            path.to_owned()
        } else {
            raw.base_dir.join(path)
        }
    };
    match raw.value.get("plugins_dir") {
        Some(Value::String(dir)) => vec![resolve(dir)],
        Some(Value::Array(dirs)) => dirs.iter().filter_map(Value::as_str).map(resolve).collect(),
        _ => Vec::new(),
    }
}

/// The configuration's `allow_insecure_plugins` (the `--allow-insecure-plugins` flag as a
/// key): skip the plugin StrictModes checks. Read leniently, before validation, like
/// [`plugin_dirs`]; anything but `true` is `false` (a wrongly typed value is reported by
/// the schema).
pub fn allow_insecure_plugins(raw: &RawConfig) -> bool {
    raw.value.get("allow_insecure_plugins") == Some(&Value::Bool(true))
}

/// Validates a configuration completely and builds the gateway spec.
///
/// Order (`docs/gateway-semantics.md` 3.3): main schema; then for every device entry its plugin is
/// resolved and the entry validated against the plugin's schema; then the host's own
/// rules (unique `(device_type, name)`, log filter syntax, supported event-server mode).
/// All errors found are returned together.
pub fn validate(
    raw: &RawConfig,
    resolve: PluginResolver<'_>,
) -> Result<ValidatedConfig, ConfigErrors> {
    let file = raw.origin.as_str();
    let doc = &raw.value;
    let mut errors = schema::validate_main(file, doc);

    let (event_types, source) = hat::layout(doc);
    let mut compat = Compat {
        event_types,
        source,
        mapped: Vec::new(),
    };
    let devices = check_devices(file, doc, resolve, &mut errors, &mut compat.mapped);

    let mut warnings = Vec::new();
    let log = match log_config(doc, &mut compat.mapped, &mut warnings) {
        Ok(log) => log,
        Err(error) => {
            errors.push(ConfigError::at(file, "/log/filter", error));
            LogConfig::default()
        }
    };

    if !errors.is_empty() {
        // Grouped by place, devices in index order; stable, so one value's reasons
        // keep the order they were found in.
        errors.sort_by_key(pointer_key);
        // The main schema and a plugin's schema may both report one missing key.
        errors.dedup();
        return Err(ConfigErrors(errors));
    }
    let main = MainDocument::deserialize(doc).map_err(|err| {
        // The schema accepted the document, so this is a mismatch between the schema and
        // the types below: report it rather than panic.
        ConfigError::document(
            file,
            format!("internal error reading the configuration: {err}"),
        )
    })?;
    let require_operational = main.event_server.require_operational;
    let mut embedded = match &main.event_server.embedded {
        Some(document) => document
            .server_config(&main.name)
            .map_err(|reason| ConfigError::at(file, "/event_server/embedded", reason))?,
        None => EmbeddedConfig::default(),
    };
    if event_types != EventTypes::Seeds {
        // The forgery guard knows the seeds' output types (`gateway/<name>/...`) only.
        embedded.own_gateway = None;
    }

    let metrics = crate::ops::MetricsConfig::from_document(doc)
        .map_err(|reason| ConfigError::at(file, "/metrics", reason))?;
    let event_server = main
        .event_server
        .into_spec()
        .map_err(|reason| ConfigError::at(file, "/event_server", reason))?;
    if let Some(map) = doc.as_object() {
        // hat allows unknown top-level keys, so they are not errors; but a typo such as
        // `plugin_dir` would otherwise go unnoticed.
        for key in map.keys().filter(|k| !TOP_LEVEL_KEYS.contains(&k.as_str())) {
            warnings.push(format!("unknown top-level key {key:?} ignored"));
        }
    }
    let adminer = main.adminer_server.map(AdminerDocument::into_config);
    if let Some(crate::adminer::AdminerConfig { host, .. }) = &adminer {
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            warnings.push(format!(
                "adminer_server host {host:?} is not a loopback address: anyone who can \
                 reach it can change the log configuration"
            ));
        }
    }
    for key in ["type", "version"] {
        if let Some(value) = doc.get(key) {
            compat
                .mapped
                .push(format!("{key}: {value} (informational)"));
        }
    }
    if source == LayoutSource::HatModules {
        warnings.push(
            "event_types is not set and device modules are hat-gateway module names: \
             using hat-gateway 0.6's event types (event_types: hat-gateway-0.6); set \
             event_types to choose"
                .to_owned(),
        );
    }
    Ok(ValidatedConfig {
        spec: GatewaySpec {
            name: main.name,
            event_server,
            require_operational,
            devices,
            event_types,
        },
        log,
        warnings,
        embedded,
        metrics,
        compat,
        adminer,
    })
}

/// A hat `log` section (a Python `logging.dictConfig` document) as the filter
/// directives it maps to ([`hat::map_dict_config`], the mapping the configuration's
/// `log` section goes through) and the warnings naming what is not mapped. Strict as
/// Python's `dictConfig`: not an object, no `version: 1` or a level that is not a
/// Python level is an error. The Adminer's `set` uses it.
pub(crate) fn hat_log_directives(dict: &Value) -> Result<(String, Vec<String>), String> {
    let section = dict
        .as_object()
        .ok_or("a logging configuration must be an object")?;
    if section.get("version").and_then(Value::as_i64) != Some(1) {
        return Err("a logging configuration needs version: 1".into());
    }
    let unknown = hat::unknown_levels(section);
    if !unknown.is_empty() {
        return Err(format!("unknown level: {}", unknown.join(", ")));
    }
    let (log, _, warnings) = hat::map_dict_config(section);
    let directives = log.directives();
    log.env_filter().map_err(|err| err.to_string())?;
    Ok((directives, warnings))
}

/// Sort key of an error's pointer: its segments, numbers compared as numbers.
fn pointer_key(error: &ConfigError) -> Vec<(u64, String)> {
    error
        .pointer()
        .unwrap_or("")
        .split('/')
        .map(|segment| match segment.parse::<u64>() {
            Ok(index) => (index, String::new()),
            Err(_) => (u64::MAX, segment.to_owned()),
        })
        .collect()
}

/// A resolved plugin and its compiled device schema (if it has one).
type LoadedPlugin = (Arc<dyn DeviceFactory>, Option<DeviceSchema>);

/// Resolves and validates every device entry; returns the devices that are fine.
fn check_devices(
    file: &str,
    doc: &Value,
    resolve: PluginResolver<'_>,
    errors: &mut Vec<ConfigError>,
    mapped: &mut Vec<String>,
) -> Vec<DeviceSpec> {
    let Some(entries) = doc.get("devices").and_then(Value::as_array) else {
        return Vec::new();
    };
    // One compiled schema per module string: several devices of one type share it.
    let mut plugins: HashMap<&str, Option<LoadedPlugin>> = HashMap::new();
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    let mut devices = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let pointer = format!("/devices/{index}");
        let Some(module) = entry.get("module").and_then(Value::as_str) else {
            continue; // The main schema reported it.
        };
        if module.is_empty() {
            continue;
        }
        let plugin = plugins.entry(module).or_insert_with(|| {
            let factory = match resolve(module) {
                Ok(factory) => factory,
                Err(reason) => {
                    errors.push(ConfigError::at(
                        file,
                        format!("{pointer}/module"),
                        format!("cannot load plugin {module:?}: {reason}"),
                    ));
                    return None;
                }
            };
            match DeviceSchema::compile(factory.as_ref()) {
                Ok(schema) => Some((factory, schema)),
                Err(reason) => {
                    errors.push(ConfigError::at(
                        file,
                        format!("{pointer}/module"),
                        format!(
                            "plugin {module:?} (device type {:?}): {reason}",
                            factory.device_type()
                        ),
                    ));
                    None
                }
            }
        });
        let Some((factory, device_schema)) = plugin else {
            continue;
        };
        if crate::plugins::is_hat_module(module) {
            mapped.push(format!(
                "{pointer}/module: {module} -> device type {}",
                factory.device_type()
            ));
        }
        let conf = plugin_conf(entry);
        if let Some(device_schema) = device_schema {
            errors.extend(device_schema.validate(file, &pointer, &conf));
        }
        let Some(name) = entry.get("name").and_then(Value::as_str) else {
            continue;
        };
        let key = (factory.device_type().to_owned(), name.to_owned());
        if let Some(first) = seen.get(&key) {
            errors.push(ConfigError::at(
                file,
                format!("{pointer}/name"),
                format!(
                    "duplicate device: type {:?} and name {name:?} are already used by /devices/{first}",
                    key.0
                ),
            ));
            continue;
        }
        seen.insert(key, index);
        devices.push(DeviceSpec {
            device_type: factory.device_type().to_owned(),
            name: name.to_owned(),
            conf,
            factory: Arc::clone(factory),
            restart: match entry.get("restart").and_then(Value::as_str) {
                Some("on-failure") => RestartPolicy::ON_FAILURE_DEFAULT,
                _ => RestartPolicy::Never,
            },
            event_queue_size: entry
                .get("event_queue_size")
                .and_then(Value::as_u64)
                .and_then(|size| usize::try_from(size).ok())
                .unwrap_or(DEFAULT_EVENT_QUEUE_SIZE),
            create_timeout: seconds(entry, "create_timeout").unwrap_or(DEFAULT_CREATE_TIMEOUT),
            close_timeout: seconds(entry, "close_timeout").unwrap_or(DEFAULT_CLOSE_TIMEOUT),
        });
    }
    devices
}

/// A duration in seconds (hat's unit) of a device entry; the schema keeps it positive
/// and in range.
fn seconds(entry: &Value, key: &str) -> Option<std::time::Duration> {
    let value = entry.get(key).and_then(Value::as_f64)?;
    std::time::Duration::try_from_secs_f64(value).ok()
}

/// The device entry as the plugin sees it: without the host's own keys.
fn plugin_conf(entry: &Value) -> Value {
    let mut conf = entry.clone();
    if let Value::Object(map) = &mut conf {
        for key in HOST_DEVICE_KEYS {
            map.remove(key);
        }
    }
    conf
}

/// Reads the `log` section; the error is the reason for `/log/filter`. A hat
/// `logging.dictConfig` document (one with `version`) is mapped onto ours
/// ([`hat::map_dict_config`]).
fn log_config(
    doc: &Value,
    mapped: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<LogConfig, String> {
    let mut log = LogConfig::default();
    let Some(section) = doc.get("log").and_then(Value::as_object) else {
        return Ok(log);
    };
    if section.contains_key("version") {
        let (log, more_mapped, more_warnings) = hat::map_dict_config(section);
        mapped.extend(more_mapped);
        warnings.extend(more_warnings);
        log.env_filter().map_err(|err| err.to_string())?;
        return Ok(log);
    }
    if let Some(level) = section.get("level").and_then(Value::as_str) {
        level.clone_into(&mut log.level);
    }
    if section.get("format").and_then(Value::as_str) == Some("json") {
        log.format = LogFormat::Json;
    }
    log.filter = section
        .get("filter")
        .and_then(Value::as_str)
        .map(str::to_owned);
    log.env_filter().map_err(|err| err.to_string())?;
    Ok(log)
}

/// The typed view of a document that passed the main schema.
#[derive(Deserialize)]
struct MainDocument {
    name: String,
    event_server: EventServerDocument,
    adminer_server: Option<AdminerDocument>,
}

/// `adminer_server`: hat's `{host, port}` and our optional limits.
#[derive(Deserialize)]
struct AdminerDocument {
    host: String,
    port: u16,
    max_connections: Option<usize>,
    max_frame_bytes: Option<usize>,
}

impl AdminerDocument {
    fn into_config(self) -> crate::adminer::AdminerConfig {
        let mut config = crate::adminer::AdminerConfig::new(self.host, self.port);
        if let Some(max) = self.max_connections {
            config.max_connections = max;
        }
        if let Some(max) = self.max_frame_bytes {
            config.max_frame_bytes = max;
        }
        config
    }
}

#[derive(Deserialize)]
struct EventServerDocument {
    #[serde(default)]
    require_operational: bool,
    eventer_server: Option<RemoteDocument>,
    embedded: Option<EmbeddedDocument>,
    monitor_component: Option<MonitorDocument>,
}

#[derive(Deserialize)]
struct MonitorDocument {
    host: String,
    port: u16,
    gateway_group: String,
    event_server_group: String,
}

#[derive(Deserialize)]
struct RemoteDocument {
    host: String,
    port: u16,
    token: Option<String>,
}

#[derive(Deserialize)]
struct EmbeddedDocument {
    eventer_server: Option<AddressDocument>,
    #[serde(default)]
    enable_devices: bool,
    token: Option<String>,
    #[serde(default)]
    allow_remote: bool,
    /// The event store file; relative: under the state directory ([`state_dir`]);
    /// absent: `<name>.redb` there (unless `store: memory`).
    db_path: Option<String>,
    /// `file` (the default) or `memory` (no file: events are gone at exit).
    #[serde(default)]
    store: StoreKind,
    #[serde(default)]
    limits: LimitsDocument,
}

/// `event_server.embedded.store`: where the embedded server keeps its events.
#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum StoreKind {
    /// An event store file (`db_path`, default `<gateway name>.redb` under the state
    /// directory).
    #[default]
    File,
    /// In memory only (tests, benchmarks, throw-away gateways).
    Memory,
}

/// Where a relative `db_path` goes: `$XDG_STATE_HOME/hat/gateway`, else
/// `$HOME/.local/state/hat/gateway`.
fn state_dir() -> Result<std::path::PathBuf, String> {
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => std::path::PathBuf::from(home).join(".local/state"),
            None => {
                return Err(
                    "db_path is relative and neither XDG_STATE_HOME nor HOME is set; \
                     give an absolute db_path"
                        .to_owned(),
                )
            }
        },
    };
    Ok(base.join("hat").join("gateway"))
}

/// `db_path` resolved: absolute as is, relative under [`state_dir`].
fn resolve_db_path(db_path: &str) -> Result<std::path::PathBuf, String> {
    let path = std::path::Path::new(db_path);
    if path.is_absolute() {
        Ok(path.to_owned())
    } else {
        Ok(state_dir()?.join(path))
    }
}

/// `event_server.embedded.limits`; an absent key keeps the default.
#[derive(Deserialize, Default)]
struct LimitsDocument {
    retained_events: Option<usize>,
    retained_bytes: Option<usize>,
    max_event_types: Option<usize>,
    max_latest_bytes: Option<usize>,
    retained_seconds: Option<u64>,
    max_connections: Option<usize>,
    max_frame_size: Option<usize>,
    max_buffered_input: Option<usize>,
    max_outbound_bytes: Option<usize>,
    max_outbound_messages: Option<usize>,
}

impl EmbeddedDocument {
    /// The event store file: `db_path` resolved, by default `<name>.redb` under the
    /// state directory; `None` with `store: memory`.
    fn db_path(&self, name: &str) -> Result<Option<PathBuf>, String> {
        match (self.store, &self.db_path) {
            (StoreKind::Memory, None) => Ok(None),
            (StoreKind::Memory, Some(_)) => {
                Err("db_path is set but store is memory: remove one of them".to_owned())
            }
            (StoreKind::File, Some(path)) => resolve_db_path(path).map(Some),
            (StoreKind::File, None) => match state_dir() {
                Ok(dir) => Ok(Some(dir.join(format!("{name}.redb")))),
                Err(_) => Err(format!(
                    "the default db_path {name}.redb is under the state directory, but \
                     neither XDG_STATE_HOME nor HOME is set; give an absolute db_path or \
                     store: memory"
                )),
            },
        }
    }

    /// The embedded server's settings for gateway `name`.
    fn server_config(&self, name: &str) -> Result<EmbeddedConfig, String> {
        let d = EmbeddedConfig::default();
        let l = &self.limits;
        let config = EmbeddedConfig {
            retained_events: l.retained_events.unwrap_or(d.retained_events),
            retained_bytes: l.retained_bytes.unwrap_or(d.retained_bytes),
            max_event_types: l.max_event_types.unwrap_or(d.max_event_types),
            max_latest_bytes: l.max_latest_bytes.unwrap_or(d.max_latest_bytes),
            retained_seconds: l.retained_seconds,
            db_path: self.db_path(name)?,
            token: self.token.clone(),
            allow_remote: self.allow_remote,
            own_gateway: Some(name.to_owned()),
            tcp: TcpLimits {
                max_connections: l.max_connections.unwrap_or(d.tcp.max_connections),
                max_frame_size: l.max_frame_size.unwrap_or(d.tcp.max_frame_size),
                max_buffered_input: l.max_buffered_input.unwrap_or(d.tcp.max_buffered_input),
                max_outbound_bytes: l.max_outbound_bytes.unwrap_or(d.tcp.max_outbound_bytes),
                max_outbound_messages: l
                    .max_outbound_messages
                    .unwrap_or(d.tcp.max_outbound_messages),
            },
            ..d
        };
        if let Some(address) = &self.eventer_server {
            let loopback = address.host == "localhost"
                || address
                    .host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !loopback && !self.allow_remote {
                return Err(format!(
                    "eventer_server host {:?} is not a loopback address: other hosts could \
                     connect; set allow_remote: true and a token to allow it",
                    address.host
                ));
            }
            if !loopback && self.token.is_none() {
                return Err("allow_remote needs a token".to_owned());
            }
        }
        Ok(config)
    }
}

#[derive(Deserialize)]
struct AddressDocument {
    host: String,
    port: u16,
}

impl EventServerDocument {
    fn into_spec(self) -> Result<EventServerSpec, String> {
        match (self.eventer_server, self.embedded, self.monitor_component) {
            (Some(remote), None, None) => Ok(EventServerSpec::Remote {
                host: remote.host,
                port: remote.port,
                token: remote.token,
            }),
            (None, Some(embedded), None) => Ok(EventServerSpec::Embedded {
                listen: embedded.eventer_server.map(|a| (a.host, a.port)),
                enable_devices: embedded.enable_devices,
            }),
            (None, None, Some(monitor)) => Ok(EventServerSpec::Monitor {
                host: monitor.host,
                port: monitor.port,
                gateway_group: monitor.gateway_group,
                event_server_group: monitor.event_server_group,
            }),
            _ => Err(
                "exactly one of \"eventer_server\", \"embedded\" or \"monitor_component\" \
                      is required"
                    .to_owned(),
            ),
        }
    }
}

#[cfg(test)]
mod tests;
