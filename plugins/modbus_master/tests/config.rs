//! The embedded JSON Schema accepts hat-gateway's example configurations
//! unchanged, rejects malformed ones, and `create` rejects what the schema cannot see
//! (duplicate ids and names) with the JSON pointer of the bad value
//! (`docs/modbus-master.md` 2.5 and Q3).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use futures::future::BoxFuture;
use gateway_model::{ClientError, Event, EventClient, QueryParams, QueryResult, RegisterEvent};
use modbus_master::{MasterDevice, JSON_SCHEMA, JSON_SCHEMA_ID};
use serde_json::{json, Value};

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(JSON_SCHEMA).unwrap();
    assert_eq!(
        format!("{}#/$defs/master", schema["$id"].as_str().unwrap()),
        JSON_SCHEMA_ID
    );
    // Validate against the `master` definition the id points at.
    let master =
        json!({"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": "#/$defs/master"});
    jsonschema::validator_for(&master).unwrap()
}

/// The two configurations of hat-gateway's `test_valid_conf` (`docs/modbus-master.md`
/// 2.5), with `module` being the only difference a deployment makes.
fn upstream_examples() -> Vec<Value> {
    vec![
        json!({
            "module": "modbus_master",
            "name": "name",
            "connection": {
                "modbus_type": "TCP",
                "transport": {"type": "TCP", "host": "127.0.0.1", "port": 1502},
                "connect_timeout": 5, "connect_delay": 5, "request_timeout": 2,
                "request_delay": 0, "request_retry_immediate_count": 1,
                "request_retry_delayed_count": 3, "request_retry_delay": 1
            },
            "remote_devices": [{
                "device_id": 1, "timeout_poll_delay": 1,
                "data": [{"name": "data", "interval": 5, "data_type": "COIL",
                          "start_address": 123, "bit_offset": 0, "bit_count": 3}]
            }]
        }),
        json!({
            "module": "modbus_master",
            "name": "name",
            "connection": {
                "modbus_type": "RTU",
                "transport": {
                    "type": "SERIAL", "port": "/dev/ttyS0", "baudrate": 9600,
                    "bytesize": "EIGHTBITS", "parity": "NONE", "stopbits": "ONE",
                    "flow_control": {"xonxoff": false, "rtscts": false, "dsrdtr": false},
                    "silent_interval": 0.005
                },
                "connect_timeout": 5, "connect_delay": 5, "request_timeout": 2,
                "request_delay": 0, "request_retry_immediate_count": 1,
                "request_retry_delayed_count": 3, "request_retry_delay": 1
            },
            "remote_devices": [{
                "device_id": 1, "timeout_poll_delay": 1,
                "data": [{"name": "data", "interval": null, "data_type": "HOLDING_REGISTER",
                          "start_address": 321, "bit_offset": 2, "bit_count": 2}]
            }]
        }),
    ]
}

#[test]
fn upstream_example_configurations_validate() {
    let validator = validator();
    for conf in upstream_examples() {
        let errors: Vec<String> = validator
            .iter_errors(&conf)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        // The hat-gateway module name is just another string for the schema.
        let mut as_hat = conf.clone();
        as_hat["module"] = json!("hat.gateway.devices.modbus.master");
        assert!(validator.is_valid(&as_hat));
    }
}

#[test]
fn malformed_configurations_are_rejected_by_the_schema() {
    let validator = validator();
    let base = upstream_examples().remove(0);
    let broken: Vec<(&str, Value)> = vec![
        ("/connection/modbus_type", json!("UDP")),
        ("/connection/transport", json!({"type": "TCP", "host": "h"})),
        ("/connection/request_retry_immediate_count", json!(-1)),
        ("/connection/request_timeout", json!("2")),
        ("/remote_devices/0/device_id", json!(256)),
        ("/remote_devices/0/data/0/data_type", json!("REGISTER")),
        ("/remote_devices/0/data/0/bit_count", json!(0)),
        ("/remote_devices/0/data/0/interval", json!("fast")),
    ];
    for (pointer, value) in broken {
        let mut conf = base.clone();
        *conf.pointer_mut(pointer).unwrap() = value;
        assert!(!validator.is_valid(&conf), "{pointer} accepted");
    }
    let mut missing = base.clone();
    missing["connection"]
        .as_object_mut()
        .unwrap()
        .remove("connect_delay");
    assert!(!validator.is_valid(&missing));
}

struct NoSink;

impl EventClient for NoSink {
    fn register(&self, _: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>> {
        Box::pin(async { Ok(()) })
    }
    fn register_with_response(
        &self,
        _: Vec<RegisterEvent>,
    ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>> {
        Box::pin(async { Ok(None) })
    }
    fn query(&self, _: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>> {
        Box::pin(async { Ok(QueryResult::default()) })
    }
}

fn create_error(conf: &Value) -> String {
    let prefix = ["gateway", "gw", "modbus_master", "name"]
        .map(String::from)
        .to_vec();
    match MasterDevice::create(conf, prefix, Arc::new(NoSink)) {
        Err(err) => err.to_string(),
        Ok(_) => panic!("accepted"),
    }
}

#[test]
fn duplicates_and_unsupported_widths_are_rejected_with_their_pointer() {
    let base = upstream_examples().remove(0);
    let device = base["remote_devices"][0].clone();

    let mut duplicate_id = base.clone();
    duplicate_id["remote_devices"] = json!([device.clone(), device.clone()]);
    let err = create_error(&duplicate_id);
    assert!(
        err.contains("/remote_devices/1/device_id") && err.contains("duplicate"),
        "{err}"
    );

    let mut duplicate_name = base.clone();
    let point = device["data"][0].clone();
    duplicate_name["remote_devices"][0]["data"] = json!([point.clone(), point]);
    let err = create_error(&duplicate_name);
    assert!(err.contains("/remote_devices/0/data/1/name"), "{err}");

    let mut wide = base.clone();
    wide["remote_devices"][0]["data"][0]["bit_count"] = json!(65);
    assert!(create_error(&wide).contains("/remote_devices/0/data/0/bit_count"));

    let mut past_end = base.clone();
    past_end["remote_devices"][0]["data"][0]["start_address"] = json!(65535);
    past_end["remote_devices"][0]["data"][0]["data_type"] = json!("HOLDING_REGISTER");
    past_end["remote_devices"][0]["data"][0]["bit_count"] = json!(32);
    assert!(create_error(&past_end).contains("/remote_devices/0/data/0/start_address"));

    let mut negative = base;
    negative["connection"]["request_timeout"] = json!(-1);
    assert!(create_error(&negative).contains("/connection/request_timeout"));
}

#[tokio::test]
async fn upstream_examples_create_devices() {
    for conf in upstream_examples() {
        let prefix = ["gateway", "gw", "modbus_master", "name"]
            .map(String::from)
            .to_vec();
        let device = MasterDevice::create(&conf, prefix, Arc::new(NoSink)).unwrap();
        device.close().await;
    }
}

#[test]
fn connect_delay_max_is_optional_and_checked() {
    let validator = validator();
    let mut with_cap = upstream_examples().remove(0);
    with_cap["connection"]["connect_delay_max"] = json!(60);
    assert!(validator.is_valid(&with_cap));
    for bad in [json!(-1), json!("60")] {
        let mut conf = with_cap.clone();
        conf["connection"]["connect_delay_max"] = bad.clone();
        assert!(!validator.is_valid(&conf), "{bad} accepted");
    }
    let mut negative = with_cap;
    negative["connection"]["connect_delay_max"] = json!(-1);
    assert!(create_error(&negative).contains("/connection/connect_delay_max"));
}
