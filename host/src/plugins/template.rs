//! `gateway-host plugin new NAME`: writes a complete out-of-tree plugin project from
//! the template shipped with `gateway-plugin-api` (`plugin-api/template/`): the
//! `Cargo.toml` (cdylib, unwinding panics, its own workspace), a strict configuration
//! schema, a device with a background task, a test using the SDK's test kit and a
//! README with the build and install commands.

use std::path::{Path, PathBuf};

use gateway_plugin_api::abi::current_api_semver;

/// The template files: path in the new project, text with `{{name}}`,
/// `{{device_type}}` and `{{api}}` placeholders.
const TEMPLATE: [(&str, &str); 5] = [
    (
        "Cargo.toml",
        include_str!("../../../plugin-api/template/Cargo.toml.template"),
    ),
    (
        "schema.json",
        include_str!("../../../plugin-api/template/schema.json"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../plugin-api/template/src/lib.rs"),
    ),
    (
        "src/tests.rs",
        include_str!("../../../plugin-api/template/src/tests.rs"),
    ),
    (
        "README.md",
        include_str!("../../../plugin-api/template/README.md"),
    ),
];

/// Where the new project takes `gateway-plugin-api` from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiSource {
    /// The registry, at this host's API `major.minor` (`version = "1.2"`).
    Registry,
    /// A local checkout of the crate (its directory), still with the version
    /// requirement so the project can switch to the registry by deleting the path.
    Path(PathBuf),
}

/// What `plugin new` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPlugin {
    /// Crate and plugin name: the library is `lib<name>.so`, `module: <name>`.
    pub name: String,
    /// Device type (event-type prefix segment 3); defaults to the name.
    pub device_type: String,
    /// The project directory (must not exist, or be empty).
    pub dir: PathBuf,
    /// Where `gateway-plugin-api` comes from.
    pub api: ApiSource,
}

/// Why the project could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The name is not usable as a crate, library and plugin name.
    #[error(
        "invalid plugin name {0:?}: use lower-case ASCII letters, digits and '_', \
         starting with a letter (it names the crate, lib<name>.so and `module: <name>`)"
    )]
    InvalidName(String),
    /// The device type is not an event-type segment.
    #[error("invalid device type {0:?}: it must be non-empty, without '/', '?', '*' or '\"'")]
    InvalidDeviceType(String),
    /// The directory exists and is not empty.
    #[error("{}: already exists and is not empty", .0.display())]
    Exists(PathBuf),
    /// Writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn valid_device_type(device_type: &str) -> bool {
    !device_type.is_empty()
        && !device_type.contains(['/', '?', '*', '"', '\\'])
        && !device_type.chars().any(char::is_control)
}

/// The `gateway-plugin-api` dependency table's contents (inside `{ }`).
fn api_dependency(api: &ApiSource) -> String {
    let version = current_api_semver();
    let requirement = format!("version = \"{}.{}\"", version.major, version.minor);
    match api {
        ApiSource::Registry => requirement,
        ApiSource::Path(path) => {
            // TOML basic strings: backslashes and quotes escaped.
            let path = path
                .display()
                .to_string()
                .replace('\\', "\\\\")
                .replace('"', "\\\"");
            format!("path = \"{path}\", {requirement}")
        }
    }
}

fn render(text: &str, new: &NewPlugin, api: &str) -> String {
    text.replace("{{name}}", &new.name)
        .replace("{{device_type}}", &new.device_type)
        .replace("{{api}}", api)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TemplateError + '_ {
    move |source| TemplateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes the project; returns the files written, in order.
pub fn write_project(new: &NewPlugin) -> Result<Vec<PathBuf>, TemplateError> {
    if !valid_name(&new.name) {
        return Err(TemplateError::InvalidName(new.name.clone()));
    }
    if !valid_device_type(&new.device_type) {
        return Err(TemplateError::InvalidDeviceType(new.device_type.clone()));
    }
    match std::fs::read_dir(&new.dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(TemplateError::Exists(new.dir.clone()));
            }
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(TemplateError::Io {
                path: new.dir.clone(),
                source,
            })
        }
    }
    let api = api_dependency(&new.api);
    let mut written = Vec::with_capacity(TEMPLATE.len());
    for (relative, text) in TEMPLATE {
        let path = new.dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, render(text, new, &api)).map_err(io(&path))?;
        written.push(path);
    }
    let gitignore = new.dir.join(".gitignore");
    std::fs::write(&gitignore, "/target\n").map_err(io(&gitignore))?;
    written.push(gitignore);
    Ok(written)
}

/// `gateway-host plugin new`: writes the project and says what to do next.
pub fn new_plugin_command(
    new: &NewPlugin,
    out: &mut dyn std::io::Write,
) -> Result<(), TemplateError> {
    let written = write_project(new)?;
    let report = |out: &mut dyn std::io::Write| -> std::io::Result<()> {
        writeln!(
            out,
            "created plugin {} (device type {}) in {}:",
            new.name,
            new.device_type,
            new.dir.display()
        )?;
        for path in &written {
            writeln!(out, "  {}", path.display())?;
        }
        writeln!(
            out,
            "next: cd {} && cargo test && cargo build --release",
            new.dir.display()
        )?;
        writeln!(
            out,
            "then: install -D -m 0644 target/release/lib{0}.so ~/.local/share/hat/gateway/plugins/lib{0}.so",
            new.name
        )
    };
    report(out).map_err(io(&new.dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_device_types_are_checked() {
        assert!(valid_name("thermo"));
        assert!(valid_name("t2_x"));
        for bad in ["", "Thermo", "2t", "t-x", "t.x", "t/x"] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_device_type("thermo-2"));
        for bad in ["", "a/b", "a*", "a?", "a\"b"] {
            assert!(!valid_device_type(bad), "{bad}");
        }
    }

    #[test]
    fn every_placeholder_is_replaced() {
        let new = NewPlugin {
            name: "thermo".into(),
            device_type: "thermo_dt".into(),
            dir: PathBuf::from("unused"),
            api: ApiSource::Path(PathBuf::from("/x/\"q\"")),
        };
        let api = api_dependency(&new.api);
        assert!(
            api.starts_with("path = \"/x/\\\"q\\\"\", version = \"1."),
            "{api}"
        );
        for (file, text) in TEMPLATE {
            let rendered = render(text, &new, &api);
            assert!(!rendered.contains("{{"), "{file}: {rendered}");
        }
    }
}
