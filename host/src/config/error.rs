//! Configuration errors: each names the file, the JSON pointer of the bad value and the
//! reason, and a whole configuration's errors are reported together.

use std::fmt;

/// Where in a configuration document an error is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorLocation {
    /// The whole document (reading or parsing failed before any value existed).
    Document,
    /// Line and column (1-based) of a syntax error.
    Text {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// A JSON pointer (RFC 6901) into the parsed document; `""` is the root.
    Pointer(String),
}

impl fmt::Display for ErrorLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Document => Ok(()),
            Self::Text { line, column } => write!(f, "line {line} column {column}"),
            // The root pointer is the empty string; print it as "/" so the field is visible.
            Self::Pointer(pointer) if pointer.is_empty() => f.write_str("/"),
            Self::Pointer(pointer) => f.write_str(pointer),
        }
    }
}

/// One problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The configuration's origin as the operator named it (a path, or `<stdin>`).
    pub file: String,
    /// Where in the document.
    pub location: ErrorLocation,
    /// What is wrong.
    pub reason: String,
}

impl ConfigError {
    /// An error at a JSON pointer.
    pub fn at(file: &str, pointer: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            location: ErrorLocation::Pointer(pointer.into()),
            reason: reason.into(),
        }
    }

    /// An error about the whole document.
    pub fn document(file: &str, reason: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            location: ErrorLocation::Document,
            reason: reason.into(),
        }
    }

    /// The JSON pointer, when the error has one.
    pub fn pointer(&self) -> Option<&str> {
        match &self.location {
            ErrorLocation::Pointer(pointer) => Some(pointer),
            _ => None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            ErrorLocation::Document => write!(f, "{}: {}", self.file, self.reason),
            _ => write!(f, "{}: {}: {}", self.file, self.location, self.reason),
        }
    }
}

/// Every error found in one configuration (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// A single error.
    pub fn one(error: ConfigError) -> Self {
        Self(vec![error])
    }

    /// The errors, in the order they were found.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }
}

impl std::error::Error for ConfigError {}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        Self::one(error)
    }
}

impl fmt::Display for ConfigErrors {
    /// One error per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// Escapes one JSON pointer reference token (RFC 6901: `~` -> `~0`, `/` -> `~1`).
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_pointer_and_reason() {
        let error = ConfigError::at("gateway.yaml", "/devices/0/connection", "missing");
        assert_eq!(
            error.to_string(),
            "gateway.yaml: /devices/0/connection: missing"
        );
        assert_eq!(
            ConfigError::at("g.json", "", "not an object").to_string(),
            "g.json: /: not an object"
        );
        let text = ConfigError {
            file: "g.yaml".into(),
            location: ErrorLocation::Text { line: 3, column: 7 },
            reason: "bad".into(),
        };
        assert_eq!(text.to_string(), "g.yaml: line 3 column 7: bad");
        assert_eq!(
            ConfigError::document("<stdin>", "empty").to_string(),
            "<stdin>: empty"
        );
    }

    #[test]
    fn errors_are_listed_one_per_line() {
        let errors = ConfigErrors(vec![
            ConfigError::at("a", "/x", "one"),
            ConfigError::at("a", "/y", "two"),
        ]);
        assert_eq!(errors.to_string(), "a: /x: one\na: /y: two");
    }

    #[test]
    fn tokens_are_escaped() {
        assert_eq!(escape_token("a/b~c"), "a~1b~0c");
    }
}
