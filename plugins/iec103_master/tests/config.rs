//! The embedded JSON Schema accepts a hat-gateway 0.6.48 `iec103_master` entry with
//! only `module` changed (checked against hat's own schema too), `gateway-host check`
//! accepts it, malformed entries are rejected, and `MasterConfig::from_json` rejects
//! what the schema cannot see, naming the JSON pointer.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use gateway_test_support::TempDir;
use iec103_master::config::{ByteSize, Parity, StopBits};
use iec103_master::{ConfigError, MasterConfig, JSON_SCHEMA, JSON_SCHEMA_ID};
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
        "module": "hat.gateway.devices.iec103.master",
        "name": "relays",
        "port": "/dev/ttyS0",
        "baudrate": 9600,
        "bytesize": "EIGHTBITS",
        "parity": "EVEN",
        "stopbits": "ONE",
        "flow_control": {"xonxoff": false, "rtscts": false, "dsrdtr": false},
        "silent_interval": 0.005,
        "reconnect_delay": 5,
        "remote_devices": [
            {"address": 1, "response_timeout": 10, "send_retry_count": 3,
             "poll_class1_delay": 1, "poll_class2_delay": null, "reconnect_delay": 5,
             "time_sync_delay": 60},
            {"address": 2, "response_timeout": 10, "send_retry_count": 3,
             "poll_class1_delay": null, "poll_class2_delay": 2.5, "reconnect_delay": 5,
             "time_sync_delay": null}
        ]
    })
}

fn errors(validator: &jsonschema::Validator, conf: &Value) -> Vec<String> {
    validator.iter_errors(conf).map(|e| e.to_string()).collect()
}

#[test]
fn a_hat_entry_validates_with_only_module_changed() {
    let hat = common::hat_config_validator();
    let ours = ours();
    let mut conf = hat_entry();
    assert!(errors(&hat, &conf).is_empty(), "{:?}", errors(&hat, &conf));
    assert!(
        errors(&ours, &conf).is_empty(),
        "{:?}",
        errors(&ours, &conf)
    );
    conf["module"] = json!("iec103_master");
    assert!(errors(&ours, &conf).is_empty());
    let config = MasterConfig::from_json(&conf).unwrap();
    assert_eq!(
        (
            config.serial.bytesize,
            config.serial.parity,
            config.serial.stopbits
        ),
        (ByteSize::Eight, Parity::Even, StopBits::One)
    );
    assert_eq!(config.remote_devices.len(), 2);
    assert_eq!(config.remote_devices[0].time_sync_delay, Some(60.0));
    assert_eq!(config.remote_devices[1].poll_class2_delay, Some(2.5));
    assert_eq!(config.command_timeout(), Duration::from_secs(100));
    assert_eq!(config.interrogate_timeout(), Duration::from_secs(100));
    // The extensions are optional and checked.
    conf["command_timeout"] = json!(2.5);
    conf["interrogate_timeout"] = json!(30);
    conf["send_queue_size"] = json!(16);
    conf["receive_queue_size"] = json!(32);
    assert!(errors(&ours, &conf).is_empty());
    let config = MasterConfig::from_json(&conf).unwrap();
    assert_eq!(config.command_timeout(), Duration::from_millis(2500));
    assert_eq!(config.interrogate_timeout(), Duration::from_secs(30));
    assert_eq!(
        (config.send_queue_size(), config.receive_queue_size()),
        (16, 32)
    );
}

#[test]
fn malformed_entries_are_rejected_by_the_schema() {
    let ours = ours();
    for (pointer, value) in [
        ("/baudrate", json!("fast")),
        ("/bytesize", json!("EIGHT")),
        ("/parity", json!("none")),
        ("/stopbits", json!(1)),
        ("/flow_control/rtscts", json!(1)),
        ("/silent_interval", json!(-1)),
        ("/remote_devices/0/address", json!(255)),
        ("/remote_devices/0/poll_class1_delay", json!("often")),
        ("/remote_devices/1/send_retry_count", json!(-1)),
    ] {
        let mut conf = hat_entry();
        *conf.pointer_mut(pointer).unwrap() = value;
        assert!(!errors(&ours, &conf).is_empty(), "{pointer} accepted");
    }
    for field in ["port", "remote_devices", "flow_control", "reconnect_delay"] {
        let mut conf = hat_entry();
        conf.as_object_mut().unwrap().remove(field);
        assert!(!errors(&ours, &conf).is_empty(), "without {field} accepted");
    }
    let mut conf = hat_entry();
    conf["remote_devices"][0]
        .as_object_mut()
        .unwrap()
        .remove("time_sync_delay");
    assert!(!errors(&ours, &conf).is_empty());
}

#[test]
fn what_the_schema_cannot_see_is_rejected_with_its_pointer() {
    for (pointer, value) in [
        ("/remote_devices/0/address", json!(255)),
        ("/remote_devices/1/address", json!(1)),
        ("/remote_devices/0/response_timeout", json!(-2)),
        ("/remote_devices/1/time_sync_delay", json!(1e12)),
        ("/silent_interval", json!(f64::MAX)),
        ("/baudrate", json!(0)),
    ] {
        let mut conf = hat_entry();
        *conf.pointer_mut(pointer).unwrap() = value;
        match MasterConfig::from_json(&conf) {
            Err(ConfigError::Invalid { pointer: p, .. }) => assert_eq!(p, pointer),
            other => panic!("{pointer}: {other:?}"),
        }
    }
    let mut conf = hat_entry();
    conf["send_queue_size"] = json!(0);
    assert!(matches!(
        MasterConfig::from_json(&conf),
        Err(ConfigError::Invalid { pointer, .. }) if pointer == "/send_queue_size"
    ));
    let mut conf = hat_entry();
    conf["parity"] = json!("SOMETIMES");
    assert!(matches!(
        MasterConfig::from_json(&conf),
        Err(ConfigError::Shape(_))
    ));
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
    let dir = TempDir::new("iec103-master-check");
    let entry = "
  - module: iec103_master
    name: relays
    port: /dev/ttyS0
    baudrate: 9600
    bytesize: EIGHTBITS
    parity: EVEN
    stopbits: ONE
    flow_control:
      xonxoff: false
      rtscts: false
      dsrdtr: false
    silent_interval: 0.005
    reconnect_delay: 5
    remote_devices:
      - address: 1
        response_timeout: 10
        send_retry_count: 3
        poll_class1_delay: 1
        poll_class2_delay: null
        reconnect_delay: 5
        time_sync_delay: 60
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
        &config.replace("baudrate: 9600", "baudrate: fast"),
    ));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/devices/0/baudrate"), "{stderr}");
}
