//! The embedded JSON Schema accepts hat-gateway 0.6.48 `iec101_master` entries (both
//! link types) with only `module` changed (checked against hat's own schema too),
//! `gateway-host check` accepts one, malformed entries are rejected, and
//! `MasterConfig::from_json` rejects what the schema cannot see, naming the JSON
//! pointer.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::hat_schemas::HatSchemas;
use gateway_test_support::TempDir;
use iec101_master::config::{LinkDirection, RemoteKind};
use iec101_master::{ConfigError, MasterConfig, JSON_SCHEMA, JSON_SCHEMA_ID};
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
        "module": "hat.gateway.devices.iec101.master",
        "name": "master1",
        "port": "/dev/ttyS0",
        "baudrate": 9600,
        "bytesize": "EIGHTBITS",
        "parity": "EVEN",
        "stopbits": "ONE",
        "flow_control": {"xonxoff": false, "rtscts": false, "dsrdtr": false},
        "silent_interval": 0.005,
        "cause_size": "ONE",
        "asdu_address_size": "ONE",
        "io_address_size": "TWO",
        "reconnect_delay": 5,
        "link_type": "UNBALANCED",
        "device_address_size": "ONE",
        "remote_devices": [
            {"address": 1, "response_timeout": 2, "send_retry_count": 3,
             "poll_class1_delay": 1, "poll_class2_delay": null,
             "reconnect_delay": 5, "time_sync_delay": 60},
            {"address": 2, "response_timeout": 2.5, "send_retry_count": 0,
             "poll_class1_delay": null, "poll_class2_delay": 0.5,
             "reconnect_delay": 1, "time_sync_delay": null}
        ]
    })
}

fn balanced_entry() -> Value {
    let mut conf = hat_entry();
    conf["link_type"] = json!("BALANCED");
    conf["device_address_size"] = json!("ZERO");
    conf["remote_devices"] = json!([
        {"direction": "A_TO_B", "address": 0, "response_timeout": 2, "send_retry_count": 3,
         "status_delay": 5, "reconnect_delay": 5, "time_sync_delay": null}
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
        hats.assert_valid("hat-gateway://iec101.yaml#/$defs/master", &conf);
        assert!(
            errors(&ours, &conf).is_empty(),
            "{:?}",
            errors(&ours, &conf)
        );
        conf["module"] = json!("iec101_master");
        assert!(errors(&ours, &conf).is_empty());
        MasterConfig::from_json(&conf).unwrap();
    }
    let config = MasterConfig::from_json(&hat_entry()).unwrap();
    assert!(!config.is_balanced());
    assert_eq!(config.broadcast_asdu_address(), 0xFF);
    let remotes = config.remotes();
    assert_eq!(remotes.len(), 2);
    assert_eq!(remotes[0].address, 1);
    assert_eq!(remotes[0].time_sync_delay, Some(Duration::from_secs(60)));
    assert_eq!(
        remotes[1].kind,
        RemoteKind::Unbalanced {
            poll_class1_delay: None,
            poll_class2_delay: Some(Duration::from_millis(500))
        }
    );
    assert_eq!(remotes[1].response_timeout, Duration::from_millis(2500));
    let balanced = MasterConfig::from_json(&balanced_entry()).unwrap();
    assert!(balanced.is_balanced());
    assert_eq!(
        balanced.remotes()[0].kind,
        RemoteKind::Balanced {
            direction: LinkDirection::AToB,
            status_delay: Duration::from_secs(5)
        }
    );
}

#[test]
fn malformed_entries_are_rejected_by_the_schema() {
    let ours = ours();
    for (pointer, value) in [
        ("/link_type", json!("POINT_TO_POINT")),
        ("/device_address_size", json!("ZERO")),
        ("/bytesize", json!(8)),
        ("/parity", json!("none")),
        ("/remote_devices/0/address", json!(70000)),
        ("/remote_devices/0/poll_class1_delay", json!("1")),
        ("/remote_devices/1/send_retry_count", json!(-1)),
        ("/reconnect_delay", json!(-1)),
        ("/flow_control", json!({"xonxoff": false})),
    ] {
        let mut conf = hat_entry();
        *conf.pointer_mut(pointer).unwrap() = value;
        assert!(!errors(&ours, &conf).is_empty(), "{pointer} accepted");
    }
    for field in ["port", "remote_devices", "silent_interval", "link_type"] {
        let mut conf = hat_entry();
        conf.as_object_mut().unwrap().remove(field);
        assert!(!errors(&ours, &conf).is_empty(), "without {field} accepted");
    }
    // A balanced remote device needs its direction and status delay.
    let mut conf = balanced_entry();
    conf["remote_devices"][0]
        .as_object_mut()
        .unwrap()
        .remove("direction");
    assert!(!errors(&ours, &conf).is_empty());
}

#[test]
fn what_the_schema_cannot_see_is_rejected_with_its_pointer() {
    for (pointer, value) in [
        ("/remote_devices/1/address", json!(1)),
        ("/remote_devices/0/address", json!(255)),
        ("/remote_devices/0/response_timeout", json!(-2)),
        ("/remote_devices/0/time_sync_delay", json!(1e12)),
        ("/silent_interval", json!(-0.5)),
        ("/baudrate", json!(0)),
        ("/device_address_size", json!("ZERO")),
        ("/queue_size", json!(0)),
    ] {
        let mut conf = hat_entry();
        conf["queue_size"] = json!(1);
        *conf.pointer_mut(pointer).unwrap() = value;
        match MasterConfig::from_json(&conf) {
            Err(ConfigError::Invalid { pointer: p, .. }) => assert_eq!(p, pointer),
            other => panic!("{pointer}: {other:?}"),
        }
    }
    // A balanced link of address size ZERO has only address 0.
    let mut conf = balanced_entry();
    conf["remote_devices"][0]["address"] = json!(1);
    assert!(matches!(
        MasterConfig::from_json(&conf),
        Err(ConfigError::Invalid { pointer, .. }) if pointer == "/remote_devices/0/address"
    ));
    conf["device_address_size"] = json!("ONE");
    conf["remote_devices"][0]["address"] = json!(255);
    MasterConfig::from_json(&conf).unwrap();
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
    let dir = TempDir::new("iec101-master-check");
    let entry = "
  - module: iec101_master
    name: master1
    port: /dev/ttyS0
    baudrate: 9600
    bytesize: EIGHTBITS
    parity: EVEN
    stopbits: ONE
    flow_control: {xonxoff: false, rtscts: false, dsrdtr: false}
    silent_interval: 0.005
    cause_size: ONE
    asdu_address_size: ONE
    io_address_size: TWO
    reconnect_delay: 5
    link_type: UNBALANCED
    device_address_size: ONE
    remote_devices:
      - address: 1
        response_timeout: 2
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
