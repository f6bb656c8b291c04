//! hat-gateway 0.6.48's event payload schemas from the test venv's
//! `json_schema_repo.json`, for checking the payloads the IEC devices register.
//!
//! Shared by the IEC plugins' tests (`#[path = "../../iec_common/tests/hat_schemas/mod.rs"]`).
//!
//! hat's own payloads do not all validate against hat's schemas, in two known ways that
//! [`HatSchemas::check_event`] accounts for (and nothing else):
//! - the `oneOf` of data and command shapes overlaps (a single value is also a valid
//!   double, a scaled one a valid normalized and floating, ...), so a payload matching
//!   its own shape matches several; the check requires the shape the event type names;
//! - a counter quality's `sequence` is typed boolean while hat writes its integer
//!   (0 to 31); the check requires the integer.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use jsonschema::error::ValidationErrorKind;
use serde_json::{json, Value};

/// The schemas of hat's `json_schema_repo.json`, by id.
#[derive(Clone)]
pub(crate) struct HatSchemas {
    repo: Arc<HashMap<String, Value>>,
}

struct RepoRetriever(Arc<HashMap<String, Value>>);

impl jsonschema::Retrieve for RepoRetriever {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let id = uri.as_str().split('#').next().unwrap_or_default();
        self.0
            .get(id)
            .cloned()
            .ok_or_else(|| format!("schema {id} not in hat's repository").into())
    }
}

impl HatSchemas {
    /// Loads the repository from the test venv.
    pub(crate) fn load() -> Self {
        let venv = gateway_test_support::venv_with(&["bin/python"]);
        let path = std::fs::read_dir(venv.join("lib"))
            .unwrap()
            .map(|e| {
                e.unwrap()
                    .path()
                    .join("site-packages/hat/gateway/json_schema_repo.json")
            })
            .find(|p| p.is_file())
            .expect("hat-gateway's json_schema_repo.json in the venv");
        let repo: HashMap<String, Value> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        Self {
            repo: Arc::new(repo),
        }
    }

    /// Errors of `payload` against the schema at `uri` (`hat-gateway://...#/...`), as
    /// `(instance path, is oneOf with several matches, message)`.
    pub(crate) fn errors(&self, uri: &str, payload: &Value) -> Vec<(String, bool, String)> {
        let validator = jsonschema::options()
            .with_retriever(RepoRetriever(self.repo.clone()))
            .build(&json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": uri}))
            .unwrap();
        validator
            .iter_errors(payload)
            .map(|e| {
                let several = matches!(e.kind(), ValidationErrorKind::OneOfMultipleValid { .. });
                (e.instance_path().to_string(), several, e.to_string())
            })
            .collect()
    }

    /// Asserts that `payload` is valid at `uri`.
    pub(crate) fn assert_valid(&self, uri: &str, payload: &Value) {
        let errors = self.errors(uri, payload);
        assert!(errors.is_empty(), "{uri}: {payload}: {errors:?}");
    }

    /// Checks a payload of an event a device registers or consumes, by the event type's
    /// tail after the 4-segment prefix (`gateway/data/single/1/2`, `system/command/...`,
    /// `gateway/status`, ...) and the device kind (`master` or `slave`), against
    /// `hat-gateway://iec104.yaml#/$defs/events/<kind>/<direction>/<event>`, allowing
    /// only hat's two known schema faults (module documentation).
    pub(crate) fn check_event(&self, kind: &str, tail: &str, payload: &Value) {
        let segments: Vec<&str> = tail.split('/').collect();
        let type_name = match segments[1] {
            "data" | "command" => Some(segments[2]),
            _ => None,
        };
        self.check_event_in("iec104", kind, segments[0], segments[1], type_name, payload);
    }

    /// Like [`check_event`](Self::check_event) for any schema file (`iec101`,
    /// `iec104`): the payload of event `event` (`data`, `command`, `status`, ...)
    /// against `hat-gateway://<file>.yaml#/$defs/events/<kind>/<direction>/<event>`;
    /// `type_name` is the data or command type the event type names, for `data` and
    /// `command` events.
    pub(crate) fn check_event_in(
        &self,
        file: &str,
        kind: &str,
        direction: &str,
        event: &str,
        type_name: Option<&str>,
        payload: &Value,
    ) {
        let tail = format!("{direction}/{event}");
        let uri = format!("hat-gateway://{file}.yaml#/$defs/events/{kind}/{direction}/{event}");
        let shape = match (event, type_name) {
            ("data", Some(type_name)) => Some(("data", "data", type_name)),
            ("command", Some(type_name)) => Some(("command", "commands", type_name)),
            _ => None,
        };
        let Some((field, defs, type_name)) = shape else {
            self.assert_valid(&uri, payload);
            return;
        };
        // The shape the event type names, with the integer sequence hat writes.
        let mut part = payload[field].clone();
        if type_name == "binary_counter" {
            let sequence = &mut part["quality"]["sequence"];
            let n = sequence
                .as_u64()
                .unwrap_or_else(|| panic!("{tail}: sequence {sequence}"));
            assert!(n <= 31, "{tail}: sequence {n}");
            *sequence = json!(false);
        }
        self.assert_valid(
            &format!("hat-gateway://iec101.yaml#/$defs/{defs}/{type_name}"),
            &part,
        );
        // The whole event with that part: only the overlapping oneOf may fail.
        let mut whole = payload.clone();
        whole[field] = part;
        let errors: Vec<_> = self
            .errors(&uri, &whole)
            .into_iter()
            .filter(|(path, several, _)| !(*several && path == &format!("/{field}")))
            .collect();
        assert!(errors.is_empty(), "{uri}: {payload}: {errors:?}");
    }
}
