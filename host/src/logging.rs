//! Logging of the host: the configuration's `log` section (`level`, `format`, `filter`)
//! turned into a `tracing-subscriber` filter and formatter. `RUST_LOG` overrides.
//!
//! Only the binary calls [`install`]; the library never installs a subscriber.
//!
//! The installed filter can be replaced at run time ([`set_directives`], used by a
//! reload and by the Adminer server's `set`); [`directives_dict_config`] writes
//! directives as a Python `logging.dictConfig` document (the other way is the
//! configuration's mapping of hat's `log` section, `config::hat`).

use std::sync::{Mutex, OnceLock, PoisonError};

use serde_json::{json, Map, Value};
use tracing_subscriber::EnvFilter;

/// Environment variable that overrides the configured level and filter.
pub const RUST_LOG: &str = "RUST_LOG";

/// Output format of log lines (on standard error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The `log` section, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Default level directive (`trace` .. `error`, `off`).
    pub level: String,
    /// Output format.
    pub format: LogFormat,
    /// Extra directives in `EnvFilter` syntax, applied after the level.
    pub filter: Option<String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::Text,
            filter: None,
        }
    }
}

/// Why the logging configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoggingError {
    /// The level or filter is not valid `EnvFilter` syntax.
    #[error("invalid log filter {directives:?}: {reason}")]
    InvalidFilter {
        /// The directives as given.
        directives: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A global subscriber is already installed.
    #[error("cannot install the log subscriber: {0}")]
    Install(String),
}

impl LogConfig {
    /// The `EnvFilter` directives this configuration stands for: the level, then the filter.
    pub fn directives(&self) -> String {
        match self.filter.as_deref().map(str::trim) {
            Some(filter) if !filter.is_empty() => format!("{},{filter}", self.level),
            _ => self.level.clone(),
        }
    }

    /// The configured filter (ignoring `RUST_LOG`), checked for syntax.
    pub fn env_filter(&self) -> Result<EnvFilter, LoggingError> {
        parse_filter(&self.directives())
    }
}

fn parse_filter(directives: &str) -> Result<EnvFilter, LoggingError> {
    EnvFilter::builder()
        .parse(directives)
        .map_err(|err| LoggingError::InvalidFilter {
            directives: directives.to_owned(),
            reason: err.to_string(),
        })
}

/// The filter to use: `RUST_LOG` when it is set, non-empty and valid, else the
/// configuration's. The second value is a warning to log once logging works.
pub fn effective_filter(
    config: &LogConfig,
    rust_log: Option<&str>,
) -> Result<(EnvFilter, Option<String>), LoggingError> {
    match rust_log.map(str::trim) {
        Some(text) if !text.is_empty() => match parse_filter(text) {
            Ok(filter) => Ok((filter, None)),
            Err(err) => Ok((
                config.env_filter()?,
                Some(format!("{RUST_LOG} ignored: {err}")),
            )),
        },
        _ => Ok((config.env_filter()?, None)),
    }
}

/// Replaces the installed subscriber's filter.
type SetFilter = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

/// The installed subscriber's filter switch (set once by [`install`]).
static FILTER: OnceLock<SetFilter> = OnceLock::new();

/// The filter in force as directives and as the dictConfig document `get` returns.
static CURRENT: Mutex<Option<(String, Value)>> = Mutex::new(None);

/// Installs the global subscriber (log lines go to standard error). Its filter can
/// be replaced later with [`set_directives`].
pub fn install(config: &LogConfig) -> Result<(), LoggingError> {
    let rust_log = std::env::var(RUST_LOG).ok();
    let (filter, warning) = effective_filter(config, rust_log.as_deref())?;
    let directives = filter.to_string();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only for a terminal: journald and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let install =
        |err: Box<dyn std::error::Error + Send + Sync>| LoggingError::Install(err.to_string());
    let set: SetFilter = match config.format {
        LogFormat::Text => {
            let builder = builder.with_filter_reloading();
            let handle = builder.reload_handle();
            builder.try_init().map_err(install)?;
            Box::new(move |filter| handle.reload(filter).map_err(|err| err.to_string()))
        }
        LogFormat::Json => {
            let builder = builder.json().with_filter_reloading();
            let handle = builder.reload_handle();
            builder.try_init().map_err(install)?;
            Box::new(move |filter| handle.reload(filter).map_err(|err| err.to_string()))
        }
    };
    // `try_init` succeeded, so this is the first install: FILTER is empty.
    let _ = FILTER.set(set);
    remember(&directives, None);
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
    Ok(())
}

fn remember(directives: &str, dict: Option<Value>) {
    let dict = dict
        .or_else(|| directives_dict_config(directives).ok())
        .unwrap_or_else(|| json!({"version": 1}));
    *CURRENT.lock().unwrap_or_else(PoisonError::into_inner) = Some((directives.to_owned(), dict));
}

/// Replaces the installed filter with `directives` (`EnvFilter` syntax); `dict` is the
/// dictConfig document it came from, returned by [`current_dict_config`] (without
/// one, a document is made from the directives). An error leaves the filter as it
/// was: invalid directives, or no subscriber installed by [`install`].
pub fn set_directives(directives: &str, dict: Option<Value>) -> Result<(), LoggingError> {
    let filter = parse_filter(directives)?;
    let set = FILTER.get().ok_or_else(|| {
        LoggingError::Install("no log subscriber with a reloadable filter is installed".into())
    })?;
    set(filter).map_err(LoggingError::Install)?;
    remember(directives, dict);
    Ok(())
}

/// Makes `dict` the document [`current_dict_config`] returns for the filter in force
/// (the configuration's hat `log` section it was mapped from).
pub fn describe_current(dict: Value) {
    let mut current = CURRENT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, reported)) = current.as_mut() {
        *reported = dict;
    }
}

/// The filter directives in force (`None` before [`install`]).
pub fn current_directives() -> Option<String> {
    CURRENT
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map(|(directives, _)| directives.clone())
}

/// The log configuration in force as a dictConfig document: the one last set through
/// [`set_directives`], else one made from the directives (`{"version": 1}` before
/// [`install`]).
pub fn current_dict_config() -> Value {
    CURRENT
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map_or_else(|| json!({"version": 1}), |(_, dict)| dict.clone())
}

/// Why a dictConfig document or a directive cannot be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MappingError(pub String);

/// The Python level of a tracing level directive (`trace` is 5: Python accepts
/// numbers). `off` has none.
fn level_python(level: &str) -> Result<Value, MappingError> {
    Ok(match level.to_ascii_lowercase().as_str() {
        "error" => json!("ERROR"),
        "warn" | "warning" => json!("WARNING"),
        "info" => json!("INFO"),
        "debug" => json!("DEBUG"),
        "trace" => json!(5),
        "off" => {
            return Err(MappingError(
                "off has no Python logging level; use error".into(),
            ))
        }
        _ => return Err(MappingError(format!("unknown level {level:?}"))),
    })
}

/// Filter directives made only of `LEVEL` and `TARGET=LEVEL` (the first `LEVEL` is the
/// root's, `info` without one) as a dictConfig document: the root's level, and a
/// logger named by each target as it is (`gateway_host::engine`), which the
/// configuration's mapping of hat's `log` section reads back as that target. Other
/// directive forms (spans, fields) have no dictConfig form and are an error.
pub fn directives_dict_config(directives: &str) -> Result<Value, MappingError> {
    let mut root = None;
    let mut loggers = Map::new();
    for directive in directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        match directive.split_once('=') {
            None => {
                let level = level_python(directive)?;
                root.get_or_insert(level);
            }
            Some((target, level)) if !target.is_empty() && !target.contains(['[', '{', ' ']) => {
                loggers.insert(target.to_owned(), json!({"level": level_python(level)?}));
            }
            Some(_) => {
                return Err(MappingError(format!(
                    "directive {directive:?}: only LEVEL and TARGET=LEVEL can be expressed as a \
                     logging configuration"
                )))
            }
        }
    }
    let mut dict = Map::new();
    dict.insert("version".into(), json!(1));
    dict.insert("disable_existing_loggers".into(), json!(false));
    dict.insert(
        "root".into(),
        json!({"level": root.unwrap_or_else(|| json!("INFO"))}),
    );
    if !loggers.is_empty() {
        dict.insert("loggers".into(), Value::Object(loggers));
    }
    Ok(Value::Object(dict))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_round_trip_through_a_dict_config() {
        for directives in [
            "debug",
            "info,gateway_host::engine=trace",
            "warn,modbus_master=error",
        ] {
            let dict = directives_dict_config(directives).unwrap();
            let (back, warnings) = crate::config::hat_log_directives(&dict).unwrap();
            assert_eq!(back, directives, "{dict}");
            assert!(warnings.is_empty(), "{warnings:?}");
        }
        assert!(directives_dict_config("off").is_err());
        assert_eq!(
            directives_dict_config("gateway_host=debug").unwrap()["root"]["level"],
            "INFO"
        );
        let err = directives_dict_config("info,[span]=debug").unwrap_err();
        assert!(err.0.contains("[span]"), "{err}");
        assert!(directives_dict_config("loud").is_err());
    }

    #[test]
    fn level_then_filter() {
        let config = LogConfig {
            level: "warn".into(),
            format: LogFormat::Json,
            filter: Some("gateway_host::engine=debug".into()),
        };
        assert_eq!(config.directives(), "warn,gateway_host::engine=debug");
        assert!(config.env_filter().is_ok());
        assert_eq!(LogConfig::default().directives(), "info");
    }

    #[test]
    fn invalid_filter_is_an_error() {
        let config = LogConfig {
            filter: Some("gateway_host=loud".into()),
            ..LogConfig::default()
        };
        let err = config.env_filter().unwrap_err();
        assert!(err.to_string().contains("gateway_host=loud"), "{err}");
    }

    #[test]
    fn rust_log_overrides_when_valid() {
        let config = LogConfig::default();
        let (filter, warning) = effective_filter(&config, Some("debug")).unwrap();
        assert_eq!(filter.to_string(), "debug");
        assert!(warning.is_none());
        let (filter, warning) = effective_filter(&config, Some("x=loud")).unwrap();
        assert_eq!(filter.to_string(), "info");
        assert!(warning.unwrap().contains("RUST_LOG ignored"));
        let (filter, _) = effective_filter(&config, Some("  ")).unwrap();
        assert_eq!(filter.to_string(), "info");
    }
}
