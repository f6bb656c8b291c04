//! Unit tests of configuration validation with in-memory device factories.

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{json, Value};

use super::*;
use crate::device::{DeviceContext, DeviceError, DeviceFactory, DeviceInstance};

struct TestFactory {
    device_type: &'static str,
    schema: Option<Value>,
}

impl DeviceFactory for TestFactory {
    fn device_type(&self) -> &str {
        self.device_type
    }
    fn json_schema_id(&self) -> Option<&str> {
        None
    }
    fn json_schema(&self) -> Option<&Value> {
        self.schema.as_ref()
    }
    fn create(
        &self,
        _conf: Value,
        _context: DeviceContext,
    ) -> BoxFuture<'static, Result<Box<dyn DeviceInstance>, DeviceError>> {
        Box::pin(async { Err(DeviceError::Failed("not in unit tests".into())) })
    }
}

/// `sim` has a schema that requires nothing but types `period`; `strict` forbids
/// unknown keys; anything else cannot be loaded.
fn resolver(module: &str) -> Result<Arc<dyn DeviceFactory>, String> {
    match module {
        "sim" => Ok(Arc::new(TestFactory {
            device_type: "sim",
            schema: Some(json!({
                "type": "object",
                "properties": {"period": {"type": "number"}}
            })),
        })),
        "sim2" => Ok(Arc::new(TestFactory {
            device_type: "sim",
            schema: None,
        })),
        "strict" => Ok(Arc::new(TestFactory {
            device_type: "strict",
            schema: Some(json!({
                "type": "object",
                "required": ["module", "name", "connection"],
                "properties": {"module": {}, "name": {}, "connection": {"type": "object"}},
                "additionalProperties": false
            })),
        })),
        other => Err(format!(
            "no plugin named {other:?} in the plugin directories"
        )),
    }
}

fn raw(value: Value) -> RawConfig {
    RawConfig {
        origin: "gateway.yaml".into(),
        base_dir: PathBuf::from("/etc/gw"),
        value,
    }
}

fn doc(devices: Value) -> Value {
    json!({
        "name": "gw1",
        "event_server": {"eventer_server": {"host": "127.0.0.1", "port": 23012}},
        "devices": devices
    })
}

fn error_lines(value: Value) -> Vec<String> {
    match validate(&raw(value), &resolver) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.errors().iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn valid_config_builds_the_spec() {
    let mut value = doc(json!([
        {"module": "sim", "name": "s1", "period": 1, "restart": "on-failure",
         "event_queue_size": 16},
        {"module": "sim", "name": "s2"},
        {"module": "strict", "name": "s1", "connection": {}, "restart": "never"}
    ]));
    value["event_server"]["require_operational"] = json!(true);
    value["event_server"]["eventer_server"]["token"] = json!("secret");
    let config = validate(&raw(value), &resolver).unwrap();
    let spec = &config.spec;
    assert_eq!(spec.name, "gw1");
    assert!(spec.require_operational);
    assert_eq!(
        spec.event_server,
        EventServerSpec::Remote {
            host: "127.0.0.1".into(),
            port: 23012,
            token: Some("secret".into())
        }
    );
    let devices: Vec<_> = spec
        .devices
        .iter()
        .map(|d| {
            (
                d.device_type.as_str(),
                d.name.as_str(),
                d.restart,
                d.event_queue_size,
            )
        })
        .collect();
    assert_eq!(
        devices,
        [
            ("sim", "s1", RestartPolicy::ON_FAILURE_DEFAULT, 16),
            ("sim", "s2", RestartPolicy::Never, DEFAULT_EVENT_QUEUE_SIZE),
            (
                "strict",
                "s1",
                RestartPolicy::Never,
                DEFAULT_EVENT_QUEUE_SIZE
            ),
        ]
    );
    // The plugin gets the entry without the host's keys (the strict schema forbids them).
    assert_eq!(
        spec.devices[0].conf,
        json!({"module": "sim", "name": "s1", "period": 1})
    );
    assert_eq!(config.log, LogConfig::default());
    assert!(config.warnings.is_empty());
}

#[test]
fn embedded_mode_builds_the_spec() {
    let value = json!({
        "name": "gw",
        "event_server": {"embedded": {"eventer_server": {"host": "127.0.0.1", "port": 0},
                                      "enable_devices": true}},
        "devices": []
    });
    let spec = validate(&raw(value), &resolver).unwrap().spec;
    assert_eq!(
        spec.event_server,
        EventServerSpec::Embedded {
            listen: Some(("127.0.0.1".into(), 0)),
            enable_devices: true
        }
    );
    assert!(!spec.require_operational);
    let value = json!({"name": "gw", "event_server": {"embedded": {}}, "devices": []});
    let spec = validate(&raw(value), &resolver).unwrap().spec;
    assert_eq!(
        spec.event_server,
        EventServerSpec::Embedded {
            listen: None,
            enable_devices: false
        }
    );
}

#[test]
fn embedded_limits_token_and_remote_policy() {
    let embedded = |e: Value| json!({"name": "gw", "event_server": {"embedded": e}, "devices": []});
    let config = validate(
        &raw(embedded(json!({
            "token": "t0k",
            "limits": {"max_event_types": 10, "retained_bytes": 2048, "max_connections": 3,
                       "max_frame_size": 4096, "max_buffered_input": 8192,
                       "max_outbound_bytes": 1024, "max_outbound_messages": 5,
                       "retained_events": 7, "max_latest_bytes": 4096}
        }))),
        &resolver,
    )
    .unwrap();
    let e = config.embedded;
    assert_eq!(e.token.as_deref(), Some("t0k"));
    assert_eq!(e.own_gateway.as_deref(), Some("gw"));
    assert_eq!(
        (
            e.max_event_types,
            e.retained_bytes,
            e.retained_events,
            e.max_latest_bytes
        ),
        (10, 2048, 7, 4096)
    );
    assert_eq!(
        e.tcp,
        crate::embedded::TcpLimits {
            max_connections: 3,
            max_frame_size: 4096,
            max_buffered_input: 8192,
            max_outbound_bytes: 1024,
            max_outbound_messages: 5,
        }
    );
    // Not loopback: refused without allow_remote, and allow_remote needs a token.
    let remote = |extra: Value| {
        let mut e = json!({"eventer_server": {"host": "0.0.0.0", "port": 23012}});
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        error_lines(embedded(e))
    };
    let lines = remote(json!({}));
    assert!(
        lines.len() == 1
            && lines[0].contains("/event_server/embedded")
            && lines[0].contains("allow_remote"),
        "{lines:?}"
    );
    let lines = remote(json!({"allow_remote": true}));
    assert!(
        lines.len() == 1 && lines[0].contains("needs a token"),
        "{lines:?}"
    );
    assert!(remote(json!({"allow_remote": true, "token": "x"})).is_empty());
    // Loopback and localhost need neither.
    let local = json!({"eventer_server": {"host": "localhost", "port": 1}});
    assert!(error_lines(embedded(local)).is_empty());
    // A limit of 0 is a schema error.
    let zero = error_lines(embedded(json!({"limits": {"max_connections": 0}})));
    assert!(
        zero.iter().any(|l| l.contains("/limits/max_connections")),
        "{zero:?}"
    );
}

#[test]
fn plugin_load_failure_names_the_module_pointer() {
    assert_eq!(
        error_lines(doc(json!([{"module": "nope", "name": "d"}]))),
        [
            r#"gateway.yaml: /devices/0/module: cannot load plugin "nope": no plugin named "nope" in the plugin directories"#
        ]
    );
}

#[test]
fn plugin_schema_errors_are_prefixed_with_the_entry_pointer() {
    let lines = error_lines(doc(json!([
        {"module": "sim", "name": "ok"},
        {"module": "strict", "name": "m", "extra": 1}
    ])));
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines.contains(
        &r#"gateway.yaml: /devices/1/connection: "connection" is a required property"#.to_owned()
    ));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("gateway.yaml: /devices/1: ") && l.contains("extra")));
}

#[test]
fn duplicate_type_and_name_is_refused_but_same_name_other_type_is_fine() {
    let lines = error_lines(doc(json!([
        {"module": "sim", "name": "d"},
        {"module": "strict", "name": "d", "connection": {}},
        {"module": "sim2", "name": "d"}
    ])));
    assert_eq!(
        lines,
        [
            r#"gateway.yaml: /devices/2/name: duplicate device: type "sim" and name "d" are already used by /devices/0"#
        ]
    );
}

#[test]
fn all_errors_are_reported_together() {
    let value = json!({
        "name": "a/b",
        "event_server": {"eventer_server": {"host": "h"}},
        "devices": [
            {"name": "no-module"},
            {"module": "nope", "name": "x"},
            {"module": "sim", "name": "bad", "period": "fast"},
            {"module": "sim"}
        ],
        "log": {"filter": "x=loud"}
    });
    let errors = validate(&raw(value), &resolver).unwrap_err();
    let mut pointers: Vec<_> = errors
        .errors()
        .iter()
        .map(|e| e.pointer().unwrap().to_owned())
        .collect();
    pointers.sort();
    assert_eq!(
        pointers,
        [
            "/devices/0/module",
            "/devices/1/module",
            "/devices/2/period",
            "/devices/3/name",
            "/event_server/eventer_server/port",
            "/log/filter",
            "/name",
        ]
    );
}

#[test]
fn monitor_component_builds_the_monitor_spec() {
    let value = json!({
        "name": "gw",
        "event_server": {"monitor_component": {"host": "127.0.0.1", "port": 23010,
            "gateway_group": "g", "event_server_group": "e"}},
        "devices": []
    });
    let config = validate(&raw(value), &resolver).unwrap();
    assert_eq!(
        config.spec.event_server,
        EventServerSpec::Monitor {
            host: "127.0.0.1".into(),
            port: 23010,
            gateway_group: "g".into(),
            event_server_group: "e".into(),
        }
    );
}

#[test]
fn monitor_component_needs_both_groups() {
    let value = json!({
        "name": "gw",
        "event_server": {"monitor_component": {"host": "127.0.0.1", "port": 23010,
            "gateway_group": "g"}},
        "devices": []
    });
    let lines = error_lines(value);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("gateway.yaml: /event_server/monitor_component"),
        "{lines:?}"
    );
    assert!(lines[0].contains("event_server_group"), "{lines:?}");
}

#[test]
fn log_section_is_read_and_hat_dict_config_is_mapped() {
    let mut value = doc(json!([]));
    value["log"] = json!({"level": "debug", "format": "json", "filter": "h2=warn"});
    let log = validate(&raw(value.clone()), &resolver).unwrap().log;
    assert_eq!(log.level, "debug");
    assert_eq!(log.format, LogFormat::Json);
    assert_eq!(log.directives(), "debug,h2=warn");

    value["log"] = json!({"version": 1, "root": {"level": "DEBUG"}});
    value["adminer_server"] = json!({"host": "127.0.0.1", "port": 23016});
    let config = validate(&raw(value.clone()), &resolver).unwrap();
    assert_eq!(config.log.level, "debug");
    // The adminer server is served: nothing to warn about.
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert_eq!(
        config.adminer,
        Some(crate::adminer::AdminerConfig::new("127.0.0.1", 23016))
    );
    value["adminer_server"] =
        json!({"host": "127.0.0.1", "port": 0, "max_connections": 2, "max_frame_bytes": 8192});
    let adminer = validate(&raw(value.clone()), &resolver)
        .unwrap()
        .adminer
        .unwrap();
    assert_eq!(
        (adminer.max_connections, adminer.max_frame_bytes),
        (2, 8192)
    );
    value["adminer_server"] = json!({"host": "127.0.0.1", "port": 0, "max_connections": 0});
    let err = validate(&raw(value.clone()), &resolver)
        .unwrap_err()
        .to_string();
    assert!(err.contains("/adminer_server/max_connections"), "{err}");
    value["adminer_server"] = json!({"host": "0.0.0.0", "port": 23016});
    let config = validate(&raw(value.clone()), &resolver).unwrap();
    assert!(
        config.warnings.iter().any(|w| w.contains("not a loopback")),
        "{:?}",
        config.warnings
    );
    value["adminer_server"] = json!({"host": "127.0.0.1", "port": 23016});

    value["plugin_dir"] = json!("typo");
    let config = validate(&raw(value.clone()), &resolver).unwrap();
    assert!(
        config
            .warnings
            .contains(&r#"unknown top-level key "plugin_dir" ignored"#.to_owned()),
        "{:?}",
        config.warnings
    );

    value["log"] = json!({"level": "loud"});
    let lines = error_lines(value);
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("gateway.yaml: /log/level: "),
        "{lines:?}"
    );
}

#[test]
fn allow_insecure_plugins_is_read_before_validation_and_typed_by_the_schema() {
    let mut value = doc(json!([]));
    assert!(!allow_insecure_plugins(&raw(value.clone())));
    value["allow_insecure_plugins"] = json!(true);
    assert!(allow_insecure_plugins(&raw(value.clone())));
    assert!(error_lines(value.clone()).is_empty());
    value["allow_insecure_plugins"] = json!("yes");
    assert!(!allow_insecure_plugins(&raw(value.clone())));
    let lines = error_lines(value);
    assert!(
        lines.iter().any(|l| l.contains("/allow_insecure_plugins")),
        "{lines:?}"
    );
}

#[test]
fn plugin_dirs_are_relative_to_the_config_file() {
    let mut value = doc(json!([]));
    value["plugins_dir"] = json!("plugins");
    assert_eq!(
        plugin_dirs(&raw(value.clone())),
        [PathBuf::from("/etc/gw/plugins")]
    );
    value["plugins_dir"] = json!(["/opt/p", "q"]);
    assert_eq!(
        plugin_dirs(&raw(value.clone())),
        [PathBuf::from("/opt/p"), PathBuf::from("/etc/gw/q")]
    );
    value["plugins_dir"] = json!(5);
    assert!(plugin_dirs(&raw(value.clone())).is_empty());
    let lines = error_lines(value);
    assert_eq!(
        lines,
        ["gateway.yaml: /plugins_dir: must be a string or an array of strings"]
    );
}

#[test]
fn known_top_level_keys_are_the_schema_properties() {
    let schema = main_schema().unwrap();
    let mut from_schema: Vec<&str> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    from_schema.sort_unstable();
    let mut known = TOP_LEVEL_KEYS.to_vec();
    known.sort_unstable();
    assert_eq!(known, from_schema);
}

#[test]
fn embedded_db_path_and_retained_seconds() {
    let embedded = |e: Value| json!({"name": "gw", "event_server": {"embedded": e}, "devices": []});
    let config = validate(
        &raw(embedded(json!({"db_path": "/var/lib/gw/events.redb",
                             "limits": {"retained_seconds": 3600}}))),
        &resolver,
    )
    .unwrap();
    assert_eq!(
        config.embedded.db_path.as_deref(),
        Some(std::path::Path::new("/var/lib/gw/events.redb"))
    );
    assert_eq!(config.embedded.retained_seconds, Some(3600));
    // `store: memory`: no file.
    let memory = validate(&raw(embedded(json!({"store": "memory"}))), &resolver).unwrap();
    assert_eq!(memory.embedded.db_path, None);
    // Relative: under the state directory; absent: `<name>.redb` there.
    if let Ok(dir) = super::state_dir() {
        let relative = validate(&raw(embedded(json!({"db_path": "x.redb"}))), &resolver).unwrap();
        assert_eq!(relative.embedded.db_path, Some(dir.join("x.redb")));
        let default = validate(&raw(embedded(json!({}))), &resolver).unwrap();
        assert_eq!(default.embedded.db_path, Some(dir.join("gw.redb")));
        let file = validate(&raw(embedded(json!({"store": "file"}))), &resolver).unwrap();
        assert_eq!(file.embedded.db_path, Some(dir.join("gw.redb")));
    }
    // Both: which one is meant is unclear.
    let both = validate(
        &raw(embedded(json!({"store": "memory", "db_path": "/x.redb"}))),
        &resolver,
    )
    .unwrap_err()
    .to_string();
    assert!(
        both.contains("/event_server/embedded") && both.contains("store is memory"),
        "{both}"
    );
    let bad = validate(&raw(embedded(json!({"store": "disk"}))), &resolver)
        .unwrap_err()
        .to_string();
    assert!(bad.contains("/event_server/embedded/store"), "{bad}");
}

/// A resolver that also knows the hat-gateway module name of `sim` (as a plugin
/// declaring it would).
fn hat_resolver(module: &str) -> Result<Arc<dyn DeviceFactory>, String> {
    match module {
        "hat.gateway.devices.sim" => resolver("sim"),
        other => resolver(other),
    }
}

#[test]
fn event_types_default_to_the_seeds() {
    let config = validate(
        &raw(doc(json!([{"module": "sim", "name": "s1"}]))),
        &resolver,
    )
    .unwrap();
    assert_eq!(config.spec.event_types, EventTypes::Seeds);
    assert_eq!(config.compat.source, LayoutSource::Default);
    assert!(
        config.compat.mapped.is_empty(),
        "{:?}",
        config.compat.mapped
    );
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert_eq!(config.embedded.own_gateway, None, "not the embedded mode");
}

#[test]
fn hat_module_names_pick_the_hat_layout_with_a_warning() {
    let value = doc(json!([{"module": "hat.gateway.devices.sim", "name": "s1"}]));
    let config = validate(&raw(value), &hat_resolver).unwrap();
    assert_eq!(config.spec.event_types, EventTypes::HatGateway06);
    assert_eq!(config.compat.source, LayoutSource::HatModules);
    assert_eq!(
        config.spec.device_prefix("sim", "s1"),
        gateway_model::event_type_from_str("gateway/sim/s1")
    );
    assert!(
        config
            .compat
            .mapped
            .contains(&"/devices/0/module: hat.gateway.devices.sim -> device type sim".to_owned()),
        "{:?}",
        config.compat.mapped
    );
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("event_types is not set")),
        "{:?}",
        config.warnings
    );
    assert!(config
        .compat
        .layout_line()
        .starts_with("hat-gateway-0.6 (picked"));
}

#[test]
fn event_types_key_chooses_the_layout_and_is_checked() {
    let mut value = doc(json!([{"module": "hat.gateway.devices.sim", "name": "s1"}]));
    value["event_types"] = json!("seeds");
    let config = validate(&raw(value.clone()), &hat_resolver).unwrap();
    assert_eq!(config.spec.event_types, EventTypes::Seeds);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);

    value["event_types"] = json!("hat-gateway-0.6");
    value["event_server"] = json!({"embedded": {}});
    let config = validate(&raw(value.clone()), &hat_resolver).unwrap();
    assert_eq!(config.spec.event_types, EventTypes::HatGateway06);
    assert_eq!(config.compat.layout_line(), "hat-gateway-0.6 (event_types)");
    // The forgery guard knows only the seeds' output types.
    assert_eq!(config.embedded.own_gateway, None);

    value["event_types"] = json!("hat-gateway-0.5");
    value["devices"] = json!([{"module": "sim", "name": "s1"}]);
    let lines = error_lines(value);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("gateway.yaml: /event_types: "),
        "{lines:?}"
    );
}

#[test]
fn type_and_version_are_accepted_and_reported() {
    let mut value = doc(json!([]));
    value["type"] = json!("gateway");
    value["version"] = json!("0.6.48");
    let config = validate(&raw(value.clone()), &resolver).unwrap();
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert!(config
        .compat
        .mapped
        .contains(&r#"version: "0.6.48" (informational)"#.to_owned()));
    value["type"] = json!("event");
    assert_eq!(error_lines(value).len(), 1);
}
