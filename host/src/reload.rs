//! Reload without restart: on SIGHUP (or `gateway-host reload`, which sends it through
//! the daemon's pid file) the daemon reads its configuration file and the plugin
//! directories again and moves the running gateway to the new device set
//! ([`crate::engine::Engine::reconfigure`]): added devices are created, removed ones
//! closed (`running=false`), changed ones (any key of their entry, or their plugin
//! loaded from another file) closed and created again, unchanged ones keep running
//! untouched.
//!
//! A reload is all or nothing. A configuration that fails validation is refused with
//! the errors `check` prints; one that changes what cannot change live (the gateway
//! `name`, the `event_server` section, the `adminer_server` and `metrics` addresses,
//! the event-type layout, the log `format`, a plugin file rewritten since it was
//! loaded, whose new code only a new process can load, or an added device in the
//! `hat-gateway-0.6` layout, whose subscriptions are fixed per connection) is refused with a message saying a restart is
//! needed. Either way the running configuration stays. Reloads are handled one at a
//! time, in order: a reload that arrives while another is being validated waits for
//! it, and a device that a reload changes while it is being created is created again
//! only after its old instance has finished being created and closed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::watch;

use crate::cli::RunArgs;
use crate::config::{ConfigErrors, ValidatedConfig};
use crate::device::FileStamp;
use crate::logging::{self, LogConfig};
use crate::spec::{EventTypes, GatewaySpec};

/// Top-level keys of the configuration a reload cannot change: a new value needs a
/// restart.
pub const RESTART_KEYS: [&str; 4] = ["name", "event_server", "adminer_server", "metrics"];

/// The part of a configuration document a reload compares: its [`RESTART_KEYS`].
fn restart_part(doc: Value) -> Value {
    match doc {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(key, _)| RESTART_KEYS.contains(&key.as_str()))
                .collect(),
        ),
        other => other,
    }
}

/// Why a reload was refused (the running configuration stays).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new configuration is not valid; the errors are those `check` prints.
    #[error("{}", crate::cli::config_errors_text(.0))]
    Invalid(ConfigErrors),
    /// The new configuration changes what only a restart can apply.
    #[error("{} changed; a restart is needed to apply this configuration", .0.join(", "))]
    RestartNeeded(Vec<String>),
    /// The configuration cannot be read again (it came from standard input).
    #[error("{0}")]
    Unavailable(String),
}

/// What a reload did, in devices (computed before the engine applies it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Devices that are new.
    pub added: usize,
    /// Devices no longer configured.
    pub removed: usize,
    /// Devices whose entry or plugin changed.
    pub changed: usize,
    /// Devices left running.
    pub kept: usize,
}

/// The daemon's side of reloads: what it runs now and where new specs go.
pub struct Reloader {
    args: RunArgs,
    /// The running document's [`RESTART_KEYS`] only ([`restart_part`]): the devices
    /// are in `spec`, and a whole copy of the document cost about 0.8 KiB per device.
    running: Value,
    log: LogConfig,
    spec: Arc<GatewaySpec>,
    specs: watch::Sender<Arc<GatewaySpec>>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("args", &self.args)
            .field("gateway", &self.spec.name)
            .field("devices", &self.spec.devices.len())
            .finish_non_exhaustive()
    }
}

impl Reloader {
    /// A reloader for a daemon started with `args` on the document `running` (its
    /// validated form `validated`); returns it and the [`crate::runner::Specs`] the
    /// runner follows.
    pub fn new(
        args: RunArgs,
        running: Value,
        validated: &ValidatedConfig,
    ) -> (Self, crate::runner::Specs) {
        let spec = Arc::new(validated.spec.clone());
        let (specs, receiver) = watch::channel(spec.clone());
        let reloader = Self {
            args,
            running: restart_part(running),
            log: validated.log.clone(),
            spec,
            specs,
        };
        (reloader, receiver)
    }

    /// Reads and validates the configuration again and, when it can be applied live,
    /// hands the new spec to the runner. Blocking (files, plugin loading): run it
    /// off the async workers.
    pub fn reload(&mut self) -> Result<ReloadSummary, ReloadError> {
        if self
            .args
            .conf
            .as_deref()
            .is_some_and(|conf| conf == Path::new(crate::config::STDIN_NAME))
        {
            return Err(ReloadError::Unavailable(
                "the configuration was read from standard input: it cannot be read again; \
                 restart the daemon to change it"
                    .into(),
            ));
        }
        let (raw, validated) =
            crate::cli::load_and_validate(&self.args).map_err(|err| match err {
                crate::cli::CliError::Config(errors) => ReloadError::Invalid(errors),
                other => ReloadError::Unavailable(other.to_string()),
            })?;
        let mut restart: Vec<String> = RESTART_KEYS
            .iter()
            .filter(|key| self.running.get(**key) != raw.value.get(**key))
            .map(|key| (*key).to_owned())
            .collect();
        if validated.log.format != self.log.format {
            restart.push("log format".to_owned());
        }
        if validated.spec.event_types != self.spec.event_types {
            restart.push("event_types".to_owned());
        }
        restart.extend(replaced_plugins(&self.spec, &validated.spec));
        let summary = summarize(&self.spec, &validated.spec);
        if summary.added > 0 && validated.spec.event_types == EventTypes::HatGateway06 {
            // Its subscriptions are one per device, fixed for a connection's lifetime.
            restart.push(
                "the device set (devices added with event_types hat-gateway-0.6, whose \
                 subscriptions are one per device and fixed per connection)"
                    .to_owned(),
            );
        }
        if !restart.is_empty() {
            return Err(ReloadError::RestartNeeded(restart));
        }
        if validated.log != self.log {
            let rust_log = std::env::var(logging::RUST_LOG).ok();
            let old = logging::effective_filter(&self.log, rust_log.as_deref())
                .map(|(filter, _)| filter.to_string());
            match logging::effective_filter(&validated.log, rust_log.as_deref()) {
                Ok((filter, _)) if Ok(filter.to_string()) != old => {
                    let directives = filter.to_string();
                    let dict = crate::cli::hat_log_section(&raw.value);
                    match logging::set_directives(&directives, dict) {
                        Ok(()) => tracing::info!(%directives, "reload: log filter changed"),
                        Err(err) => tracing::warn!(error = %err, "reload: log filter unchanged"),
                    }
                }
                _ => {}
            }
        }
        let spec = Arc::new(validated.spec);
        self.spec = spec.clone();
        self.running = restart_part(raw.value);
        self.log = validated.log;
        for warning in &validated.warnings {
            tracing::warn!(config = %raw.origin, "{warning}");
        }
        // The metrics list the new devices (a kept device keeps its counters).
        crate::ops::metrics::global().configure(&spec);
        // No receiver left only when the runner has ended (shutting down).
        let _ = self.specs.send(spec);
        Ok(summary)
    }
}

/// Devices of `new` whose plugin file was rewritten or replaced since `old`'s plugin
/// was loaded from the same path: the process already holds the old code for that
/// path and cannot load the new one.
fn replaced_plugins(old: &GatewaySpec, new: &GatewaySpec) -> Vec<String> {
    let loaded: HashMap<PathBuf, Option<FileStamp>> = old
        .devices
        .iter()
        .filter_map(|d| d.factory.origin())
        .map(|origin| (origin.path, origin.stamp))
        .collect();
    let mut replaced: Vec<String> = new
        .devices
        .iter()
        .filter_map(|d| d.factory.origin())
        .filter(|origin| loaded.get(&origin.path).is_some_and(|s| *s != origin.stamp))
        .map(|origin| format!("plugin file {}", origin.path.display()))
        .collect();
    replaced.sort();
    replaced.dedup();
    replaced
}

/// Which devices a move from `old` to `new` adds, removes, changes and keeps (by
/// device type and name, [`crate::spec::DeviceSpec::same_as`]).
pub fn summarize(old: &GatewaySpec, new: &GatewaySpec) -> ReloadSummary {
    let before: HashMap<(&str, &str), &crate::spec::DeviceSpec> = old
        .devices
        .iter()
        .map(|d| ((d.device_type.as_str(), d.name.as_str()), d))
        .collect();
    let mut summary = ReloadSummary::default();
    for device in &new.devices {
        match before.get(&(device.device_type.as_str(), device.name.as_str())) {
            Some(old) if old.same_as(device) => summary.kept += 1,
            Some(_) => summary.changed += 1,
            None => summary.added += 1,
        }
    }
    summary.removed = old.devices.len() - (summary.kept + summary.changed);
    summary
}

/// Handles SIGHUP until the process ends: one reload at a time, each logged (the
/// refusals as errors, with the reason). Must be called inside a runtime; the
/// handler is installed before it returns, so a SIGHUP right after is a reload.
#[cfg(unix)]
pub fn reload_on_sighup(reloader: Reloader) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        let mut reloader = Some(reloader);
        while hangup.recv().await.is_some() {
            let Some(mut current) = reloader.take() else {
                break;
            };
            tracing::info!("SIGHUP: reloading the configuration");
            let done = tokio::task::spawn_blocking(move || {
                let result = current.reload();
                (current, result)
            })
            .await;
            match done {
                Ok((current, result)) => {
                    log_result(&result);
                    reloader = Some(current);
                }
                Err(err) => {
                    tracing::error!(error = %err, "reload failed; further reloads are ignored");
                }
            }
        }
    });
    Ok(())
}

fn log_result(result: &Result<ReloadSummary, ReloadError>) {
    match result {
        Ok(s) => tracing::info!(
            added = s.added,
            removed = s.removed,
            changed = s.changed,
            kept = s.kept,
            "reload applied"
        ),
        Err(ReloadError::Invalid(errors)) => tracing::error!(
            "reload refused, the running configuration stays: {}",
            crate::cli::config_errors_text(errors)
        ),
        Err(err) => tracing::error!("reload refused, the running configuration stays: {err}"),
    }
}

/// The pid file of gateway `name`: `$XDG_STATE_HOME/hat/gateway/<name>.pid`, else
/// `$HOME/.local/state/hat/gateway/<name>.pid` (`None` without either variable).
/// The daemon writes it at start and removes it at exit; `gateway-host reload`
/// reads it.
pub fn pid_file(name: &str) -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".local/state")
        }
    };
    // A name with '/' would leave the directory; such names are escaped.
    let file = format!("{}.pid", name.replace(['/', '\\'], "_"));
    Some(base.join("hat").join("gateway").join(file))
}

/// The daemon's pid file, locked (`flock`, exclusive) for as long as the daemon runs
/// and removed when dropped. The lock is what tells a live daemon's file from one left
/// by a process that was killed: `gateway-host reload` signals only a pid whose file is
/// locked, so a stale file never makes it signal whatever process has that pid now.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    // Holds the lock; closing it releases the lock.
    _file: std::fs::File,
}

impl PidFile {
    /// Locks `path` (creating it and its directory) and writes this process's pid to
    /// it. Fails when another running daemon holds it.
    #[cfg(unix)]
    pub fn create(path: PathBuf) -> std::io::Result<Self> {
        use std::io::Write;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        if !try_lock(&file, libc::LOCK_EX)? {
            let holder = read_pid(&path)
                .map(|pid| format!(" (pid {pid})"))
                .unwrap_or_default();
            return Err(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                format!(
                    "{} is held by another running daemon of this gateway name{holder}",
                    path.display()
                ),
            ));
        }
        file.set_len(0)?;
        file.write_all(format!("{}\n", std::process::id()).as_bytes())?;
        Ok(Self { path, _file: file })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Still locked by this process: no other daemon can have taken it over.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `flock(file, operation | LOCK_NB)`: true when taken, false when another open file
/// holds a conflicting lock.
#[cfg(unix)]
fn try_lock(file: &std::fs::File, operation: libc::c_int) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock(2) on a descriptor this File owns and keeps open for the call.
    if unsafe { libc::flock(file.as_raw_fd(), operation | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// The pid in a pid file.
pub fn read_pid(path: &Path) -> Result<u32, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    text.trim()
        .parse()
        .map_err(|_| format!("{} does not hold a process id", path.display()))
}

/// Sends SIGHUP to the daemon of gateway `name` (through its pid file); returns the
/// pid signalled.
#[cfg(unix)]
pub fn signal_reload(name: &str) -> Result<u32, String> {
    let path = pid_file(name).ok_or("neither XDG_STATE_HOME nor HOME is set: no pid file")?;
    signal_reload_at(name, &path)
}

/// [`signal_reload`] through the pid file at `path`: only a file a running daemon holds
/// locked is trusted.
#[cfg(unix)]
fn signal_reload_at(name: &str, path: &Path) -> Result<u32, String> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "no running gateway {name:?}: no pid file {}",
                path.display()
            ))
        }
        Err(err) => return Err(format!("cannot open {}: {err}", path.display())),
    };
    let unlocked = try_lock(&file, libc::LOCK_SH)
        .map_err(|err| format!("cannot check the lock of {}: {err}", path.display()))?;
    if unlocked {
        return Err(format!(
            "no running gateway {name:?}: {} is left by a daemon that has ended (it is not \
             locked); nothing signalled",
            path.display()
        ));
    }
    let pid = read_pid(path)?;
    let target = libc::pid_t::try_from(pid)
        .map_err(|_| format!("{} holds an impossible pid {pid}", path.display()))?;
    // SAFETY: kill(2) with a pid and a signal number has no memory effects.
    let sent = unsafe { libc::kill(target, libc::SIGHUP) };
    if sent != 0 {
        let err = std::io::Error::last_os_error();
        return Err(format!(
            "cannot signal gateway {name:?} (pid {pid} from {}): {err}",
            path.display()
        ));
    }
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{DeviceContext, DeviceError, DeviceFactory, DeviceInstance, FactoryOrigin};
    use crate::spec::{DeviceSpec, EventServerSpec};
    use futures::future::BoxFuture;

    #[derive(Debug)]
    struct Factory;

    impl DeviceFactory for Factory {
        fn device_type(&self) -> &str {
            "sim"
        }
        fn json_schema_id(&self) -> Option<&str> {
            None
        }
        fn json_schema(&self) -> Option<&Value> {
            None
        }
        fn create(
            &self,
            _conf: Value,
            _context: DeviceContext,
        ) -> BoxFuture<'static, Result<Box<dyn DeviceInstance>, DeviceError>> {
            Box::pin(async { Err(DeviceError::Failed("unused".into())) })
        }
    }

    fn spec(devices: &[(&str, Value)], factory: &Arc<dyn DeviceFactory>) -> GatewaySpec {
        GatewaySpec {
            name: "gw".into(),
            event_server: EventServerSpec::Embedded {
                listen: None,
                enable_devices: false,
            },
            require_operational: false,
            event_types: EventTypes::default(),
            devices: devices
                .iter()
                .map(|(name, conf)| DeviceSpec::new("sim", *name, conf.clone(), factory.clone()))
                .collect(),
        }
    }

    /// The reloader keeps only what a reload compares of the running document, not
    /// its devices (a second copy of them per device, issue 12).
    #[test]
    fn restart_part_keeps_only_restart_keys() {
        let doc = serde_json::json!({
            "name": "gw",
            "event_server": {"embedded": {}},
            "metrics": {"port": 1},
            "devices": [{"module": "sim", "name": "d"}],
            "log": {"level": "warn"},
        });
        let part = restart_part(doc.clone());
        assert_eq!(part.as_object().map(serde_json::Map::len), Some(3));
        for key in RESTART_KEYS {
            assert_eq!(part.get(key), doc.get(key), "{key}");
        }
        assert!(part.get("devices").is_none());
    }

    #[test]
    fn summary_counts_added_removed_changed_kept() {
        let factory: Arc<dyn DeviceFactory> = Arc::new(Factory);
        let other: Arc<dyn DeviceFactory> = Arc::new(Factory);
        let old = spec(
            &[
                ("keep", serde_json::json!({"a": 1})),
                ("change", serde_json::json!({"a": 1})),
                ("gone", serde_json::json!({})),
            ],
            &factory,
        );
        let mut new = spec(
            &[
                ("new", serde_json::json!({})),
                ("change", serde_json::json!({"a": 2})),
                ("keep", serde_json::json!({"a": 1})),
            ],
            &factory,
        );
        assert_eq!(
            summarize(&old, &new),
            ReloadSummary {
                added: 1,
                removed: 1,
                changed: 1,
                kept: 1
            }
        );
        // Another factory object is another device type code.
        new.devices[2].factory = other;
        assert_eq!(summarize(&old, &new).changed, 2);
        // A host key (restart) is part of the entry.
        let mut restart = spec(&[("keep", serde_json::json!({"a": 1}))], &factory);
        restart.devices[0].restart = crate::spec::RestartPolicy::ON_FAILURE_DEFAULT;
        assert_eq!(summarize(&old, &restart).changed, 1);
    }

    /// A plugin library at `path`, as stamped when loaded.
    #[derive(Debug)]
    struct Library(FactoryOrigin);

    impl DeviceFactory for Library {
        fn device_type(&self) -> &str {
            "sim"
        }
        fn json_schema_id(&self) -> Option<&str> {
            None
        }
        fn json_schema(&self) -> Option<&Value> {
            None
        }
        fn origin(&self) -> Option<FactoryOrigin> {
            Some(self.0.clone())
        }
        fn create(
            &self,
            _conf: Value,
            _context: DeviceContext,
        ) -> BoxFuture<'static, Result<Box<dyn DeviceInstance>, DeviceError>> {
            Box::pin(async { Err(DeviceError::Failed("unused".into())) })
        }
    }

    fn library(path: &str, len: u64) -> Arc<dyn DeviceFactory> {
        Arc::new(Library(FactoryOrigin {
            path: PathBuf::from(path),
            stamp: Some(FileStamp {
                len,
                modified: None,
                inode: Some((1, len)),
            }),
        }))
    }

    #[test]
    fn a_plugin_file_rewritten_in_place_needs_a_restart_another_file_does_not() {
        let conf = serde_json::json!({});
        let old = spec(&[("d", conf.clone())], &library("/p/libsim.so", 100));
        // The same file, loaded again unchanged: the same code, the device is kept.
        let same = spec(&[("d", conf.clone())], &library("/p/libsim.so", 100));
        assert!(replaced_plugins(&old, &same).is_empty());
        assert_eq!(summarize(&old, &same).kept, 1);
        // Rewritten at the same path: the process still holds the old code.
        let rewritten = spec(&[("d", conf.clone())], &library("/p/libsim.so", 200));
        assert_eq!(
            replaced_plugins(&old, &rewritten),
            ["plugin file /p/libsim.so"]
        );
        // Another file: loadable live, the device is changed (recreated).
        let moved = spec(&[("d", conf)], &library("/q/libsim2.so", 200));
        assert!(replaced_plugins(&old, &moved).is_empty());
        assert_eq!(summarize(&old, &moved).changed, 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_pid_file_is_locked_while_held_and_a_stale_one_is_never_signalled() {
        let dir = std::env::temp_dir().join(format!("gateway-pidfile-{}", std::process::id()));
        let path = dir.join("gw.pid");
        let held = PidFile::create(path.clone()).unwrap();
        assert_eq!(read_pid(&path).unwrap(), std::process::id());
        // A second daemon of the same name cannot take it.
        let err = PidFile::create(path.clone()).unwrap_err();
        assert!(
            err.to_string().contains("held by another running daemon"),
            "{err}"
        );
        drop(held);
        assert!(!path.exists());

        // A file left by a killed daemon, naming a live process that is not a daemon:
        // that process is not signalled (SIGHUP would end it).
        let mut bystander = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, format!("{}\n", bystander.id())).unwrap();
        let err = signal_reload_at("gw", &path).unwrap_err();
        assert!(
            err.contains("has ended") && err.contains("nothing signalled"),
            "{err}"
        );
        assert!(
            bystander.try_wait().unwrap().is_none(),
            "the bystander was signalled"
        );
        bystander.kill().unwrap();
        bystander.wait().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn pid_file_names_stay_in_the_state_directory() {
        if let Some(path) = pid_file("a/../b") {
            assert_eq!(path.file_name().unwrap(), "a_.._b.pid");
        }
    }
}
