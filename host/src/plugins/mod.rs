//! Plugin loader and registry: finds device-type libraries, loads each through the
//! stable ABI of `gateway-plugin-api`, and hands the engine a [`DeviceFactory`] per
//! device type.
//!
//! Search order (`docs/gateway-semantics.md` 8.1): the directories given on the command line
//! (`--plugins-dir`) and in the configuration (`plugins_dir`), then the executable's
//! own directory (so a `cargo build` tree just works), then
//! `$XDG_DATA_HOME/hat/gateway/plugins`. A `module` is a plugin name (`sim` ->
//! `libsim.so`) searched in that order, or a path to a library file.
//!
//! Every file is loaded once and never unloaded. A file, or a directory on its path up
//! to `/`, that other users can write or that another user owns is refused (sshd's
//! StrictModes) unless `--allow-insecure-plugins` / `allow_insecure_plugins` is set.
//!
//! [`DeviceFactory`]: crate::device::DeviceFactory

mod adapter;
mod call_thread;
mod check;
mod command;
mod error;
mod load;
mod log;
mod template;

pub use adapter::LoadedPlugin;
pub use command::{plugins_command, plugins_command_with, PluginsReport};
pub use error::{InsecureProblem, PluginError};
pub use log::{FALLBACK_TARGET, MAX_PLUGIN_LOG_TARGETS};
pub use template::{new_plugin_command, write_project, ApiSource, NewPlugin, TemplateError};

use std::collections::HashMap;
use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Library file names starting with this (after the platform prefix) are the
/// workspace's deliberately broken test fixtures; a scan of the executable's own
/// directory (a cargo build tree) skips them. Explicit directories are scanned fully.
pub const FIXTURE_PREFIX: &str = "gateway_fixture_";

/// What a plugin declares about itself, and where it was loaded from.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    /// The library file (canonical path).
    pub path: PathBuf,
    /// Plugin name (the library's crate name, e.g. `sim`).
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// `gateway-plugin-api` version the plugin was built with.
    pub api_version: String,
    /// Device type (prefix segment 2).
    pub device_type: String,
    /// `json_schema_id` of the device configuration.
    pub json_schema_id: Option<String>,
    /// The configuration schema.
    pub json_schema: Option<serde_json::Value>,
    /// The hat-gateway device modules the plugin implements (API 1.2; empty for
    /// plugins built against 1.0 or 1.1).
    pub hat_modules: Vec<String>,
}

/// Where plugins are looked for, in order.
#[derive(Debug, Clone)]
pub struct PluginSearch {
    dirs: Vec<PathBuf>,
    exe_dir: Option<PathBuf>,
    allow_insecure: bool,
}

impl PluginSearch {
    /// Exactly these directories, in this order (tests, tools).
    pub fn new(dirs: Vec<PathBuf>, allow_insecure: bool) -> Self {
        Self {
            dirs,
            exe_dir: None,
            allow_insecure,
        }
    }

    /// The daemon's search order: `explicit` (`--plugins-dir` values, then the
    /// configuration's `plugins_dir`, as the caller orders them), then the
    /// executable's directory, then `$XDG_DATA_HOME/hat/gateway/plugins` (default
    /// `~/.local/share/hat/gateway/plugins`).
    pub fn standard(explicit: &[PathBuf], allow_insecure: bool) -> Self {
        let mut dirs = explicit.to_vec();
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_owned));
        if let Some(dir) = &exe_dir {
            dirs.push(dir.clone());
        }
        let data_home = std::env::var_os("XDG_DATA_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|home| PathBuf::from(home).join(".local/share"))
            });
        if let Some(data_home) = data_home {
            dirs.push(data_home.join("hat/gateway/plugins"));
        }
        Self {
            dirs,
            exe_dir,
            allow_insecure,
        }
    }

    /// The directories, in search order.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Whether group/world-writable files and directories are accepted.
    pub fn allow_insecure(&self) -> bool {
        self.allow_insecure
    }

    fn is_exe_dir(&self, dir: &Path) -> bool {
        self.exe_dir.as_deref() == Some(dir)
    }
}

/// The library file name of a plugin (`sim` -> `libsim.so` on Linux).
pub fn library_file_name(plugin: &str) -> String {
    format!("{DLL_PREFIX}{plugin}{DLL_SUFFIX}")
}

/// Whether `module` is a path to a library file rather than a plugin name.
fn is_path(module: &str) -> bool {
    module.contains(std::path::MAIN_SEPARATOR)
        || module.contains('/')
        || module.ends_with(DLL_SUFFIX)
}

/// Whether `module` is a hat-gateway device module (a dotted Python module name such
/// as `hat.gateway.devices.modbus.master`) rather than a plugin name or a path.
pub fn is_hat_module(module: &str) -> bool {
    !is_path(module)
        && module.contains('.')
        && module
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_alphanumeric() || c == '_'))
}

/// The plugin name a hat module is first looked for under: its last two parts joined
/// by `_` (`hat.gateway.devices.modbus.master` -> `modbus_master`), the device type
/// hat-gateway gives those modules.
fn hat_module_guess(module: &str) -> String {
    let mut parts = module.rsplit('.');
    match (parts.next(), parts.next()) {
        (Some(last), Some(before)) => format!("{before}_{last}"),
        (Some(last), None) => last.to_owned(),
        _ => module.to_owned(),
    }
}

/// Everything a scan found: every plugin that loaded and every failure.
#[derive(Debug, Default)]
pub struct ScanReport {
    /// Loaded plugins, in search order.
    pub plugins: Vec<Arc<LoadedPlugin>>,
    /// Every file (or directory) that failed, with its reason.
    pub failures: Vec<PluginError>,
}

#[derive(Default)]
struct Loaded {
    by_path: HashMap<PathBuf, Arc<LoadedPlugin>>,
    by_device_type: HashMap<String, PathBuf>,
}

/// Loaded plugins, by file and by device type. Shared by the config validation, the
/// engine and the `plugins` command.
pub struct PluginRegistry {
    search: PluginSearch,
    loaded: Mutex<Loaded>,
}

impl std::fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRegistry")
            .field("search", &self.search)
            .finish_non_exhaustive()
    }
}

impl PluginRegistry {
    /// A registry searching `search`. Nothing is loaded yet.
    pub fn new(search: PluginSearch) -> Self {
        Self {
            search,
            loaded: Mutex::new(Loaded::default()),
        }
    }

    /// The search path.
    pub fn search(&self) -> &PluginSearch {
        &self.search
    }

    /// Finds and loads the plugin a device entry's `module` names: a plugin name
    /// searched in the plugin directories, or a path to a library file (relative to
    /// the working directory). Loading the same file again returns the same plugin.
    /// The result is the device type's [`DeviceFactory`](crate::device::DeviceFactory).
    ///
    /// A hat-gateway module name ([`is_hat_module`]) resolves to the plugin that
    /// declares it ([`PluginInfo::hat_modules`]): first the plugin named after its last
    /// two parts (`modbus_master`), else every plugin in the directories is tried.
    pub fn resolve(&self, module: &str) -> Result<Arc<LoadedPlugin>, PluginError> {
        if is_path(module) {
            return self.load_file(Path::new(module));
        }
        if is_hat_module(module) {
            return self.resolve_hat_module(module);
        }
        let file_name = library_file_name(module);
        for dir in &self.search.dirs {
            let candidate = dir.join(&file_name);
            if candidate.is_file() {
                return self.load_file(&candidate);
            }
        }
        Err(PluginError::NotFound {
            module: module.to_owned(),
            file_name,
            searched: self.search.dirs.clone(),
        })
    }

    fn resolve_hat_module(&self, module: &str) -> Result<Arc<LoadedPlugin>, PluginError> {
        let declares =
            |plugin: &LoadedPlugin| plugin.info().hat_modules.iter().any(|m| m == module);
        let guess = library_file_name(&hat_module_guess(module));
        for dir in &self.search.dirs {
            let candidate = dir.join(&guess);
            if candidate.is_file() {
                match self.load_file(&candidate) {
                    Ok(plugin) if declares(&plugin) => return Ok(plugin),
                    // Not the one (or broken): the scan below reports what declares it.
                    Ok(_) | Err(_) => {}
                }
            }
        }
        let report = self.scan();
        if let Some(plugin) = report.plugins.iter().find(|p| declares(p)) {
            return Ok(plugin.clone());
        }
        Err(PluginError::HatModuleNotFound {
            module: module.to_owned(),
            searched: self.search.dirs.clone(),
            declared: report
                .plugins
                .iter()
                .filter(|p| !p.info().hat_modules.is_empty())
                .map(|p| format!("{} ({})", p.info().name, p.info().hat_modules.join(", ")))
                .collect(),
        })
    }

    /// Loads one library file (or returns it if it is loaded already).
    pub fn load_file(&self, path: &Path) -> Result<Arc<LoadedPlugin>, PluginError> {
        let path = path.canonicalize().map_err(|source| PluginError::Io {
            path: path.to_owned(),
            source,
        })?;
        // Held across the load so that two threads never load one file twice and the
        // duplicate check sees every plugin.
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(plugin) = loaded.by_path.get(&path) {
            return Ok(plugin.clone());
        }
        let plugin = Arc::new(load::load_plugin(&path, self.search.allow_insecure)?);
        let device_type = plugin.info().device_type.clone();
        if let Some(other) = loaded.by_device_type.get(&device_type) {
            return Err(PluginError::DuplicateDeviceType {
                path,
                device_type,
                other: other.clone(),
            });
        }
        loaded.by_device_type.insert(device_type, path.clone());
        loaded.by_path.insert(path, plugin.clone());
        let info = plugin.info();
        crate::ops::metrics::global().plugin_loaded(crate::ops::metrics::PluginMetric {
            name: info.name.clone(),
            version: info.version.clone(),
            api_version: info.api_version.clone(),
            device_type: info.device_type.clone(),
        });
        Ok(plugin)
    }

    /// The loaded plugin that provides `device_type`, if any.
    pub fn by_device_type(&self, device_type: &str) -> Option<Arc<LoadedPlugin>> {
        let loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        let path = loaded.by_device_type.get(device_type)?;
        loaded.by_path.get(path).cloned()
    }

    /// Tries every library file (`*.so`) in every plugin directory, in search order,
    /// and reports every plugin and every failure together. Missing directories are
    /// skipped. In the executable's own directory, the test fixtures
    /// ([`FIXTURE_PREFIX`]) are skipped.
    pub fn scan(&self) -> ScanReport {
        let mut report = ScanReport::default();
        let mut seen = Vec::new();
        for dir in &self.search.dirs {
            let canonical = match dir.canonicalize() {
                Ok(canonical) => canonical,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    report.failures.push(PluginError::Io {
                        path: dir.clone(),
                        source,
                    });
                    continue;
                }
            };
            if seen.contains(&canonical) {
                continue;
            }
            seen.push(canonical.clone());
            if !self.search.allow_insecure {
                if let Err(err) = check::permissions(&canonical, "directory") {
                    report.failures.push(err);
                    continue;
                }
            }
            let entries = match std::fs::read_dir(&canonical) {
                Ok(entries) => entries,
                Err(source) => {
                    report.failures.push(PluginError::Io {
                        path: canonical,
                        source,
                    });
                    continue;
                }
            };
            let skip_fixtures = self.search.is_exe_dir(dir);
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.is_file())
                .filter(|path| {
                    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    name.ends_with(DLL_SUFFIX)
                        && !(skip_fixtures
                            && name
                                .strip_prefix(DLL_PREFIX)
                                .is_some_and(|n| n.starts_with(FIXTURE_PREFIX)))
                })
                .collect();
            files.sort();
            for file in files {
                match self.load_file(&file) {
                    Ok(plugin) => {
                        if !report.plugins.iter().any(|p| Arc::ptr_eq(p, &plugin)) {
                            report.plugins.push(plugin);
                        }
                    }
                    Err(err) => report.failures.push(err),
                }
            }
        }
        report
    }
}
