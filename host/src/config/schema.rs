//! JSON Schema validation of the main configuration (`schemas/main.json`) and of device
//! entries against their plugin's schema, with errors turned into file + pointer + reason.
//!
//! Schemas are registered by id in memory; the `jsonschema` crate is built without its
//! HTTP and file resolvers, so validation never touches the network.
//!
//! Memory: every compiled schema is first checked against its draft's meta-schema, and
//! the crate keeps the compiled meta-schema validator in a static for the life of the
//! process. With `jsonschema` 0.33 that validator of the 2020-12 meta-schema held
//! about 60 MB (each `$dynamicRef` of the meta-schema copied the referenced documents);
//! 0.60 compiles it in well under 1 MB, so the check stays on: plugin schemas come
//! from outside the binary and must be rejected when broken.

use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, Registry, ValidationError, Validator};
use serde_json::{json, Value};

use super::error::{escape_token, ConfigError};
use crate::device::DeviceFactory;

/// The main configuration schema, as shipped in `schemas/main.json`.
pub const MAIN_SCHEMA_TEXT: &str = include_str!("../../../schemas/main.json");

/// `$id` of the main schema.
pub const MAIN_SCHEMA_ID: &str = "gateway-host://main.json";

/// The pattern of `$defs/name` in the main schema (gateway and device names).
const NAME_PATTERN: &str = "^[^/?*]+$";

/// Instance texts longer than this are left out of error messages.
const MAX_INSTANCE_TEXT: usize = 80;

/// Device-entry keys the host itself consumes; they are removed before the entry is
/// validated against the plugin's schema and handed to the plugin, so plugins see
/// exactly what hat-gateway would give them.
pub const HOST_DEVICE_KEYS: [&str; 4] = [
    "restart",
    "event_queue_size",
    "create_timeout",
    "close_timeout",
];

/// The main schema as a JSON value.
pub fn main_schema() -> Result<&'static Value, String> {
    static SCHEMA: OnceLock<Result<Value, String>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            serde_json::from_str(MAIN_SCHEMA_TEXT)
                .map_err(|err| format!("internal error: main schema is not JSON: {err}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn main_validator() -> Result<&'static Validator, String> {
    static VALIDATOR: OnceLock<Result<Validator, String>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            let schema = main_schema()?;
            jsonschema::options()
                .with_draft(Draft::Draft202012)
                .build(schema)
                .map_err(|err| format!("internal error: main schema does not compile: {err}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Validates a whole configuration document against the main schema.
pub(super) fn validate_main(file: &str, document: &Value) -> Vec<ConfigError> {
    match main_validator() {
        Ok(validator) => validator
            .iter_errors(document)
            .map(|err| translate(file, "", &err))
            .collect(),
        Err(reason) => vec![ConfigError::document(file, reason)],
    }
}

/// A plugin's compiled device schema.
pub struct DeviceSchema {
    validator: Validator,
}

impl std::fmt::Debug for DeviceSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSchema").finish_non_exhaustive()
    }
}

impl DeviceSchema {
    /// Compiles the schema a plugin provides; `Ok(None)` when it provides none.
    ///
    /// With both a schema id and a schema (hat's `json_schema_id` + repository), the
    /// schema is registered under the id's base URI and the entry is validated against
    /// the id itself, so ids with a fragment (`hat-gateway://modbus.yaml#/$defs/master`)
    /// work. A schema without an id is used as is.
    pub fn compile(factory: &dyn DeviceFactory) -> Result<Option<Self>, String> {
        let Some(schema) = factory.json_schema() else {
            return Ok(None);
        };
        let validator = match factory.json_schema_id() {
            Some(id) => {
                let base = id.split('#').next().unwrap_or(id);
                let invalid =
                    |err: &dyn std::fmt::Display| format!("invalid JSON schema {id}: {err}");
                // The registry only indexes the schema; check it against its meta-schema
                // here so a broken plugin schema is reported when the plugin is loaded,
                // not only where the `$ref` happens to reach.
                jsonschema::meta::validate(schema).map_err(|err| invalid(&err))?;
                let registry = Registry::new()
                    .add(base, schema)
                    .and_then(|builder| builder.prepare())
                    .map_err(|err| invalid(&err))?;
                // The validator copies what it needs; the registry may be dropped after.
                jsonschema::options()
                    .with_draft(Draft::Draft202012)
                    .with_registry(&registry)
                    .build(&json!({ "$ref": id }))
                    .map_err(|err| invalid(&err))?
            }
            None => jsonschema::validator_for(schema)
                .map_err(|err| format!("invalid JSON schema: {err}"))?,
        };
        Ok(Some(Self { validator }))
    }

    /// Validates one device entry (already stripped of [`HOST_DEVICE_KEYS`]); pointers
    /// are prefixed with `entry_pointer` (e.g. `/devices/3`).
    pub fn validate(&self, file: &str, entry_pointer: &str, entry: &Value) -> Vec<ConfigError> {
        self.validator
            .iter_errors(entry)
            .map(|err| translate(file, entry_pointer, &err))
            .collect()
    }
}

/// Turns one schema error into a [`ConfigError`] whose pointer is the bad value.
///
/// A missing required property is reported at the pointer of the missing property
/// (`/devices/0/connection`), which is where the operator has to add it.
fn translate(file: &str, prefix: &str, err: &ValidationError<'_>) -> ConfigError {
    let mut pointer = format!("{prefix}{}", err.instance_path().as_str());
    let reason = match err.kind() {
        ValidationErrorKind::Required { property } => {
            if let Some(name) = property.as_str() {
                pointer.push('/');
                pointer.push_str(&escape_token(name));
            }
            format!("{property} is a required property")
        }
        ValidationErrorKind::OneOfNotValid { .. }
        | ValidationErrorKind::OneOfMultipleValid { .. } => one_of_reason(&pointer, err),
        ValidationErrorKind::Pattern { pattern } if pattern == NAME_PATTERN => format!(
            "{} is not a valid name: names must be non-empty and contain no '/', '?' or '*'",
            err.instance()
        ),
        _ => {
            let full = err.to_string();
            if err.instance().to_string().len() > MAX_INSTANCE_TEXT {
                err.masked_with("the value").to_string()
            } else {
                full
            }
        }
    };
    ConfigError::at(file, pointer, reason)
}

/// Readable `oneOf` messages for the places the main schema uses it.
fn one_of_reason(pointer: &str, err: &ValidationError<'_>) -> String {
    const MODES: [&str; 3] = ["eventer_server", "embedded", "monitor_component"];
    if pointer == "/event_server" {
        if let Value::Object(map) = err.instance().as_ref() {
            let found: Vec<String> = MODES
                .iter()
                .filter(|mode| map.contains_key(**mode))
                .map(|mode| format!("\"{mode}\""))
                .collect();
            let found = if found.is_empty() {
                "none".to_owned()
            } else {
                found.join(" and ")
            };
            return format!(
                "exactly one of \"eventer_server\", \"embedded\" or \"monitor_component\" \
                 is required (found {found})"
            );
        }
    }
    if pointer == "/plugins_dir" {
        return "must be a string or an array of strings".to_owned();
    }
    match err.kind() {
        ValidationErrorKind::OneOfMultipleValid { .. } => {
            "the value matches more than one alternative of the schema's 'oneOf'".to_owned()
        }
        _ => "the value matches none of the alternatives of the schema's 'oneOf'".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointers(errors: &[ConfigError]) -> Vec<String> {
        errors
            .iter()
            .map(|e| e.pointer().unwrap_or("").to_owned())
            .collect()
    }

    #[test]
    fn main_schema_compiles_and_has_its_id() {
        assert_eq!(main_schema().unwrap()["$id"], MAIN_SCHEMA_ID);
        assert!(main_validator().is_ok());
    }

    #[test]
    fn valid_minimal_document() {
        let doc = json!({
            "name": "gw",
            "event_server": {"eventer_server": {"host": "127.0.0.1", "port": 23012}},
            "devices": []
        });
        assert_eq!(validate_main("g.yaml", &doc), vec![]);
    }

    #[test]
    fn missing_top_level_keys_are_each_reported_at_their_pointer() {
        let errors = validate_main("g.yaml", &json!({}));
        let mut got = pointers(&errors);
        got.sort();
        assert_eq!(got, ["/devices", "/event_server", "/name"]);
        assert!(errors
            .iter()
            .any(|e| e.to_string() == r#"g.yaml: /name: "name" is a required property"#));
    }

    #[test]
    fn event_server_modes_are_exclusive() {
        let both = json!({
            "name": "gw",
            "event_server": {
                "eventer_server": {"host": "h", "port": 1},
                "monitor_component": {"host": "h", "port": 2, "gateway_group": "g",
                                      "event_server_group": "e"}
            },
            "devices": []
        });
        let errors = validate_main("g", &both);
        assert_eq!(pointers(&errors), ["/event_server"]);
        assert!(errors[0]
            .reason
            .contains("found \"eventer_server\" and \"monitor_component\""));
        let none = json!({"name": "gw", "event_server": {}, "devices": []});
        let errors = validate_main("g", &none);
        assert_eq!(pointers(&errors), ["/event_server"]);
        assert!(errors[0].reason.contains("found none"), "{}", errors[0]);
    }

    #[test]
    fn bad_names_are_explained() {
        for name in ["", "a/b", "?", "x*"] {
            let doc = json!({
                "name": name,
                "event_server": {"embedded": {}},
                "devices": [{"module": "sim", "name": name}]
            });
            let errors = validate_main("g", &doc);
            let mut got = pointers(&errors);
            got.sort();
            assert_eq!(got, ["/devices/0/name", "/name"], "{name:?}");
            assert!(
                errors[0].reason.contains("is not a valid name"),
                "{}",
                errors[0]
            );
        }
    }

    #[test]
    fn long_values_are_masked() {
        let doc = json!({
            "name": "gw",
            "event_server": {"embedded": {}},
            "devices": [{"module": "m", "name": "d", "restart": "x".repeat(200)}]
        });
        let errors = validate_main("g", &doc);
        assert_eq!(pointers(&errors), ["/devices/0/restart"]);
        assert!(errors[0].reason.len() < 150, "{}", errors[0].reason);
    }

    struct SchemaOnly {
        id: Option<&'static str>,
        schema: Value,
    }

    impl DeviceFactory for SchemaOnly {
        fn device_type(&self) -> &str {
            "t"
        }
        fn json_schema_id(&self) -> Option<&str> {
            self.id
        }
        fn json_schema(&self) -> Option<&Value> {
            Some(&self.schema)
        }
        fn create(
            &self,
            _conf: Value,
            _context: crate::device::DeviceContext,
        ) -> futures::future::BoxFuture<
            'static,
            Result<Box<dyn crate::device::DeviceInstance>, crate::device::DeviceError>,
        > {
            Box::pin(async { Err(crate::device::DeviceError::Failed("test".into())) })
        }
    }

    #[test]
    fn device_schema_by_id_with_fragment() {
        let factory = SchemaOnly {
            id: Some("test://modbus.yaml#/$defs/master"),
            schema: json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$id": "test://modbus.yaml",
                "$defs": {"master": {"type": "object", "required": ["connection"]}}
            }),
        };
        let schema = DeviceSchema::compile(&factory).unwrap().unwrap();
        let errors = schema.validate("g.yaml", "/devices/0", &json!({"name": "m"}));
        assert_eq!(
            errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [r#"g.yaml: /devices/0/connection: "connection" is a required property"#]
        );
        assert!(schema
            .validate("g", "/devices/0", &json!({"connection": {}}))
            .is_empty());
    }

    #[test]
    fn device_schema_without_id_and_broken_schema() {
        let factory = SchemaOnly {
            id: None,
            schema: json!({"type": "object", "properties": {"period": {"type": "number"}}}),
        };
        let schema = DeviceSchema::compile(&factory).unwrap().unwrap();
        let errors = schema.validate("g", "/devices/2", &json!({"period": "x"}));
        assert_eq!(pointers(&errors), ["/devices/2/period"]);
        let broken = SchemaOnly {
            id: Some("test://x.json"),
            schema: json!({"type": 12}),
        };
        assert!(DeviceSchema::compile(&broken).is_err());
    }

    #[test]
    fn device_schema_by_id_is_checked_against_the_meta_schema_as_a_whole() {
        // The id points at a valid definition; a broken one beside it is still reported
        // when the plugin's schema is compiled.
        let factory = SchemaOnly {
            id: Some("test://plugin.json#/$defs/ok"),
            schema: json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$id": "test://plugin.json",
                "$defs": {"ok": {"type": "object"}, "bad": {"minLength": "three"}}
            }),
        };
        let err = DeviceSchema::compile(&factory).err().unwrap();
        assert!(
            err.starts_with("invalid JSON schema test://plugin.json#/$defs/ok: "),
            "{err}"
        );
    }
}
