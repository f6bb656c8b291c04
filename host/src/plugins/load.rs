//! Loading one plugin file: checks, `dlopen` through abi_stable's per-file loader, the
//! API version rule and the plugin's metadata.

use std::path::Path;

use abi_stable::library::{lib_header_from_path, LibraryError, RootModuleError};
use gateway_plugin_api::abi::{
    check_api_semver, current_api_semver, root_1_0, ApiMismatch, HostLogFn, PluginRootRef,
    API_VERSION,
};

use super::adapter::{host_log, LoadedPlugin};
use super::{check, PluginError, PluginInfo};

/// abi_stable's layout reports are long; an operator needs the start of it.
const MAX_REASON_CHARS: usize = 2000;

fn shorten(text: String) -> String {
    let text = text.trim().to_owned();
    if text.chars().count() <= MAX_REASON_CHARS {
        text
    } else {
        let cut: String = text.chars().take(MAX_REASON_CHARS).collect();
        format!("{cut}...")
    }
}

fn map_library_error(path: &Path, err: LibraryError) -> PluginError {
    let path = path.to_owned();
    match err {
        LibraryError::OpenError { err, .. } => PluginError::OpenFailed {
            path,
            reason: err.to_string(),
        },
        LibraryError::GetSymbolError { .. } => PluginError::MissingRootSymbol { path },
        LibraryError::ParseVersionError(err) => PluginError::InvalidMetadata {
            path,
            reason: format!("unreadable API version: {err}"),
        },
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => PluginError::ApiMajorMismatch {
            path,
            plugin: actual_version.to_string(),
            host: expected_version.to_string(),
        },
        LibraryError::RootModule {
            err: RootModuleError::Unwound,
            ..
        } => PluginError::InitPanicked { path },
        LibraryError::RootModule {
            err: RootModuleError::Returned(err),
            ..
        } => PluginError::InitFailed {
            path,
            reason: err.to_string(),
        },
        LibraryError::Many(mut errors) if !errors.is_empty() => {
            map_library_error(&path, errors.remove(0))
        }
        other => PluginError::LayoutMismatch {
            path,
            reason: shorten(other.to_string()),
        },
    }
}

fn version_error(path: &Path, plugin: &str) -> Result<(), PluginError> {
    let host = current_api_semver();
    let parsed = semver::Version::parse(plugin).map_err(|err| PluginError::InvalidMetadata {
        path: path.to_owned(),
        reason: format!("API version {plugin:?} is not a semver version: {err}"),
    })?;
    match check_api_semver(&host, &parsed) {
        Ok(()) => Ok(()),
        Err(ApiMismatch::Major) => Err(PluginError::ApiMajorMismatch {
            path: path.to_owned(),
            plugin: plugin.to_owned(),
            host: API_VERSION.to_owned(),
        }),
        Err(ApiMismatch::MinorNewer) => Err(PluginError::ApiMinorNewer {
            path: path.to_owned(),
            plugin: plugin.to_owned(),
            host: API_VERSION.to_owned(),
        }),
    }
}

fn check_device_type(path: &Path, device_type: &str) -> Result<(), PluginError> {
    if device_type.is_empty() || device_type.contains(['/', '?', '*']) {
        return Err(PluginError::InvalidMetadata {
            path: path.to_owned(),
            reason: format!(
                "device type {device_type:?} must be a non-empty event-type segment without '/', '?' or '*'"
            ),
        });
    }
    Ok(())
}

/// Loads the plugin in `path` (a canonical path). The library is never unloaded.
pub(crate) fn load_plugin(path: &Path, allow_insecure: bool) -> Result<LoadedPlugin, PluginError> {
    if !allow_insecure {
        // The file, its directory and every directory up to `/`.
        check::permissions(path, "file")?;
    }
    if cfg!(all(unix, not(target_os = "macos"))) {
        check::elf_header(path)?;
    }
    // Taken before the library is opened: a file replaced after this is seen as changed.
    let stamp = crate::device::FileStamp::of(path);
    // One library per file, leaked (never unloaded); abi_stable checks its own header.
    let header = lib_header_from_path(path).map_err(|err| map_library_error(path, err))?;
    // The API version the library was built with, checked before any plugin code runs.
    version_error(path, header.version_strings().version.as_str())?;
    // Checked against API 1.0's root module, which every 1.x plugin has (a check
    // against the current one would refuse plugins of older minors), then read with
    // the current one's accessors (fields appended since are optional).
    let root = header
        .init_root_module::<root_1_0::PluginRootRef>()
        .map_err(|err| map_library_error(path, err))?;
    let root = PluginRootRef::from_checked(root);
    // What the plugin declares (the SDK fills it from the same crate version).
    let api_version = root.api_version().as_str().to_owned();
    version_error(path, &api_version)?;
    let device_type = root.device_type().as_str().to_owned();
    check_device_type(path, &device_type)?;
    let json_schema = match root.json_schema().into_option() {
        None => None,
        Some(text) => Some(serde_json::from_str(text.as_str()).map_err(|err| {
            PluginError::InvalidMetadata {
                path: path.to_owned(),
                reason: format!("the embedded JSON schema is not JSON: {err}"),
            }
        })?),
    };
    let json_schema_id = root
        .json_schema_id()
        .into_option()
        .map(|id| id.as_str().to_owned());
    if json_schema_id.is_some() != json_schema.is_some() {
        return Err(PluginError::InvalidMetadata {
            path: path.to_owned(),
            reason: "json_schema_id and json_schema must be given together".to_owned(),
        });
    }
    // API 1.2's appended field; `None` for plugins built against 1.0 and 1.1.
    let hat_modules = root
        .hat_modules()
        .map(|modules| modules.iter().map(|m| m.as_str().to_owned()).collect())
        .unwrap_or_default();
    (root.set_host_log())(HostLogFn { log: host_log });
    let info = PluginInfo {
        path: path.to_owned(),
        name: root.plugin_name().as_str().to_owned(),
        version: root.plugin_version().as_str().to_owned(),
        api_version,
        device_type,
        json_schema_id,
        json_schema,
        hat_modules,
    };
    tracing::debug!(
        path = %info.path.display(),
        device_type = %info.device_type,
        version = %info.version,
        api_version = %info.api_version,
        "plugin loaded"
    );
    Ok(LoadedPlugin::new(info, root, stamp))
}
