//! The embedded JSON Schema accepts a hat-gateway 0.6.48 `iec104_master` entry with
//! only `module` changed (checked against hat's own schema too), `gateway-host check`
//! accepts it, malformed entries are rejected, and `MasterConfig::from_json` rejects
//! what the schema cannot see, naming the JSON pointer.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::hat_schemas::HatSchemas;
use gateway_test_support::TempDir;
use iec104_master::{ConfigError, MasterConfig, JSON_SCHEMA, JSON_SCHEMA_ID};
use serde_json::{json, Value};

fn ours() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(JSON_SCHEMA).unwrap();
    assert_eq!(
        format!("{}#/$defs/master", schema["$id"].as_str().unwrap()),
        JSON_SCHEMA_ID
    );
    let root =
        json!({"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": "#/$defs/master"});
    jsonschema::validator_for(&root).unwrap()
}

fn hat_entry() -> Value {
    json!({
        "module": "hat.gateway.devices.iec104.master",
        "name": "master1",
        "remote_addresses": [{"host": "10.0.0.1", "port": 2404}, {"host": "rtu2.example", "port": 2405}],
        "response_timeout": 15,
        "supervisory_timeout": 10,
        "test_timeout": 20,
        "send_window_size": 12,
        "receive_window_size": 8,
        "reconnect_delay": 5.5,
        "time_sync_delay": null
    })
}

fn errors(validator: &jsonschema::Validator, conf: &Value) -> Vec<String> {
    validator.iter_errors(conf).map(|e| e.to_string()).collect()
}

#[test]
fn a_hat_entry_validates_with_only_module_changed() {
    let hats = HatSchemas::load();
    let ours = ours();
    let mut conf = hat_entry();
    hats.assert_valid("hat-gateway://iec104.yaml#/$defs/master", &conf);
    assert!(
        errors(&ours, &conf).is_empty(),
        "{:?}",
        errors(&ours, &conf)
    );
    conf["module"] = json!("iec104_master");
    assert!(errors(&ours, &conf).is_empty());
    let config = MasterConfig::from_json(&conf).unwrap();
    assert_eq!(config.remote_addresses.len(), 2);
    assert_eq!(config.time_sync_delay, None);
    let connection = config.connection();
    assert_eq!(connection.response_timeout, Duration::from_secs(15));
    assert_eq!(connection.supervisory_timeout, Duration::from_secs(10));
    assert_eq!(connection.test_timeout, Duration::from_secs(20));
    assert_eq!(
        (connection.send_window_size, connection.receive_window_size),
        (12, 8)
    );
    assert_eq!(connection.connect_timeout, Duration::from_secs(10));
    conf["time_sync_delay"] = json!(60);
    assert!(errors(&ours, &conf).is_empty());
    assert_eq!(
        MasterConfig::from_json(&conf).unwrap().time_sync_delay,
        Some(60.0)
    );
    // The extensions are optional and checked.
    conf["connect_timeout"] = json!(2.5);
    conf["send_queue_size"] = json!(16);
    conf["receive_queue_size"] = json!(32);
    conf["register_batch_size"] = json!(3);
    assert!(errors(&ours, &conf).is_empty());
    assert_eq!(
        MasterConfig::from_json(&conf)
            .unwrap()
            .register_batch_size(),
        3
    );
    let connection = MasterConfig::from_json(&conf).unwrap().connection();
    assert_eq!(connection.connect_timeout, Duration::from_millis(2500));
    assert_eq!(
        (connection.send_queue_size, connection.receive_queue_size),
        (16, 32)
    );
}

#[test]
fn malformed_entries_are_rejected_by_the_schema() {
    let ours = ours();
    for (pointer, value) in [
        ("/remote_addresses", json!({"host": "h", "port": 1})),
        ("/remote_addresses/0/port", json!("2404")),
        ("/remote_addresses/0/port", json!(70000)),
        ("/response_timeout", json!("15")),
        ("/send_window_size", json!(1.5)),
        ("/time_sync_delay", json!("often")),
        ("/reconnect_delay", json!(-1)),
    ] {
        let mut conf = hat_entry();
        *conf.pointer_mut(pointer).unwrap() = value;
        assert!(!errors(&ours, &conf).is_empty(), "{pointer} accepted");
    }
    for field in ["remote_addresses", "time_sync_delay", "test_timeout"] {
        let mut conf = hat_entry();
        conf.as_object_mut().unwrap().remove(field);
        assert!(!errors(&ours, &conf).is_empty(), "without {field} accepted");
    }
}

#[test]
fn what_the_schema_cannot_see_is_rejected_with_its_pointer() {
    for (pointer, value) in [
        ("/send_window_size", json!(0)),
        ("/receive_window_size", json!(40000)),
        ("/response_timeout", json!(-2)),
        ("/time_sync_delay", json!(1e12)),
        ("/remote_addresses/1/port", json!(0)),
        ("/register_batch_size", json!(0)),
    ] {
        let mut conf = hat_entry();
        conf["register_batch_size"] = json!(1);
        *conf.pointer_mut(pointer).unwrap() = value;
        match MasterConfig::from_json(&conf) {
            Err(ConfigError::Invalid { pointer: p, .. }) => assert_eq!(p, pointer),
            Err(ConfigError::Shape(text)) => {
                assert!(pointer.contains("window"), "{pointer}: {text}")
            }
            Ok(_) => panic!("{pointer} accepted"),
        }
    }
}

#[test]
fn gateway_host_check_accepts_the_hat_entry_and_names_a_bad_pointer() {
    let gateway_host = common::target_dir().join("gateway-host");
    assert!(
        gateway_host.is_file(),
        "{} missing: cargo build -p gateway-host",
        gateway_host.display()
    );
    let plugins = common::plugin_dir("check");
    let dir = TempDir::new("iec104-master-check");
    let entry = "
  - module: iec104_master
    name: master1
    remote_addresses:
      - host: 10.0.0.1
        port: 2404
      - host: 10.0.0.2
        port: 2404
    response_timeout: 15
    supervisory_timeout: 10
    test_timeout: 20
    send_window_size: 12
    receive_window_size: 8
    reconnect_delay: 5
    time_sync_delay: null
";
    let config = format!("name: gw\nevent_server:\n  embedded: {{}}\ndevices:{entry}");
    let check = |file: &std::path::Path| {
        Command::new(&gateway_host)
            .args(["check", "--conf"])
            .arg(file)
            .arg("--plugins-dir")
            .arg(plugins.path())
            .output()
            .unwrap()
    };
    let out = check(&dir.write("good.yaml", &config));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = check(&dir.write(
        "bad.yaml",
        &config.replace("test_timeout: 20", "test_timeout: soon"),
    ));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/devices/0/test_timeout"), "{stderr}");
}
