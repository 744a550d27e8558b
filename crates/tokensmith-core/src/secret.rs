//! [`ConfigSecret`]: a secret config field given as a literal, `{ env = "VAR" }`
//! or `{ file = "PATH" }`, resolved when the config is loaded.

use std::fmt;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::{self, Deserializer};

/// A secret read from config.
///
/// Accepts a literal string, `{ env = "VAR" }` (the variable is read when the
/// config is loaded; a missing variable is an error naming it) or
/// `{ file = "PATH" }` (the file's contents, one trailing newline trimmed).
/// `Debug` never shows the value, only where it came from.
///
/// ```
/// use secrecy::ExposeSecret;
/// use tokensmith_core::ConfigSecret;
///
/// #[derive(serde::Deserialize)]
/// struct Creds { secret: ConfigSecret }
///
/// let creds: Creds = toml::from_str(r#"secret = "hunter2""#).unwrap();
/// assert_eq!(creds.secret.expose_secret(), "hunter2");
/// assert_eq!(format!("{:?}", creds.secret), "ConfigSecret(literal)");
/// ```
#[derive(Clone)]
pub struct ConfigSecret {
    value: SecretString,
    source: SecretSource,
}

/// Where a [`ConfigSecret`] came from (shown by `Debug` instead of the value).
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum SecretSource {
    /// Written in the config file.
    Literal,
    /// Read from this environment variable.
    Env(String),
    /// Read from this file.
    File(PathBuf),
}

impl ConfigSecret {
    /// A secret given directly (for building configs in code and tests).
    pub fn literal(value: impl Into<String>) -> Self {
        Self { value: SecretString::from(value.into()), source: SecretSource::Literal }
    }

    /// Reads `{ env = var }` now.
    pub fn from_env(var: &str) -> Result<Self, String> {
        match std::env::var(var) {
            Ok(v) => Ok(Self { value: v.into(), source: SecretSource::Env(var.to_owned()) }),
            Err(std::env::VarError::NotPresent) => {
                Err(format!("environment variable {var} is not set"))
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(format!("environment variable {var} is not valid UTF-8"))
            }
        }
    }

    /// Reads `{ file = path }` now, trimming one trailing newline.
    pub fn from_file(path: impl Into<PathBuf>) -> Result<Self, String> {
        let path = path.into();
        let mut text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        Ok(Self { value: text.into(), source: SecretSource::File(path) })
    }

    /// Where the value came from.
    pub fn source(&self) -> &SecretSource {
        &self.source
    }

    /// The secret as a [`SecretString`].
    pub fn as_secret(&self) -> &SecretString {
        &self.value
    }
}

impl ExposeSecret<str> for ConfigSecret {
    fn expose_secret(&self) -> &str {
        self.value.expose_secret()
    }
}

impl fmt::Debug for ConfigSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            SecretSource::Literal => f.write_str("ConfigSecret(literal)"),
            SecretSource::Env(v) => write!(f, "ConfigSecret(env {v})"),
            SecretSource::File(p) => write!(f, "ConfigSecret(file {})", p.display()),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Literal(String),
    Ref(Ref),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ref {
    env: Option<String>,
    file: Option<PathBuf>,
}

impl<'de> Deserialize<'de> for ConfigSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Raw::deserialize(deserializer).map_err(|_| {
            de::Error::custom(
                "expected a secret: a string, { env = \"VAR\" } or { file = \"PATH\" }",
            )
        })?;
        match raw {
            Raw::Literal(s) => Ok(Self::literal(s)),
            Raw::Ref(Ref { env: Some(var), file: None }) => {
                Self::from_env(&var).map_err(de::Error::custom)
            }
            Raw::Ref(Ref { env: None, file: Some(path) }) => {
                Self::from_file(path).map_err(de::Error::custom)
            }
            Raw::Ref(_) => {
                Err(de::Error::custom("a secret reference takes exactly one of `env` or `file`"))
            }
        }
    }
}
