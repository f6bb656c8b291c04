//! Command line of the `gateway-host` binary (clap) and the dispatch of its commands:
//! run the daemon, `check`, `schema`, `plugins` and `events`.
//!
//! Exit codes: 0 success, 2 configuration / plugin / usage errors (nothing was sent
//! anywhere), 1 any other failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{self, ConfigError, ConfigErrors, ConfigSource, RawConfig, ValidatedConfig};
use crate::device::DeviceFactory;
use crate::events_cmd::{self, EventsArgs};
use crate::logging::{self, LogConfig};
use crate::plugins::{PluginRegistry, PluginSearch};

/// Exit code for configuration, schema and plugin errors found before start.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for any other failure.
pub const EXIT_FAILURE: u8 = 1;

/// `gateway-host`: a hat-gateway compatible gateway whose device types are plugins.
#[derive(Debug, Parser)]
#[command(name = "gateway-host", version, about, long_about = None)]
pub struct Cli {
    /// Configuration and plugins of the daemon (when no subcommand is given).
    #[command(flatten)]
    pub run: RunArgs,
    /// A subcommand; none runs the daemon.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Where the configuration and the plugins are.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct RunArgs {
    /// Configuration file (YAML, JSON or TOML by extension); `-` reads standard input.
    /// Default: the first of $XDG_CONFIG_HOME/hat/gateway.{yaml,yml,toml,json}.
    #[arg(long, value_name = "PATH")]
    pub conf: Option<PathBuf>,
    /// Plugin search options.
    #[command(flatten)]
    pub plugins: PluginArgs,
}

/// Where plugins are searched and how carefully.
#[derive(Debug, Clone, PartialEq, Eq, Default, Args)]
pub struct PluginArgs {
    /// Directory searched for device plugins, before the configuration's plugins_dir,
    /// the executable's directory and $XDG_DATA_HOME/hat/gateway/plugins. Repeatable.
    #[arg(long = "plugins-dir", value_name = "DIR")]
    pub plugins_dirs: Vec<PathBuf>,
    /// Load plugins from files or directories other users can write to.
    #[arg(long)]
    pub allow_insecure_plugins: bool,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration and resolve every plugin; connect to nothing.
    Check(RunArgs),
    /// Print the main configuration schema, or a device type's schema.
    Schema {
        /// Device type (or plugin name) whose schema to print.
        #[arg(value_name = "DEVICE_TYPE")]
        device_type: Option<String>,
        /// Plugin search options.
        #[command(flatten)]
        plugins: PluginArgs,
    },
    /// List the plugins found, or describe one.
    Plugins {
        /// What to show.
        #[command(subcommand)]
        command: Option<PluginsCommand>,
        /// Plugin search options.
        #[command(flatten)]
        plugins: PluginArgs,
    },
    /// Register, query and watch events on an Eventer server.
    Events(EventsArgs),
    /// Tools for plugin authors.
    Plugin {
        /// What to do.
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Ask the running daemon (its metrics endpoint) for every device's state; exits
    /// 1 when a device is failed, 3 when the daemon cannot be reached.
    Status(StatusArgs),
    /// Make the running daemon of this configuration's gateway read its configuration
    /// and plugin directories again (SIGHUP through its pid file). The configuration
    /// is checked here first: with errors, nothing is signalled.
    Reload(RunArgs),
    /// Set (or, without LEVEL_OR_FILTER, print) the running daemon's log
    /// configuration through its Adminer server.
    LogLevel(LogLevelArgs),
}

/// `log-level` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct LogLevelArgs {
    /// A level (`debug`) or filter directives of levels and `target=level`
    /// (`info,gateway_host::engine=debug`); none prints the current configuration.
    #[arg(value_name = "LEVEL_OR_FILTER")]
    pub filter: Option<String>,
    /// The daemon's Adminer server (`host:port`); default: the `adminer_server` of
    /// `--conf` when given, else 127.0.0.1:23016 (hat's default).
    #[arg(long, value_name = "HOST:PORT")]
    pub adminer: Option<String>,
    /// Configuration whose `adminer_server` to use.
    #[arg(long, value_name = "PATH")]
    pub conf: Option<PathBuf>,
}

/// Where `status` finds the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct StatusArgs {
    /// The metrics endpoint, `http://HOST:PORT` (or `HOST:PORT`).
    #[arg(long, value_name = "URL", conflicts_with = "conf")]
    pub metrics: Option<String>,
    /// The daemon's configuration file: its `metrics` section says where to ask.
    /// Default (without --metrics): the default configuration file.
    #[arg(long, value_name = "PATH")]
    pub conf: Option<PathBuf>,
}

/// `status` exit code when the daemon cannot be reached.
pub const EXIT_UNREACHABLE: u8 = 3;

/// `plugin` subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum PluginCommand {
    /// Write a new out-of-tree plugin project: Cargo.toml, schema, a device with a
    /// background task, a test using the SDK's test kit, and a README.
    New {
        /// Plugin (crate) name: lower-case letters, digits and '_' (lib<NAME>.so).
        #[arg(value_name = "NAME")]
        name: String,
        /// Project directory (default: ./NAME); must not exist or be empty.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Device type (default: NAME).
        #[arg(long, value_name = "TYPE")]
        device_type: Option<String>,
        /// Depend on a local gateway-plugin-api checkout (its directory) instead of
        /// the registry.
        #[arg(long, value_name = "DIR")]
        api_path: Option<PathBuf>,
    },
}

/// `plugins` subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum PluginsCommand {
    /// Show one plugin: its file, versions, device type and schema id.
    Info {
        /// Plugin name (sim) or library path.
        #[arg(value_name = "NAME|PATH")]
        plugin: String,
    },
}

/// A failure of a command, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Configuration or plugin errors (exit 2).
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// A plugin error outside a configuration (exit 2).
    #[error("{0}")]
    Plugin(String),
    /// Anything else (exit 1); shown with its chain of causes.
    #[error("{}", ErrorChain(.0.as_ref()))]
    Other(Box<dyn std::error::Error + Send + Sync>),
    /// The command already printed what went wrong; exit with this code.
    #[error("exit status {0}")]
    Reported(u8),
}

impl CliError {
    /// [`CliError::Other`] of `err`.
    pub fn other(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Other(Box::new(err))
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::Plugin(_) => EXIT_CONFIG,
            Self::Other(_) => EXIT_FAILURE,
            Self::Reported(code) => *code,
        }
    }
}

/// An error followed by its sources, `outer: inner: ...`.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// An error with what was being done: `<what>: <error>`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Context<E>(&'static str, #[source] E);

/// Parses the command line, runs the command and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Reported(code)) => ExitCode::from(code),
        Err(err) => {
            eprintln!("{}", error_text(&err));
            ExitCode::from(err.exit_code())
        }
    }
}

fn error_text(err: &CliError) -> String {
    match err {
        // One line per error, each starting with the file (like a compiler's), so
        // editors and scripts can pick them up; a count first when there are several.
        CliError::Config(errors) => config_errors_text(errors),
        other => format!("gateway-host: {other}"),
    }
}

/// Configuration errors as `check` prints them: one line per error, each starting
/// with the file (like a compiler's), so editors and scripts can pick them up; a
/// count first when there are several.
pub(crate) fn config_errors_text(errors: &ConfigErrors) -> String {
    if errors.errors().len() > 1 {
        format!("{} configuration errors:\n{errors}", errors.errors().len())
    } else {
        errors.to_string()
    }
}

/// Runs one parsed command line.
pub fn dispatch(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        None => run_daemon(&cli.run),
        Some(Command::Check(mut args)) => {
            // `gateway-host --conf g.yaml check` means the same as `check --conf g.yaml`.
            args.conf = args.conf.or(cli.run.conf);
            args.plugins
                .plugins_dirs
                .extend(cli.run.plugins.plugins_dirs);
            args.plugins.allow_insecure_plugins |= cli.run.plugins.allow_insecure_plugins;
            check(&args)
        }
        Some(Command::Schema {
            device_type,
            plugins,
        }) => schema(device_type.as_deref(), &plugins),
        Some(Command::Plugins { command, plugins }) => plugins_command(command, &plugins),
        Some(Command::Events(args)) => events(args),
        Some(Command::Plugin { command }) => plugin_command(command),
        Some(Command::Status(args)) => status(&args),
        Some(Command::Reload(mut args)) => {
            args.conf = args.conf.or(cli.run.conf);
            args.plugins
                .plugins_dirs
                .extend(cli.run.plugins.plugins_dirs);
            args.plugins.allow_insecure_plugins |= cli.run.plugins.allow_insecure_plugins;
            reload(&args)
        }
        Some(Command::LogLevel(args)) => log_level(&args),
    }
}

fn plugin_command(command: PluginCommand) -> Result<(), CliError> {
    let PluginCommand::New {
        name,
        dir,
        device_type,
        api_path,
    } = command;
    let new = crate::plugins::NewPlugin {
        dir: dir.unwrap_or_else(|| PathBuf::from(&name)),
        device_type: device_type.unwrap_or_else(|| name.clone()),
        api: match api_path {
            Some(path) => crate::plugins::ApiSource::Path(path),
            None => crate::plugins::ApiSource::Registry,
        },
        name,
    };
    crate::plugins::new_plugin_command(&new, &mut std::io::stdout().lock()).map_err(CliError::other)
}

/// Reads the configuration named by `--conf`, or the default one.
pub fn load_raw(conf: Option<&Path>) -> Result<RawConfig, ConfigErrors> {
    let source = match conf {
        Some(path) => ConfigSource::from_arg(path),
        None => match config::find_default_from_env() {
            Ok(path) => ConfigSource::Path(path),
            Err(searched) => {
                let searched: Vec<String> =
                    searched.iter().map(|p| p.display().to_string()).collect();
                let reason = if searched.is_empty() {
                    "no --conf given and neither XDG_CONFIG_HOME nor HOME is set".to_owned()
                } else {
                    format!(
                        "no --conf given and no default configuration found (searched {})",
                        searched.join(", ")
                    )
                };
                return Err(ConfigError::document("gateway-host", reason).into());
            }
        },
    };
    config::read(&source)
}

/// The plugin registry over `--plugins-dir` values, then the configuration's
/// `plugins_dir`, then the standard directories (see [`PluginSearch::standard`]).
pub fn plugin_registry(plugins: &PluginArgs, config_dirs: &[PathBuf]) -> PluginRegistry {
    let explicit: Vec<PathBuf> = plugins
        .plugins_dirs
        .iter()
        .chain(config_dirs)
        .cloned()
        .collect();
    PluginRegistry::new(PluginSearch::standard(
        &explicit,
        plugins.allow_insecure_plugins,
    ))
}

/// Resolves a device entry's `module` through `registry`. A relative *path* (not a
/// plugin name) is taken relative to the configuration file's directory, so a
/// configuration means the same whatever the daemon's working directory is.
fn resolve_module(
    registry: &PluginRegistry,
    base_dir: &Path,
    module: &str,
) -> Result<Arc<dyn DeviceFactory>, String> {
    let is_path = module.contains('/')
        || module.contains(std::path::MAIN_SEPARATOR)
        || module.ends_with(std::env::consts::DLL_SUFFIX);
    let module = if is_path && Path::new(module).is_relative() {
        base_dir.join(module).to_string_lossy().into_owned()
    } else {
        module.to_owned()
    };
    registry
        .resolve(&module)
        .map(|plugin| plugin as Arc<dyn DeviceFactory>)
        .map_err(|err| err.to_string())
}

/// Loads and fully validates a configuration.
pub(crate) fn load_and_validate(args: &RunArgs) -> Result<(RawConfig, ValidatedConfig), CliError> {
    let raw = load_raw(args.conf.as_deref())?;
    let mut plugins = args.plugins.clone();
    // The configuration key and the flag are one switch: either one turns it on.
    plugins.allow_insecure_plugins |= config::allow_insecure_plugins(&raw);
    let registry = plugin_registry(&plugins, &config::plugin_dirs(&raw));
    let resolve = |module: &str| resolve_module(&registry, &raw.base_dir, module);
    let validated = config::validate(&raw, &resolve)?;
    Ok((raw, validated))
}

fn check(args: &RunArgs) -> Result<(), CliError> {
    let (raw, validated) = load_and_validate(args)?;
    for warning in &validated.warnings {
        eprintln!("gateway-host: warning: {}: {warning}", raw.origin);
    }
    let mut report = format!(
        "{}: valid (gateway {:?}, {} device(s))\nevent types: {}",
        raw.origin,
        validated.spec.name,
        validated.spec.devices.len(),
        validated.compat.layout_line()
    );
    if !validated.compat.mapped.is_empty() {
        report.push_str("\nhat-gateway features mapped:");
        for line in &validated.compat.mapped {
            report.push_str("\n  ");
            report.push_str(line);
        }
    }
    print_stdout(&report)
}

fn schema(device_type: Option<&str>, plugins: &PluginArgs) -> Result<(), CliError> {
    let text = match device_type {
        None => config::MAIN_SCHEMA_TEXT.trim_end().to_owned(),
        Some(name) => {
            let registry = plugin_registry(plugins, &[]);
            // A plugin name first (sim -> libsim.so); else any plugin found in the
            // directories that provides this device type.
            let plugin = match registry.resolve(name) {
                Ok(plugin) => plugin,
                Err(err) => {
                    let _ = registry.scan();
                    registry
                        .by_device_type(name)
                        .ok_or_else(|| CliError::Plugin(err.to_string()))?
                }
            };
            let info = plugin.info();
            let schema = info.json_schema.as_ref().ok_or_else(|| {
                CliError::Plugin(format!(
                    "{}: device type {:?} has no configuration schema",
                    info.path.display(),
                    info.device_type
                ))
            })?;
            serde_json::to_string_pretty(schema).map_err(CliError::other)?
        }
    };
    print_stdout(&text)
}

/// Prints `text` and a newline; a closed pipe (`| head`) is not an error.
fn print_stdout(text: &str) -> Result<(), CliError> {
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::other(err)),
        _ => Ok(()),
    }
}

fn plugins_command(command: Option<PluginsCommand>, plugins: &PluginArgs) -> Result<(), CliError> {
    let target = command.map(|PluginsCommand::Info { plugin }| plugin);
    let report = crate::plugins::plugins_command(
        &plugins.plugins_dirs,
        plugins.allow_insecure_plugins,
        target.as_deref(),
        &mut std::io::stdout().lock(),
    );
    match report {
        crate::plugins::PluginsReport::Clean => Ok(()),
        // The command printed its report; only the status is left to give.
        crate::plugins::PluginsReport::Broken => Err(CliError::Reported(EXIT_CONFIG)),
    }
}

fn events(args: EventsArgs) -> Result<(), CliError> {
    // The operator's tool logs warnings only, unless RUST_LOG says otherwise.
    let _ = logging::install(&LogConfig {
        level: "warn".to_owned(),
        ..LogConfig::default()
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::other)?;
    runtime.block_on(async {
        let shutdown = shutdown_on_signals()?;
        let mut out = std::io::stdout().lock();
        match events_cmd::run(args, shutdown, &mut out).await {
            Err(err) if !err.is_broken_pipe() => Err(CliError::other(err)),
            _ => Ok(()),
        }
    })
}

fn status(args: &StatusArgs) -> Result<(), CliError> {
    let address = match &args.metrics {
        Some(url) => crate::ops::status::address_of(url).map_err(|reason| {
            CliError::from(ConfigErrors::from(ConfigError::document(
                "--metrics",
                reason,
            )))
        })?,
        None => {
            let raw = load_raw(args.conf.as_deref())?;
            let config = crate::ops::MetricsConfig::from_document(&raw.value)
                .map_err(|reason| {
                    ConfigErrors::from(ConfigError::at(&raw.origin, "/metrics", reason))
                })?
                .ok_or_else(|| {
                    ConfigErrors::from(ConfigError::document(
                        &raw.origin,
                        "no metrics section: the daemon serves no status (or use --metrics URL)",
                    ))
                })?;
            let host = match config.host.as_str() {
                // Listening on every address: ask on loopback.
                "0.0.0.0" => "127.0.0.1",
                "::" | "[::]" => "::1",
                host => host,
            };
            if host.contains(':') {
                format!("[{host}]:{}", config.port)
            } else {
                format!("{host}:{}", config.port)
            }
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::other)?;
    let status = match runtime.block_on(crate::ops::status::fetch(&address)) {
        Ok(status) => status,
        Err(err) => {
            eprintln!("gateway-host: {err}");
            return Err(CliError::Reported(EXIT_UNREACHABLE));
        }
    };
    let mut out = std::io::stdout().lock();
    match crate::ops::status::print(&status, &mut out) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(CliError::other(err))
        }
        _ => {}
    }
    if crate::ops::status::any_failed(&status) {
        return Err(CliError::Reported(EXIT_FAILURE));
    }
    Ok(())
}

/// `reload`: checks the configuration, then signals the daemon of its gateway.
fn reload(args: &RunArgs) -> Result<(), CliError> {
    let (raw, validated) = load_and_validate(args)?;
    for warning in &validated.warnings {
        eprintln!("gateway-host: warning: {}: {warning}", raw.origin);
    }
    #[cfg(unix)]
    {
        let pid = crate::reload::signal_reload(&validated.spec.name).map_err(CliError::Plugin)?;
        print_stdout(&format!(
            "reload requested (gateway {:?}, pid {pid}); the daemon logs the outcome",
            validated.spec.name
        ))
    }
    #[cfg(not(unix))]
    {
        Err(CliError::Other(
            "reload needs SIGHUP, which this platform does not have".into(),
        ))
    }
}

/// `log-level`: sets or prints the daemon's log configuration through its Adminer.
fn log_level(args: &LogLevelArgs) -> Result<(), CliError> {
    let addr = match (&args.adminer, &args.conf) {
        (Some(addr), _) => addr.clone(),
        (None, Some(conf)) => {
            let raw = load_raw(Some(conf))?;
            let host = raw
                .value
                .pointer("/adminer_server/host")
                .and_then(|h| h.as_str());
            let port = raw
                .value
                .pointer("/adminer_server/port")
                .and_then(|p| p.as_u64());
            match (host, port) {
                (Some(host), Some(port)) => format!("{host}:{port}"),
                _ => {
                    return Err(ConfigErrors::from(ConfigError::document(
                        &raw.origin,
                        "no adminer_server {host, port}: the daemon serves no Adminer",
                    ))
                    .into())
                }
            }
        }
        (None, None) => format!("127.0.0.1:{}", crate::adminer::DEFAULT_PORT),
    };
    let dict = match &args.filter {
        Some(filter) => Some(
            logging::directives_dict_config(filter)
                .map_err(|err| CliError::Plugin(format!("{filter:?}: {err}")))?,
        ),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::other)?;
    runtime.block_on(async {
        match dict {
            Some(dict) => {
                crate::adminer::set_log_conf(&addr, &dict)
                    .await
                    .map_err(CliError::other)?;
                print_stdout(&format!("log configuration set: {dict}"))
            }
            None => {
                let dict = crate::adminer::get_log_conf(&addr)
                    .await
                    .map_err(CliError::other)?;
                let text = serde_json::to_string_pretty(&dict).map_err(CliError::other)?;
                print_stdout(&text)
            }
        }
    })
}

/// The configuration's `log` section when it is a hat `logging.dictConfig` document.
pub(crate) fn hat_log_section(doc: &serde_json::Value) -> Option<serde_json::Value> {
    doc.get("log")
        .filter(|log| log.get("version").is_some())
        .cloned()
}

fn run_daemon(args: &RunArgs) -> Result<(), CliError> {
    let (mut raw, mut validated) = load_and_validate(args)?;
    logging::install(&validated.log).map_err(CliError::other)?;
    if let Some(dict) = hat_log_section(&raw.value) {
        // The Adminer's `get` returns the hat `log` section as it was configured.
        logging::describe_current(dict);
    }
    for warning in &validated.warnings {
        tracing::warn!(config = %raw.origin, "{warning}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::other)?;
    runtime.block_on(async {
        let shutdown = shutdown_on_signals()?;
        tracing::info!(
            config = %raw.origin,
            gateway = %validated.spec.name,
            devices = validated.spec.devices.len(),
            event_types = %validated.compat.layout_line(),
            "starting"
        );
        for line in &validated.compat.mapped {
            tracing::info!(config = %raw.origin, "hat-gateway feature mapped: {line}");
        }
        crate::ops::metrics::global().configure(&validated.spec);
        let endpoint = match &validated.metrics {
            Some(config) => match crate::ops::http::MetricsServer::bind(config).await {
                Ok(endpoint) => {
                    tracing::info!(address = %endpoint.local_addr(), "metrics endpoint listening");
                    Some(endpoint)
                }
                Err(err) => {
                    tracing::error!(error = %err, "cannot start the metrics endpoint");
                    eprintln!("gateway-host: {err}");
                    return Err(CliError::Reported(EXIT_CONFIG));
                }
            },
            None => None,
        };
        let stop_notifier = shutdown.child_token();
        let notifier = tokio::spawn(crate::ops::notify::run(stop_notifier.clone()));
        let adminer = match &validated.adminer {
            Some(config) => {
                let addr = config.addr();
                match crate::adminer::AdminerServer::listen(config).await {
                    Ok(server) => Some(server),
                    Err(err) => {
                        tracing::error!(%addr, error = %err, "adminer server cannot listen");
                        eprintln!("gateway-host: adminer_server {addr}: cannot listen: {err}");
                        return Err(CliError::Reported(EXIT_CONFIG));
                    }
                }
            }
            None => None,
        };
        let (reloader, specs) =
            crate::reload::Reloader::new(args.clone(), std::mem::take(&mut raw.value), &validated);
        // The reloader and the runner share one copy of the devices from here on; the
        // document and this one would stay for the daemon's life (issue 12: about
        // 1.7 KiB per device).
        drop(std::mem::take(&mut validated.spec.devices));
        #[cfg(unix)]
        crate::reload::reload_on_sighup(reloader)
            .map_err(|err| CliError::other(Context("SIGHUP handler", err)))?;
        #[cfg(not(unix))]
        drop(reloader);
        // Written once SIGHUP is handled: `gateway-host reload` never kills the daemon.
        let pid_file = match crate::reload::pid_file(&validated.spec.name)
            .map(crate::reload::PidFile::create)
        {
            Some(Ok(file)) => Some(file),
            Some(Err(err)) => {
                tracing::warn!(error = %err, "cannot write the pid file: `gateway-host reload` will not find this daemon (SIGHUP still reloads)");
                None
            }
            None => None,
        };
        if let Some(file) = &pid_file {
            tracing::debug!(pid_file = %file.path().display(), "pid file written");
        }
        let result = run_gateway(specs, validated.embedded, shutdown).await;
        stop_notifier.cancel();
        let _ = notifier.await;
        if let Some(endpoint) = endpoint {
            endpoint.close().await;
        }
        if let Some(adminer) = adminer {
            adminer.close().await;
        }
        drop(pid_file);
        result
    })
}

async fn run_gateway(
    specs: crate::runner::Specs,
    embedded: crate::embedded::EmbeddedConfig,
    shutdown: CancellationToken,
) -> Result<(), CliError> {
    let event_server = specs.borrow().event_server.clone();
    let result = match event_server {
        // The embedded server with the configuration's limits, token and policy.
        crate::spec::EventServerSpec::Embedded { .. } => {
            // A db_path that cannot be used (corrupt, locked, unwritable): exit 2.
            let server = match crate::embedded::EmbeddedServer::open(embedded) {
                Ok(server) => server,
                Err(err) => {
                    tracing::error!(error = %err, "cannot open the event store");
                    eprintln!("gateway-host: {err}");
                    return Err(CliError::Reported(EXIT_CONFIG));
                }
            };
            crate::runner::run_embedded_reloadable(specs, server, shutdown).await
        }
        crate::spec::EventServerSpec::Remote { .. }
        | crate::spec::EventServerSpec::Monitor { .. } => {
            crate::runner::run_reloadable(specs, shutdown).await
        }
    };
    result.map_err(CliError::other)
}

/// Exit status after a second SIGINT or SIGTERM: 128 + the signal number, as a shell
/// reports a process killed by it.
fn forced_exit_status(sigterm: bool) -> i32 {
    if sigterm {
        128 + 15
    } else {
        128 + 2
    }
}

/// A token cancelled on the first SIGINT or SIGTERM. A second one exits the process at
/// once, after logging the device calls shutdown was still waiting for. Must be
/// called inside a runtime.
fn shutdown_on_signals() -> Result<CancellationToken, CliError> {
    let token = CancellationToken::new();
    #[cfg(unix)]
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|err| CliError::other(Context("SIGTERM handler", err)))?;
    let trigger = token.clone();
    tokio::spawn(async move {
        // Whether the signal was SIGTERM (else SIGINT).
        #[cfg(unix)]
        let mut next = async || -> bool {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => false,
                _ = sigterm.recv() => true,
            }
        };
        #[cfg(not(unix))]
        let mut next = async || -> bool {
            let _ = tokio::signal::ctrl_c().await;
            false
        };
        next().await;
        tracing::info!("shutdown requested");
        trigger.cancel();
        let term = next().await;
        let abandoned = crate::engine::abandoned_calls();
        tracing::error!(
            abandoned = ?abandoned,
            "second signal: exiting at once, abandoning {} device call(s)",
            abandoned.len()
        );
        std::process::exit(forced_exit_status(term));
    });
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("gateway-host").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn daemon_arguments() {
        let cli = parse(&[
            "--conf",
            "g.yaml",
            "--plugins-dir",
            "a",
            "--plugins-dir",
            "b",
            "--allow-insecure-plugins",
        ]);
        assert!(cli.command.is_none());
        assert_eq!(cli.run.conf, Some(PathBuf::from("g.yaml")));
        assert_eq!(
            cli.run.plugins.plugins_dirs,
            [PathBuf::from("a"), PathBuf::from("b")]
        );
        assert!(cli.run.plugins.allow_insecure_plugins);
        assert_eq!(
            parse(&[]).run,
            RunArgs {
                conf: None,
                plugins: PluginArgs::default()
            }
        );
    }

    #[test]
    fn subcommand_arguments() {
        match parse(&["check", "--conf", "-"]).command {
            Some(Command::Check(args)) => assert_eq!(args.conf, Some(PathBuf::from("-"))),
            other => panic!("{other:?}"),
        }
        match parse(&["schema", "sim", "--plugins-dir", "p"]).command {
            Some(Command::Schema {
                device_type,
                plugins,
            }) => {
                assert_eq!(device_type.as_deref(), Some("sim"));
                assert_eq!(plugins.plugins_dirs, [PathBuf::from("p")]);
            }
            other => panic!("{other:?}"),
        }
        match parse(&["plugins", "info", "sim"]).command {
            Some(Command::Plugins { command, .. }) => assert_eq!(
                command,
                Some(PluginsCommand::Info {
                    plugin: "sim".into()
                })
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["events", "--server", "h:1", "watch", "a/*"]).command,
            Some(Command::Events(_))
        ));
    }

    #[test]
    fn exit_codes() {
        let config = CliError::Config(ConfigError::document("f", "x").into());
        assert_eq!(config.exit_code(), 2);
        assert_eq!(CliError::Plugin("x".into()).exit_code(), 2);
        assert_eq!(CliError::Other("x".into()).exit_code(), 1);
    }

    #[test]
    fn other_errors_show_their_chain_of_causes() {
        let err = CliError::other(Context("SIGTERM handler", std::io::Error::other("denied")));
        assert_eq!(err.to_string(), "SIGTERM handler: denied");
        assert_eq!(err.exit_code(), 1);
    }
}
