//! The stable ABI between gateway-host and a device plugin library.
//!
//! This module has no tokio and no I/O: it is types, version rules and the root
//! module. Everything that crosses the boundary is an abi_stable type or an
//! [`async_ffi::FfiFuture`]; payloads cross as JSON text or bytes.
//!
//! A plugin library exports one [`PluginRoot`] (an append-only prefix type). The host
//! checks, in order: abi_stable's own header and layout, then the API version rule of
//! [`check_api_version`], then uses `create` to build devices. Devices and the host
//! client are FFI-safe trait objects ([`PluginDeviceBox`], [`HostClientBox`]).

// `#[sabi_trait]` expands to impl blocks inside a generated const item.
#![allow(non_local_definitions)]

mod types;

pub use types::*;

use std::fmt;

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RBox, ROption, RResult, RStr, RString};
use abi_stable::{declare_root_module_statics, package_version_strings, sabi_trait, StableAbi};
use async_ffi::FfiFuture;

pub use abi_stable;
pub use async_ffi;
pub use semver;

/// Semver of `gateway-plugin-api` this code was built from; a plugin reports the
/// version it was built with in [`PluginRoot::api_version`].
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Symbol under which a plugin library exports its abi_stable library header (what
/// `#[export_root_module]` generates). A unit test keeps it equal to abi_stable's.
pub const ROOT_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

/// Log level of a record a plugin forwards to the host.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FfiLogLevel {
    /// Errors.
    Error,
    /// Warnings.
    Warn,
    /// Information.
    Info,
    /// Debugging.
    Debug,
    /// Tracing.
    Trace,
}

/// Kind of a device failure.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FfiErrorKind {
    /// The plugin returned an error.
    Failed,
    /// The plugin panicked; the panic was caught inside the plugin.
    Panicked,
}

/// A device failure as it crosses the boundary.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct FfiError {
    /// What happened.
    pub kind: FfiErrorKind,
    /// Human-readable reason.
    pub message: RString,
}

impl FfiError {
    /// A returned error.
    pub fn failed(message: impl Into<RString>) -> Self {
        Self {
            kind: FfiErrorKind::Failed,
            message: message.into(),
        }
    }

    /// A caught panic.
    pub fn panicked(message: impl Into<RString>) -> Self {
        Self {
            kind: FfiErrorKind::Panicked,
            message: message.into(),
        }
    }
}

impl fmt::Display for FfiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            FfiErrorKind::Failed => write!(f, "{}", self.message),
            FfiErrorKind::Panicked => write!(f, "panicked: {}", self.message),
        }
    }
}

/// Why a call to the host client failed.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub enum FfiClientError {
    /// The event server connection is gone.
    ConnectionClosed,
    /// Never sent by the host (a refused registration is `RNone` from
    /// `register_with_response`); kept so the layout of API 1.0 does not change.
    RegisterFailed,
    /// Anything else (kept so hosts can report new reasons without an ABI change).
    Other(RString),
}

/// The event client the host gives each device (hat-gateway's `eventer_client`).
///
/// Implemented by the host; called by the plugin. Every future is `'static` and may
/// be polled on any thread.
#[sabi_trait]
pub trait HostClient: Send + Sync {
    /// Registers events without waiting for the server's answer.
    fn register(
        &self,
        events: abi_stable::std_types::RVec<FfiRegisterEvent>,
    ) -> FfiFuture<RResult<(), FfiClientError>>;

    /// Registers events and returns what the server stored (`None` = server failure).
    #[allow(clippy::type_complexity)]
    fn register_with_response(
        &self,
        events: abi_stable::std_types::RVec<FfiRegisterEvent>,
    ) -> FfiFuture<RResult<ROption<abi_stable::std_types::RVec<FfiEvent>>, FfiClientError>>;

    /// Runs a query.
    fn query(&self, params: FfiQueryParams) -> FfiFuture<RResult<FfiQueryResult, FfiClientError>>;

    /// Emits one log record in the host's log, inside the device's span.
    #[sabi(last_prefix_field)]
    fn log(&self, level: FfiLogLevel, target: RStr<'_>, message: RStr<'_>);
}

/// The host client as an owned FFI trait object.
pub type HostClientBox = HostClient_TO<'static, RBox<()>>;

/// A device instance inside a plugin.
///
/// Implemented by the plugin (the SDK does it); called by the host. The host calls
/// `process_event` one event at a time.
#[sabi_trait]
pub trait PluginDevice: Send + Sync {
    /// Processes one event.
    fn process_event(&self, event: FfiEvent) -> FfiFuture<RResult<(), FfiError>>;

    /// Closes the device and resolves when it is closed. Idempotent.
    fn close(&self) -> FfiFuture<()>;

    /// Resolves when the device has started closing, by itself or through `close`.
    #[sabi(last_prefix_field)]
    fn closed(&self) -> FfiFuture<()>;
}

/// A device as an owned FFI trait object.
pub type PluginDeviceBox = PluginDevice_TO<'static, RBox<()>>;

/// The host's plugin-wide log function, for records emitted outside any device.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct HostLogFn {
    /// `log(level, target, message)`.
    pub log: extern "C" fn(level: FfiLogLevel, target: RStr<'_>, message: RStr<'_>),
}

/// The root module of a plugin library: what a hat-gateway device module exposes.
///
/// A prefix type: later API minors may append fields after `create`; a host reads
/// them as optional.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginRootRef)))]
pub struct PluginRoot {
    /// Semver of `gateway-plugin-api` the plugin was built with ([`API_VERSION`]).
    pub api_version: RStr<'static>,
    /// Plugin (library) name, e.g. `sim`.
    pub plugin_name: RStr<'static>,
    /// Plugin version.
    pub plugin_version: RStr<'static>,
    /// Device type: segment 2 of the event-type prefix.
    pub device_type: RStr<'static>,
    /// `json_schema_id` of the device configuration.
    pub json_schema_id: ROption<RStr<'static>>,
    /// The JSON Schema itself (JSON text), registered under `json_schema_id`.
    pub json_schema: ROption<RStr<'static>>,
    /// Gives the plugin the host's plugin-wide log function; called once, right
    /// after loading and before any `create`.
    pub set_host_log: extern "C" fn(HostLogFn),
    /// `create(conf, client, prefix)`: creates a device. `conf` is the device entry
    /// as JSON text, `prefix` the 4-segment event-type prefix.
    #[sabi(last_prefix_field)]
    pub create: extern "C" fn(
        conf: RString,
        client: HostClientBox,
        prefix: FfiEventType,
    ) -> FfiFuture<RResult<PluginDeviceBox, FfiError>>,
}

impl std::fmt::Debug for PluginRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRoot")
            .field("api_version", &self.api_version)
            .field("plugin_name", &self.plugin_name)
            .field("plugin_version", &self.plugin_version)
            .field("device_type", &self.device_type)
            .field("json_schema_id", &self.json_schema_id)
            .finish_non_exhaustive()
    }
}

impl RootModule for PluginRootRef {
    declare_root_module_statics! {PluginRootRef}
    const BASE_NAME: &'static str = "gateway_plugin";
    const NAME: &'static str = "gateway_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// A `major.minor.patch` version (the pre-release and build parts are dropped).
///
/// Kept for API compatibility; the host's rule is [`check_api_semver`], which also
/// orders pre-releases by the semver rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    /// Major: incompatible changes.
    pub major: u64,
    /// Minor: additions (appended prefix fields, trait methods after the prefix).
    pub minor: u64,
    /// Patch.
    pub patch: u64,
}

impl ApiVersion {
    /// Parses a semver version (`major.minor.patch[-pre][+build]`, by the semver
    /// grammar: no leading zeros, no missing parts) and keeps its numbers.
    pub fn parse(text: &str) -> Option<Self> {
        let version = semver::Version::parse(text).ok()?;
        Some(Self {
            major: version.major,
            minor: version.minor,
            patch: version.patch,
        })
    }

    /// The version of this crate.
    pub fn current() -> Self {
        let version = current_api_semver();
        Self {
            major: version.major,
            minor: version.minor,
            patch: version.patch,
        }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// [`API_VERSION`] as a semver version.
pub fn current_api_semver() -> semver::Version {
    // CARGO_PKG_VERSION is valid semver: cargo refuses a manifest whose version is not
    // (and a unit test parses it). The fallback is never taken.
    semver::Version::parse(API_VERSION).unwrap_or_else(|_| semver::Version::new(1, 0, 0))
}

/// Why a plugin's API version is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiMismatch {
    /// Different major version.
    Major,
    /// Same major, but the plugin needs a newer minor than the host has.
    MinorNewer,
}

/// The version rule: accept a plugin of the same major whose minor is not newer than
/// the host's (patch numbers, pre-release and build metadata are not compared; see
/// [`check_api_semver`] for the rule that orders pre-releases).
pub fn check_api_version(host: ApiVersion, plugin: ApiVersion) -> Result<(), ApiMismatch> {
    if host.major != plugin.major {
        Err(ApiMismatch::Major)
    } else if plugin.minor > host.minor {
        Err(ApiMismatch::MinorNewer)
    } else {
        Ok(())
    }
}

/// The API level a version stands for: its `major.minor`, with the pre-release of a
/// `x.y.0` pre-release (`1.4.0-rc.1` comes before `1.4.0`, as semver orders them).
/// Patch releases and build metadata never change the ABI, so they are dropped.
fn api_level(version: &semver::Version) -> semver::Version {
    let mut level = semver::Version::new(version.major, version.minor, 0);
    if version.patch == 0 {
        level.pre = version.pre.clone();
    }
    level
}

/// The host's version rule, on semver versions: the majors must be equal, and the
/// plugin's API level (see below) must not be newer than the host's.
///
/// The level of `x.y.z` is `x.y`; a pre-release of a minor (`1.4.0-rc.1`) comes
/// before that minor's release, by semver precedence. So a host at `1.4.0` accepts
/// plugins built with `1.0.0` .. `1.4.x` and `1.4.0-rc.1`; a host at `1.4.0-rc.2`
/// accepts `1.4.0-rc.1` but not `1.4.0-rc.3` or `1.4.0`. Build metadata (`+...`) is
/// ignored, as semver says.
pub fn check_api_semver(
    host: &semver::Version,
    plugin: &semver::Version,
) -> Result<(), ApiMismatch> {
    if host.major != plugin.major {
        Err(ApiMismatch::Major)
    } else if api_level(plugin) > api_level(host) {
        Err(ApiMismatch::MinorNewer)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> ApiVersion {
        ApiVersion::parse(text).unwrap()
    }

    #[test]
    fn root_symbol_matches_abi_stable() {
        assert_eq!(ROOT_SYMBOL, abi_stable::library::ROOT_MODULE_LOADER_NAME);
    }

    #[test]
    fn parses_versions() {
        assert_eq!(
            v("1.2.3-rc.1+x"),
            ApiVersion {
                major: 1,
                minor: 2,
                patch: 3
            }
        );
        assert_eq!(ApiVersion::parse("1.2"), None);
        assert_eq!(ApiVersion::parse("1.2.3.4"), None);
        assert_eq!(ApiVersion::parse("a.b.c"), None);
        // The semver grammar: no leading zeros, no empty pre-release.
        assert_eq!(ApiVersion::parse("01.2.3"), None);
        assert_eq!(ApiVersion::parse("1.2.3-"), None);
        assert_eq!(ApiVersion::current().to_string(), API_VERSION);
    }

    fn sv(text: &str) -> semver::Version {
        semver::Version::parse(text).unwrap()
    }

    #[test]
    fn semver_rule_orders_pre_releases_and_ignores_build_metadata() {
        let ok = |host: &str, plugin: &str| check_api_semver(&sv(host), &sv(plugin));
        assert_eq!(ok("1.4.0", "1.4.0-rc.1"), Ok(()));
        assert_eq!(ok("1.4.0", "1.4.7+build.5"), Ok(()));
        assert_eq!(ok("1.4.0+host", "1.3.2-beta"), Ok(()));
        assert_eq!(ok("1.4.0-rc.2", "1.4.0-rc.1"), Ok(()));
        assert_eq!(ok("1.4.0-rc.2", "1.4.0-rc.3"), Err(ApiMismatch::MinorNewer));
        assert_eq!(ok("1.4.0-rc.2", "1.4.0"), Err(ApiMismatch::MinorNewer));
        assert_eq!(ok("1.4.0", "1.5.0-alpha"), Err(ApiMismatch::MinorNewer));
        assert_eq!(ok("1.4.0", "2.0.0-rc.1"), Err(ApiMismatch::Major));
        assert_eq!(ok("1.4.0", "0.4.0"), Err(ApiMismatch::Major));
        assert_eq!(current_api_semver().to_string(), API_VERSION);
    }

    #[test]
    fn version_rule() {
        assert_eq!(check_api_version(v("1.3.0"), v("1.3.9")), Ok(()));
        assert_eq!(check_api_version(v("1.3.0"), v("1.0.0")), Ok(()));
        assert_eq!(
            check_api_version(v("1.3.0"), v("1.4.0")),
            Err(ApiMismatch::MinorNewer)
        );
        assert_eq!(
            check_api_version(v("1.3.0"), v("2.0.0")),
            Err(ApiMismatch::Major)
        );
        assert_eq!(
            check_api_version(v("1.3.0"), v("0.3.0")),
            Err(ApiMismatch::Major)
        );
    }
}
