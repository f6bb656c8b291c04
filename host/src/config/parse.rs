//! Reading a configuration document (file or stdin) and parsing YAML, JSON or TOML into
//! one JSON value; finding the default configuration file.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::{ConfigError, ConfigErrors};

/// Name used for the configuration read from standard input.
pub const STDIN_NAME: &str = "<stdin>";

/// File names searched, in order, under `$XDG_CONFIG_HOME/hat/` when no `--conf` is given.
pub const DEFAULT_FILE_NAMES: [&str; 4] = [
    "gateway.yaml",
    "gateway.yml",
    "gateway.toml",
    "gateway.json",
];

/// Where the configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file; its extension selects the format.
    Path(PathBuf),
    /// Standard input (`--conf -`); the format is detected from the content.
    Stdin,
}

impl ConfigSource {
    /// `-` is standard input, anything else a path.
    pub fn from_arg(arg: &Path) -> Self {
        if arg.as_os_str() == "-" {
            Self::Stdin
        } else {
            Self::Path(arg.to_owned())
        }
    }
}

/// A configuration document format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.yaml` / `.yml`.
    Yaml,
    /// `.json`.
    Json,
    /// `.toml`.
    Toml,
}

impl Format {
    /// The format a file name's extension names (case-insensitive), if any.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "yaml" | "yml" => Some(Self::Yaml),
            "json" => Some(Self::Json),
            "toml" => Some(Self::Toml),
            _ => None,
        }
    }
}

/// A parsed, not yet validated configuration document.
#[derive(Debug, Clone, PartialEq)]
pub struct RawConfig {
    /// The origin as the operator named it: the path as given, or `<stdin>`.
    pub origin: String,
    /// Directory relative paths in the document (e.g. `plugins_dir`) are resolved
    /// against: the file's directory, or the working directory for stdin.
    pub base_dir: PathBuf,
    /// The document.
    pub value: Value,
}

/// Reads and parses a configuration.
pub fn read(source: &ConfigSource) -> Result<RawConfig, ConfigErrors> {
    match source {
        ConfigSource::Stdin => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|err| ConfigError::document(STDIN_NAME, format!("cannot read: {err}")))?;
            Ok(RawConfig {
                origin: STDIN_NAME.to_owned(),
                base_dir: PathBuf::from("."),
                value: parse(STDIN_NAME, &text, None)?,
            })
        }
        ConfigSource::Path(path) => {
            let origin = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|err| ConfigError::document(&origin, format!("cannot read: {err}")))?;
            let base_dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
                _ => PathBuf::from("."),
            };
            Ok(RawConfig {
                value: parse(&origin, &text, Format::from_path(path))?,
                origin,
                base_dir,
            })
        }
    }
}

/// Parses `text` in `format`; with no format, tries JSON, then YAML, then TOML.
pub fn parse(origin: &str, text: &str, format: Option<Format>) -> Result<Value, ConfigErrors> {
    if text.trim().is_empty() {
        return Err(ConfigError::document(origin, "the configuration is empty").into());
    }
    let result = match format {
        Some(Format::Json) => parse_json(text),
        Some(Format::Yaml) => parse_yaml(text),
        Some(Format::Toml) => parse_toml(text),
        None => return detect(origin, text),
    };
    result.map_err(|reason| ConfigError::document(origin, reason).into())
}

/// Content sniffing for stdin and unknown extensions.
///
/// JSON first (it is the strictest). A TOML document such as `name = "gw"` parses as a
/// YAML *string*, so YAML only wins when it yields a mapping; otherwise TOML is tried.
fn detect(origin: &str, text: &str) -> Result<Value, ConfigErrors> {
    let json_err = match parse_json(text) {
        Ok(value) => return Ok(value),
        Err(err) => err,
    };
    let yaml = parse_yaml(text);
    if let Ok(value @ Value::Object(_)) = &yaml {
        return Ok(value.clone());
    }
    let toml_err = match parse_toml(text) {
        Ok(value) => return Ok(value),
        Err(err) => err,
    };
    let yaml_err = match yaml {
        // Valid YAML, but not a mapping: let the schema say what is wrong with it.
        Ok(value) => return Ok(value),
        Err(err) => err,
    };
    Err(ConfigError::document(
        origin,
        format!("not valid JSON ({json_err}), YAML ({yaml_err}) or TOML ({toml_err})"),
    )
    .into())
}

fn parse_json(text: &str) -> Result<Value, String> {
    serde_json::from_str::<StrictValue>(text)
        .map(|v| v.0)
        .map_err(|err| format!("invalid JSON: {err}"))
}

fn parse_yaml(text: &str) -> Result<Value, String> {
    serde_norway::from_str::<StrictValue>(text)
        .map(|v| v.0)
        .map_err(|err| format!("invalid YAML: {err}"))
}

fn parse_toml(text: &str) -> Result<Value, String> {
    toml::from_str::<StrictValue>(text)
        .map(|v| v.0)
        .map_err(|err| format!("invalid TOML: {}", err.to_string().trim_end()))
}

/// A JSON value deserialized from any format, refusing what `serde_json::Value` would
/// silently accept: a key given twice in one mapping (the last would win, hiding the
/// first from the operator) and non-finite numbers.
struct StrictValue(Value);

impl<'de> serde::Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON-compatible value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a finite number")))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(value) = map.next_value()?;
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// The first existing default configuration file, given `$XDG_CONFIG_HOME` and `$HOME`
/// (XDG's default for an unset or empty `XDG_CONFIG_HOME` is `$HOME/.config`).
///
/// On failure returns the candidates searched, for the error message.
pub fn find_default(
    xdg_config_home: Option<&Path>,
    home: Option<&Path>,
) -> Result<PathBuf, Vec<PathBuf>> {
    let config_home = match (xdg_config_home, home) {
        (Some(dir), _) if !dir.as_os_str().is_empty() => dir.to_owned(),
        (_, Some(home)) if !home.as_os_str().is_empty() => home.join(".config"),
        _ => return Err(Vec::new()),
    };
    let dir = config_home.join("hat");
    let candidates: Vec<PathBuf> = DEFAULT_FILE_NAMES.iter().map(|n| dir.join(n)).collect();
    match candidates.iter().find(|path| path.is_file()) {
        Some(path) => Ok(path.clone()),
        None => Err(candidates),
    }
}

/// [`find_default`] with this process's environment.
pub fn find_default_from_env() -> Result<PathBuf, Vec<PathBuf>> {
    let xdg = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from);
    let home = std::env::var_os("HOME").map(PathBuf::from);
    find_default(xdg.as_deref(), home.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_by_extension() {
        assert_eq!(Format::from_path(Path::new("a.yaml")), Some(Format::Yaml));
        assert_eq!(Format::from_path(Path::new("a.YML")), Some(Format::Yaml));
        assert_eq!(Format::from_path(Path::new("a.json")), Some(Format::Json));
        assert_eq!(Format::from_path(Path::new("a.toml")), Some(Format::Toml));
        assert_eq!(Format::from_path(Path::new("a.conf")), None);
        assert_eq!(Format::from_path(Path::new("gateway")), None);
    }

    #[test]
    fn three_formats_give_the_same_value() {
        let expected = json!({"name": "gw", "devices": [{"module": "sim", "name": "s1"}]});
        let yaml = "name: gw\ndevices:\n  - module: sim\n    name: s1\n";
        let json = r#"{"name": "gw", "devices": [{"module": "sim", "name": "s1"}]}"#;
        let toml = "name = \"gw\"\n[[devices]]\nmodule = \"sim\"\nname = \"s1\"\n";
        for (text, format) in [
            (yaml, Format::Yaml),
            (json, Format::Json),
            (toml, Format::Toml),
        ] {
            assert_eq!(parse("f", text, Some(format)).unwrap(), expected);
            assert_eq!(
                parse("f", text, None).unwrap(),
                expected,
                "sniffing {format:?}"
            );
        }
    }

    #[test]
    fn syntax_errors_name_the_file_and_format() {
        let err = parse("g.yaml", "name: [unclosed", Some(Format::Yaml)).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("g.yaml: invalid YAML:"), "{text}");
        let err = parse("g.json", "{", Some(Format::Json)).unwrap_err();
        assert!(
            err.to_string().starts_with("g.json: invalid JSON:"),
            "{err}"
        );
        let err = parse("<stdin>", "{{{ = :", None).unwrap_err();
        assert!(err.to_string().contains("not valid JSON"), "{err}");
    }

    #[test]
    fn empty_document_is_refused() {
        let err = parse("g.yaml", " \n", Some(Format::Yaml)).unwrap_err();
        assert_eq!(err.to_string(), "g.yaml: the configuration is empty");
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let err = parse("g.yaml", "name: a\nname: b\n", Some(Format::Yaml)).unwrap_err();
        assert!(err.to_string().contains("duplicate"), "{err}");
        let err = parse("g.json", r#"{"a": {"x": 1, "x": 2}}"#, Some(Format::Json)).unwrap_err();
        assert!(err.to_string().contains("duplicate key \"x\""), "{err}");
        assert!(parse("g.toml", "a = 1\na = 2\n", Some(Format::Toml)).is_err());
    }

    #[test]
    fn yaml_scalars_map_to_json() {
        let value = parse(
            "g.yaml",
            "a: 1\nb: -2\nc: 1.5\nd: ~\ne: true\nf: 'x'\ng: [1, {h: null}]\n",
            Some(Format::Yaml),
        )
        .unwrap();
        assert_eq!(
            value,
            json!({"a": 1, "b": -2, "c": 1.5, "d": null, "e": true, "f": "x", "g": [1, {"h": null}]})
        );
        assert!(parse("g.yaml", "a: .inf\n", Some(Format::Yaml)).is_err());
    }

    #[test]
    fn default_search_order_and_xdg_fallback() {
        let tmp = std::env::temp_dir().join(format!("gwh-find-default-{}", std::process::id()));
        let hat = tmp.join("hat");
        std::fs::create_dir_all(&hat).unwrap();
        let searched = find_default(Some(&tmp), None).unwrap_err();
        assert_eq!(searched.len(), 4);
        assert!(searched[0].ends_with("hat/gateway.yaml"));
        std::fs::write(hat.join("gateway.json"), "{}").unwrap();
        assert_eq!(
            find_default(Some(&tmp), None).unwrap(),
            hat.join("gateway.json")
        );
        std::fs::write(hat.join("gateway.toml"), "").unwrap();
        assert_eq!(
            find_default(Some(&tmp), None).unwrap(),
            hat.join("gateway.toml")
        );
        std::fs::write(hat.join("gateway.yml"), "").unwrap();
        assert_eq!(
            find_default(Some(&tmp), None).unwrap(),
            hat.join("gateway.yml")
        );
        // Empty XDG_CONFIG_HOME falls back to $HOME/.config.
        let home = tmp.join("home");
        let home_hat = home.join(".config/hat");
        std::fs::create_dir_all(&home_hat).unwrap();
        std::fs::write(home_hat.join("gateway.yaml"), "").unwrap();
        assert_eq!(
            find_default(Some(Path::new("")), Some(&home)).unwrap(),
            home_hat.join("gateway.yaml")
        );
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
