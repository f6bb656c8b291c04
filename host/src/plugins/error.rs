//! Plugin load errors: one variant per way a plugin file can be wrong, each naming
//! the file.

use std::path::PathBuf;

/// Why a plugin could not be found or loaded. Every variant names the file (or the
/// directory) it is about.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// `module` named a plugin that is in none of the plugin directories.
    #[error(
        "plugin {module:?} not found: looked for {file_name} in {}",
        display_dirs(searched)
    )]
    NotFound {
        /// The `module` value.
        module: String,
        /// The file name looked for (`libsim.so`).
        file_name: String,
        /// Directories searched, in order.
        searched: Vec<PathBuf>,
    },
    /// `module` named a hat-gateway device module (a Python module name) that no
    /// plugin in the plugin directories declares.
    #[error(
        "hat-gateway module {module:?}: no plugin declares it (looked in {}); plugins declaring hat modules: {}",
        display_dirs(searched),
        if declared.is_empty() { "none".to_owned() } else { declared.join(", ") }
    )]
    HatModuleNotFound {
        /// The `module` value.
        module: String,
        /// Directories searched, in order.
        searched: Vec<PathBuf>,
        /// `plugin (hat.module, ...)` for every plugin found that declares some.
        declared: Vec<String>,
    },
    /// The file or directory could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file or a directory on its path fails the StrictModes check (see
    /// [`InsecureProblem`]).
    #[error(
        "{}: refusing to load plugins: the {what} {problem}; fix with `{}`, or give \
         --allow-insecure-plugins (configuration key allow_insecure_plugins: true) to \
         skip this check",
        path.display(),
        problem.fix(path)
    )]
    Insecure {
        /// The file or directory.
        path: PathBuf,
        /// `file` or `directory`.
        what: &'static str,
        /// What is wrong with it.
        problem: InsecureProblem,
    },
    /// The file is not a shared library (not ELF, or an ELF file of another kind).
    #[error("{}: not a shared library: {reason}", path.display())]
    NotSharedLibrary {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        reason: String,
    },
    /// The library was built for another machine.
    #[error(
        "{}: wrong architecture: the library is for {found}, this host is {expected}",
        path.display()
    )]
    WrongArchitecture {
        /// The file.
        path: PathBuf,
        /// What the ELF header says.
        found: String,
        /// What this host needs.
        expected: String,
    },
    /// The dynamic loader refused the library (missing dependency, bad relocation...).
    #[error("{}: the dynamic loader failed: {reason}", path.display())]
    OpenFailed {
        /// The file.
        path: PathBuf,
        /// The loader's message.
        reason: String,
    },
    /// The library does not export a gateway plugin root module.
    #[error(
        "{}: not a gateway-host plugin: the root module symbol is missing \
         (a plugin exports it with gateway_plugin_api::export_plugin!)",
        path.display()
    )]
    MissingRootSymbol {
        /// The file.
        path: PathBuf,
    },
    /// The library's ABI does not match the host's (abi_stable header or type layout).
    #[error(
        "{}: ABI layout mismatch: the plugin was built against an incompatible \
         gateway-plugin-api/abi_stable: {reason}",
        path.display()
    )]
    LayoutMismatch {
        /// The file.
        path: PathBuf,
        /// abi_stable's description of the difference.
        reason: String,
    },
    /// The plugin was built against another major version of the API.
    #[error(
        "{}: plugin API major mismatch: the plugin was built with gateway-plugin-api \
         {plugin}, this host has {host}; rebuild the plugin against {host}",
        path.display()
    )]
    ApiMajorMismatch {
        /// The file.
        path: PathBuf,
        /// API version of the plugin.
        plugin: String,
        /// API version of the host.
        host: String,
    },
    /// The plugin needs a newer API minor than the host has.
    #[error(
        "{}: plugin API minor is newer than the host's: the plugin was built with \
         gateway-plugin-api {plugin}, this host has {host}; upgrade gateway-host or \
         rebuild the plugin against {host}",
        path.display()
    )]
    ApiMinorNewer {
        /// The file.
        path: PathBuf,
        /// API version of the plugin.
        plugin: String,
        /// API version of the host.
        host: String,
    },
    /// The plugin's root module constructor panicked.
    #[error("{}: plugin initialisation panicked", path.display())]
    InitPanicked {
        /// The file.
        path: PathBuf,
    },
    /// The plugin's root module constructor returned an error.
    #[error("{}: plugin initialisation failed: {reason}", path.display())]
    InitFailed {
        /// The file.
        path: PathBuf,
        /// The plugin's error.
        reason: String,
    },
    /// What the plugin declares about itself is unusable (bad version text, schema
    /// that is not JSON, empty device type...).
    #[error("{}: invalid plugin metadata: {reason}", path.display())]
    InvalidMetadata {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Two plugin files declare the same device type.
    #[error(
        "{}: duplicate device type {device_type:?}: already provided by {}",
        path.display(),
        other.display()
    )]
    DuplicateDeviceType {
        /// The file loaded second.
        path: PathBuf,
        /// The device type.
        device_type: String,
        /// The file that provides it already.
        other: PathBuf,
    },
}

/// Why a plugin file or a directory on its path is refused (sshd's StrictModes rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsecureProblem {
    /// Group or others can write it.
    Writable {
        /// Its permission bits.
        mode: u32,
    },
    /// Owned by a user that is neither root nor the one running the host.
    Owner {
        /// Its owner.
        uid: u32,
        /// The (effective) user running the host.
        host_uid: u32,
    },
    /// The plugin path is not a regular file.
    NotRegularFile,
}

impl InsecureProblem {
    /// The command that fixes it, for `path`.
    pub fn fix(&self, path: &std::path::Path) -> String {
        match self {
            Self::Writable { .. } => format!("chmod go-w {}", path.display()),
            Self::Owner { host_uid, .. } if *host_uid != 0 => {
                format!("chown {host_uid} {} (or chown root)", path.display())
            }
            Self::Owner { .. } => format!("chown root {}", path.display()),
            Self::NotRegularFile => format!("replacing {} with a regular file", path.display()),
        }
    }
}

impl std::fmt::Display for InsecureProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Writable { mode } => {
                write!(f, "is writable by group or others (mode {mode:04o})")
            }
            Self::Owner { uid, host_uid } => write!(
                f,
                "is owned by uid {uid}, neither root nor the user running gateway-host \
                 (uid {host_uid})"
            ),
            Self::NotRegularFile => f.write_str("is not a regular file"),
        }
    }
}

fn display_dirs(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        return "no directories".to_owned();
    }
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl PluginError {
    /// The file or directory the error is about (`None` for [`PluginError::NotFound`]
    /// and [`PluginError::HatModuleNotFound`]).
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Self::NotFound { .. } | Self::HatModuleNotFound { .. } => None,
            Self::Io { path, .. }
            | Self::Insecure { path, .. }
            | Self::NotSharedLibrary { path, .. }
            | Self::WrongArchitecture { path, .. }
            | Self::OpenFailed { path, .. }
            | Self::MissingRootSymbol { path }
            | Self::LayoutMismatch { path, .. }
            | Self::ApiMajorMismatch { path, .. }
            | Self::ApiMinorNewer { path, .. }
            | Self::InitPanicked { path }
            | Self::InitFailed { path, .. }
            | Self::InvalidMetadata { path, .. }
            | Self::DuplicateDeviceType { path, .. } => Some(path),
        }
    }
}
