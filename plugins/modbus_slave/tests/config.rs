//! The configuration: our schema's `slave` definition is hat-gateway 0.6.48's, a hat
//! entry is valid in both, and the checks the schema cannot express name the JSON
//! pointer of the bad value.
#![allow(clippy::unwrap_used)]

mod common;

use common::{all_points, point, serial_conf, site_packages, tcp_conf};
use modbus_slave::config::SlaveConfig;
use serde_json::{json, Value};

fn hat_repo() -> Value {
    let path = site_packages().join("hat/gateway/json_schema_repo.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn validator(schema: Value) -> jsonschema::Validator {
    let registry = jsonschema::Registry::new()
        .add("hat-gateway://modbus.yaml", schema)
        .unwrap()
        .prepare()
        .unwrap();
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .with_registry(&registry)
        .build(&json!({"$ref": modbus_slave::JSON_SCHEMA_ID}))
        .unwrap()
}

#[test]
fn our_slave_definition_is_hats() {
    let ours: Value = serde_json::from_str(modbus_slave::JSON_SCHEMA).unwrap();
    let hat = hat_repo();
    let mut our_slave = ours["$defs"]["slave"].clone();
    our_slave.as_object_mut().unwrap().remove("title");
    assert_eq!(
        our_slave,
        hat["hat-gateway://modbus.yaml"]["$defs"]["slave"]
    );
    assert_eq!(
        ours["$defs"]["events"]["slave"],
        hat["hat-gateway://modbus.yaml"]["$defs"]["events"]["slave"]
    );
}

#[test]
fn hat_entries_are_valid_in_both_schemas_and_parse() {
    let ours = validator(serde_json::from_str(modbus_slave::JSON_SCHEMA).unwrap());
    let hat = validator(hat_repo()["hat-gateway://modbus.yaml"].clone());
    let entries = [
        tcp_conf("TCP", all_points()),
        tcp_conf("RTU", all_points()),
        serial_conf("ASCII", std::path::Path::new("/dev/ttyS0"), all_points()),
    ];
    for entry in entries {
        assert!(ours.is_valid(&entry), "{entry}");
        assert!(hat.is_valid(&entry), "{entry}");
        SlaveConfig::from_json(&entry).unwrap();
    }
    let mut bad = tcp_conf("TCP", all_points());
    bad["transport"]["keep_alive_timeout"] = json!("never");
    assert!(!ours.is_valid(&bad) && !hat.is_valid(&bad));
}

#[test]
fn semantic_errors_name_the_pointer() {
    let err = |data: Value| {
        SlaveConfig::from_json(&tcp_conf("TCP", data))
            .err()
            .unwrap()
            .to_string()
    };
    let e = err(json!([
        point("a", "COIL", 0, 0, 1),
        point("a", "COIL", 1, 0, 1)
    ]));
    assert!(e.contains("/data/1/name"), "{e}");
    let e = err(json!([point("a", "HOLDING_REGISTER", 0, 0, 0)]));
    assert!(e.contains("/data/0/bit_count"), "{e}");
    let e = err(json!([point("a", "HOLDING_REGISTER", 0, 0, 65)]));
    assert!(e.contains("/data/0/bit_count"), "{e}");
    // Two registers from 0xFFFF run past the last address.
    let e = err(json!([
        point("ok", "COIL", 0xFFFF, 0, 1),
        point("a", "HOLDING_REGISTER", 0xFFFF, 0, 32)
    ]));
    assert!(e.contains("/data/1/bit_count"), "{e}");
    let mut conf = tcp_conf("TCP", all_points());
    conf["transport"]["response_timeout"] = json!(-1);
    let e = SlaveConfig::from_json(&conf).err().unwrap().to_string();
    assert!(e.contains("/transport/response_timeout"), "{e}");
}
