//! `gateway-host plugins [<name|path>]`: what the plugin directories hold.

use std::io::Write;
use std::path::PathBuf;

use super::{LoadedPlugin, PluginRegistry, PluginSearch};

/// What `gateway-host plugins` found; the CLI turns it into the exit code
/// (`docs/gateway-semantics.md` 3.3: plugin errors found before start exit with 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginsReport {
    /// Every plugin loaded, or the one asked about was found.
    Clean,
    /// A plugin is broken, the one asked about was not found, or the report could not
    /// be written.
    Broken,
}

fn print_plugin(plugin: &LoadedPlugin, out: &mut dyn Write) -> std::io::Result<()> {
    let info = plugin.info();
    writeln!(
        out,
        "  {}  device type {}  version {}  api {}  schema {}",
        info.name,
        info.device_type,
        info.version,
        info.api_version,
        info.json_schema_id.as_deref().unwrap_or("-")
    )?;
    if !info.hat_modules.is_empty() {
        writeln!(out, "      hat modules: {}", info.hat_modules.join(", "))?;
    }
    writeln!(out, "      {}", info.path.display())
}

fn list(registry: &PluginRegistry, out: &mut dyn Write) -> std::io::Result<PluginsReport> {
    writeln!(out, "plugin directories, in search order:")?;
    for dir in registry.search().dirs() {
        let note = if dir.is_dir() { "" } else { "  (missing)" };
        writeln!(out, "  {}{note}", dir.display())?;
    }
    let report = registry.scan();
    writeln!(out, "plugins ({}):", report.plugins.len())?;
    for plugin in &report.plugins {
        print_plugin(plugin, out)?;
    }
    if report.failures.is_empty() {
        return Ok(PluginsReport::Clean);
    }
    writeln!(out, "failures ({}):", report.failures.len())?;
    for failure in &report.failures {
        writeln!(out, "  {failure}")?;
    }
    Ok(PluginsReport::Broken)
}

fn details(
    registry: &PluginRegistry,
    target: &str,
    out: &mut dyn Write,
) -> std::io::Result<PluginsReport> {
    let plugin = match registry.resolve(target) {
        Ok(plugin) => plugin,
        Err(err) => {
            writeln!(out, "error: {err}")?;
            return Ok(PluginsReport::Broken);
        }
    };
    let info = plugin.info();
    writeln!(out, "plugin:       {}", info.name)?;
    writeln!(out, "version:      {}", info.version)?;
    writeln!(out, "device type:  {}", info.device_type)?;
    writeln!(out, "api version:  {}", info.api_version)?;
    writeln!(
        out,
        "hat modules:  {}",
        if info.hat_modules.is_empty() {
            "-".to_owned()
        } else {
            info.hat_modules.join(", ")
        }
    )?;
    writeln!(out, "file:         {}", info.path.display())?;
    writeln!(
        out,
        "schema id:    {}",
        info.json_schema_id.as_deref().unwrap_or("-")
    )?;
    if let Some(schema) = &info.json_schema {
        writeln!(out, "schema:")?;
        let text = serde_json::to_string_pretty(schema).unwrap_or_else(|_| schema.to_string());
        writeln!(out, "{text}")?;
    }
    Ok(PluginsReport::Clean)
}

/// Runs `gateway-host plugins`: without `target`, lists every plugin found in the
/// search path (`dirs` = `--plugins-dir` values and the configuration's
/// `plugins_dir`, followed by the standard directories) and every load failure; with
/// `target` (a plugin name or a library path), prints its details and schema.
/// Returns whether everything was in order.
pub fn plugins_command(
    dirs: &[PathBuf],
    allow_insecure: bool,
    target: Option<&str>,
    out: &mut dyn Write,
) -> PluginsReport {
    plugins_command_with(PluginSearch::standard(dirs, allow_insecure), target, out)
}

/// [`plugins_command`] over an explicit search path (tests, tools).
pub fn plugins_command_with(
    search: PluginSearch,
    target: Option<&str>,
    out: &mut dyn Write,
) -> PluginsReport {
    let registry = PluginRegistry::new(search);
    let result = match target {
        None => list(&registry, out),
        Some(target) => details(&registry, target, out),
    };
    // The output is the command's whole job: failing to write it is a failure.
    result.unwrap_or(PluginsReport::Broken)
}
