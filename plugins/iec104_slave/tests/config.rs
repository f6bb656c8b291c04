//! The embedded JSON Schema accepts a hat-gateway 0.6.48 `iec104_slave` entry with only
//! `module` changed (checked against hat's own schema too), rejects malformed ones, and
//! `SlaveConfig::from_json` rejects what the schema cannot see, naming the JSON pointer.
#![allow(clippy::unwrap_used)]

use iec104_slave::{ConfigError, SlaveConfig, JSON_SCHEMA, JSON_SCHEMA_ID};
use serde_json::{json, Value};

fn validator_for(schema: &Value, def: &str) -> jsonschema::Validator {
    let root = json!({"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": format!("#/$defs/{def}")});
    jsonschema::validator_for(&root).unwrap()
}

fn ours() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(JSON_SCHEMA).unwrap();
    assert_eq!(
        format!("{}#/$defs/slave", schema["$id"].as_str().unwrap()),
        JSON_SCHEMA_ID
    );
    validator_for(&schema, "slave")
}

/// hat-gateway's own `iec104.yaml` from the test venv's `json_schema_repo.json`.
fn hats() -> jsonschema::Validator {
    let venv = gateway_test_support::venv_with(&["bin/python"]);
    let repo = std::fs::read_dir(venv.join("lib"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .join("site-packages/hat/gateway/json_schema_repo.json")
        })
        .find(|p| p.is_file())
        .expect("hat-gateway's json_schema_repo.json in the venv");
    let repo: Value = serde_json::from_str(&std::fs::read_to_string(repo).unwrap()).unwrap();
    validator_for(&repo["hat-gateway://iec104.yaml"], "slave")
}

fn hat_entry() -> Value {
    json!({
        "module": "hat.gateway.devices.iec104.slave",
        "name": "slave1",
        "local_host": "0.0.0.0",
        "local_port": 2404,
        "remote_hosts": ["10.0.0.1", "10.0.0.2"],
        "max_connections": 2,
        "response_timeout": 15,
        "supervisory_timeout": 10,
        "test_timeout": 20,
        "send_window_size": 12,
        "receive_window_size": 8,
        "buffers": [{"name": "b1", "size": 100}],
        "data": [
            {"data_type": "SINGLE", "asdu_address": 1, "io_address": 1, "buffer": "b1"},
            {"data_type": "FLOATING", "asdu_address": 1, "io_address": 2, "buffer": null},
            {"data_type": "BINARY_COUNTER", "asdu_address": 2, "io_address": 3, "buffer": null}
        ]
    })
}

fn errors(validator: &jsonschema::Validator, conf: &Value) -> Vec<String> {
    validator.iter_errors(conf).map(|e| e.to_string()).collect()
}

#[test]
fn a_hat_entry_validates_with_only_module_changed() {
    let (ours, hats) = (ours(), hats());
    let mut conf = hat_entry();
    assert!(errors(&hats, &conf).is_empty());
    assert!(
        errors(&ours, &conf).is_empty(),
        "{:?}",
        errors(&ours, &conf)
    );
    conf["module"] = json!("iec104_slave");
    assert!(errors(&ours, &conf).is_empty());
    let config = SlaveConfig::from_json(&conf).unwrap();
    assert_eq!(config.local_port, 2404);
    assert_eq!(config.data.len(), 3);
    // Nulls where hat allows them.
    conf["remote_hosts"] = json!(null);
    conf["max_connections"] = json!(null);
    assert!(errors(&ours, &conf).is_empty());
    assert!(errors(&hats, &conf).is_empty());
    SlaveConfig::from_json(&conf).unwrap();
}

#[test]
fn malformed_entries_fail_both_schemas() {
    let (ours, hats) = (ours(), hats());
    let cases = [
        ("/local_port", json!("2404")),
        ("/remote_hosts", json!("10.0.0.1")),
        ("/send_window_size", json!(1.5)),
        ("/data/0/data_type", json!("SINGLE_COMMAND")),
        ("/data/0/buffer", json!(3)),
    ];
    for (pointer, value) in cases {
        let mut conf = hat_entry();
        *conf.pointer_mut(pointer).unwrap() = value;
        assert!(!errors(&ours, &conf).is_empty(), "ours accepted {pointer}");
        assert!(!errors(&hats, &conf).is_empty(), "hat accepted {pointer}");
    }
    let mut conf = hat_entry();
    conf["data"][1].as_object_mut().unwrap().remove("buffer");
    assert!(!errors(&ours, &conf).is_empty());
}

#[test]
fn semantic_errors_name_the_pointer() {
    let cases = [
        ("/local_port", json!(70000), "/local_port"),
        ("/send_window_size", json!(0), "/send_window_size"),
        ("/receive_window_size", json!(40000), "/receive_window_size"),
        ("/response_timeout", json!(-1), "/response_timeout"),
        ("/buffers/0/size", json!(-1), "/buffers/0/size"),
        ("/data/0/buffer", json!("nope"), "/data/0/buffer"),
        ("/data/1/asdu_address", json!(65536), "/data/1/asdu_address"),
        (
            "/data/2/io_address",
            json!(0x100_0000),
            "/data/2/io_address",
        ),
        ("/data/2/data_type", json!("COMMAND"), "/data/2/data_type"),
    ];
    for (pointer, value, expected) in cases {
        let mut conf = hat_entry();
        *conf.pointer_mut(pointer).unwrap() = value;
        match SlaveConfig::from_json(&conf) {
            Err(ConfigError::Invalid { pointer, .. }) => assert_eq!(pointer, expected),
            other => panic!("{expected}: {other:?}"),
        }
    }
    let mut conf = hat_entry();
    conf["buffers"] = json!([{"name": "b1", "size": 1}, {"name": "b1", "size": 2}]);
    assert!(matches!(
        SlaveConfig::from_json(&conf),
        Err(ConfigError::Invalid { pointer, .. }) if pointer == "/buffers/1/name"
    ));
}
