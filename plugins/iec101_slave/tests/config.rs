//! The embedded JSON Schema accepts hat-gateway 0.6.48 `iec101_slave` entries (both
//! link types) with only `module` changed (checked against hat's own schema too),
//! `gateway-host check` accepts one, malformed entries are rejected, and
//! `SlaveConfig::from_json` rejects what the schema cannot see, naming the JSON
//! pointer.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::hat_schemas::HatSchemas;
use gateway_test_support::TempDir;
use iec101_slave::{ConfigError, SlaveConfig, JSON_SCHEMA, JSON_SCHEMA_ID};
use serde_json::{json, Value};

fn ours() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(JSON_SCHEMA).unwrap();
    assert_eq!(
        format!("{}#/$defs/slave", schema["$id"].as_str().unwrap()),
        JSON_SCHEMA_ID
    );
    let root =
        json!({"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": "#/$defs/slave"});
    jsonschema::validator_for(&root).unwrap()
}

fn hat_entry() -> Value {
    json!({
        "module": "hat.gateway.devices.iec101.slave",
        "name": "slave1",
        "port": "/dev/ttyS1",
        "baudrate": 9600,
        "bytesize": "EIGHTBITS",
        "parity": "EVEN",
        "stopbits": "ONE",
        "flow_control": {"xonxoff": false, "rtscts": false, "dsrdtr": false},
        "silent_interval": 0.005,
        "cause_size": "ONE",
        "asdu_address_size": "ONE",
        "io_address_size": "TWO",
        "buffers": [{"name": "events", "size": 100}],
        "data": [
            {"data_type": "SINGLE", "asdu_address": 1, "io_address": 1, "buffer": "events", "with_ack": true},
            {"data_type": "FLOATING", "asdu_address": 1, "io_address": 2, "buffer": null, "with_ack": false}
        ],
        "link_type": "UNBALANCED",
        "device_address_size": "ONE",
        "devices": [{"address": 1, "keep_alive_timeout": 30, "reconnect_delay": 5}]
    })
}

fn balanced_entry() -> Value {
    let mut conf = hat_entry();
    conf["link_type"] = json!("BALANCED");
    conf["device_address_size"] = json!("ONE");
    conf["devices"] = json!([
        {"direction": "B_TO_A", "address": 3, "response_timeout": 2, "send_retry_count": 3,
         "status_delay": 5, "reconnect_delay": 5}
    ]);
    conf
}

fn errors(validator: &jsonschema::Validator, conf: &Value) -> Vec<String> {
    validator.iter_errors(conf).map(|e| e.to_string()).collect()
}

#[test]
fn hat_entries_of_both_link_types_validate_with_only_module_changed() {
    let hats = HatSchemas::load();
    let ours = ours();
    for mut conf in [hat_entry(), balanced_entry()] {
        hats.assert_valid("hat-gateway://iec101.yaml#/$defs/slave", &conf);
        assert!(
            errors(&ours, &conf).is_empty(),
            "{:?}",
            errors(&ours, &conf)
        );
        conf["module"] = json!("iec101_slave");
        assert!(errors(&ours, &conf).is_empty());
        let config = SlaveConfig::from_json(&conf).unwrap();
        assert_eq!(config.broadcast_asdu_address(), 0xFF);
        assert!(config.data[0].with_ack);
    }
}

#[test]
fn malformed_entries_are_rejected_by_the_schema() {
    let ours = ours();
    for (pointer, value) in [
        ("/link_type", json!("MULTIDROP")),
        ("/device_address_size", json!("ZERO")),
        ("/data/0/data_type", json!("SINGLE_POINT")),
        ("/data/0/with_ack", json!("yes")),
        ("/devices/0/keep_alive_timeout", json!(null)),
        ("/buffers/0/size", json!("big")),
        ("/stopbits", json!(1)),
    ] {
        let mut conf = hat_entry();
        *conf.pointer_mut(pointer).unwrap() = value;
        assert!(!errors(&ours, &conf).is_empty(), "{pointer} accepted");
    }
    let mut conf = hat_entry();
    conf["data"][0].as_object_mut().unwrap().remove("with_ack");
    assert!(
        !errors(&ours, &conf).is_empty(),
        "data without with_ack accepted"
    );
    for field in ["port", "devices", "buffers", "data"] {
        let mut conf = hat_entry();
        conf.as_object_mut().unwrap().remove(field);
        assert!(!errors(&ours, &conf).is_empty(), "without {field} accepted");
    }
}

#[test]
fn what_the_schema_cannot_see_is_rejected_with_its_pointer() {
    for (pointer, value) in [
        ("/data/0/buffer", json!("nope")),
        ("/data/1/asdu_address", json!(256)),
        ("/data/1/io_address", json!(65536)),
        ("/devices/0/address", json!(255)),
        ("/devices/0/keep_alive_timeout", json!(-1)),
        ("/buffers/0/size", json!(-1)),
        ("/baudrate", json!(0)),
    ] {
        let mut conf = hat_entry();
        *conf.pointer_mut(pointer).unwrap() = value;
        match SlaveConfig::from_json(&conf) {
            Err(ConfigError::Invalid { pointer: p, .. }) => assert_eq!(p, pointer),
            other => panic!("{pointer}: {other:?}"),
        }
    }
    let mut conf = hat_entry();
    conf["buffers"] = json!([{"name": "a", "size": 1}, {"name": "a", "size": 2}]);
    conf["data"] = json!([]);
    assert!(matches!(
        SlaveConfig::from_json(&conf),
        Err(ConfigError::Invalid { pointer, .. }) if pointer == "/buffers/1/name"
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
    let dir = TempDir::new("iec101-slave-check");
    let entry = "
  - module: iec101_slave
    name: slave1
    port: /dev/ttyS1
    baudrate: 9600
    bytesize: EIGHTBITS
    parity: EVEN
    stopbits: ONE
    flow_control: {xonxoff: false, rtscts: false, dsrdtr: false}
    silent_interval: 0.005
    cause_size: ONE
    asdu_address_size: ONE
    io_address_size: TWO
    buffers:
      - {name: events, size: 100}
    data:
      - {data_type: SINGLE, asdu_address: 1, io_address: 1, buffer: events, with_ack: true}
    link_type: UNBALANCED
    device_address_size: ONE
    devices:
      - {address: 1, keep_alive_timeout: 30, reconnect_delay: 5}
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
        &config.replace("with_ack: true", "with_ack: maybe"),
    ));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/devices/0/data/0/with_ack"), "{stderr}");
}
