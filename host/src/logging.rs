//! Logging of the host: the configuration's `log` section (`level`, `format`, `filter`)
//! turned into a `tracing-subscriber` filter and formatter. `RUST_LOG` overrides.
//!
//! Only the binary calls [`install`]; the library never installs a subscriber.

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

/// Installs the global subscriber (log lines go to standard error).
pub fn install(config: &LogConfig) -> Result<(), LoggingError> {
    let rust_log = std::env::var(RUST_LOG).ok();
    let (filter, warning) = effective_filter(config, rust_log.as_deref())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only for a terminal: journald and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let result = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|err| LoggingError::Install(err.to_string()))?;
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
