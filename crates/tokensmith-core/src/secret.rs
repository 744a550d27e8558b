//! [`ConfigSecret`]: a secret config field given as a literal, `{ env = "VAR" }`
//! or `{ file = "PATH" }`, resolved when the config is loaded.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::{self, Deserializer};

/// A secret read from config.
///
/// Accepts a literal string, `{ env = "VAR" }` (the variable is read when the
/// config is loaded; a missing variable is an error naming it) or
/// `{ file = "PATH" }` (the file's contents, one trailing newline trimmed).
/// A secret file must be a regular file (or a link to one) of at most
/// 64 KiB: a FIFO or a device is refused without being
/// opened for a blocking read. One readable by group or others loads, with a
/// warning naming the path (and, through the config loader, the field).
/// An empty value, or a number or boolean where the string belongs, is an
/// error that never quotes what was given. `Debug` never shows the value,
/// only where it came from.
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

    /// Reads `{ file = path }` now, trimming one trailing newline: a
    /// regular file of at most 64 KiB.
    pub fn from_file(path: impl Into<PathBuf>) -> Result<Self, String> {
        let path = path.into();
        let cannot =
            |e: &dyn fmt::Display| format!("cannot read secret file {}: {e}", path.display());
        let (bytes, loose) =
            read_small_file(&path, MAX_SECRET_FILE_BYTES).map_err(|e| cannot(&e))?;
        let mut text = String::from_utf8(bytes).map_err(|_| cannot(&"not valid UTF-8"))?;
        if loose {
            loose_file_read(&path);
        }
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

    /// Whether the value is empty (a config refuses that: it can never
    /// authenticate).
    pub fn is_empty(&self) -> bool {
        self.value.expose_secret().is_empty()
    }

    /// The secret as a [`SecretString`].
    pub fn as_secret(&self) -> &SecretString {
        &self.value
    }
}

/// The largest secret file read: 64 KiB (a PEM private key is a few KiB).
pub(crate) const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Reads a small file named by config (a secret, a CA bundle): a regular file
/// (or a link to one) of at most `limit` bytes. Anything else, a FIFO, a
/// socket or a device, is refused: on Unix the file is opened with
/// `O_NONBLOCK` and its type checked on the opened handle, so a FIFO put in
/// its place cannot block the load either. Also returns whether group or
/// others may read it (Unix).
pub(crate) fn read_small_file(path: &Path, limit: u64) -> io::Result<(Vec<u8>, bool)> {
    let not_regular =
        || io::Error::other("not a regular file (a FIFO, socket or device is never read)");
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        return Err(io::Error::other("is a directory"));
    }
    if !meta.is_file() {
        return Err(not_regular());
    }
    let file = open_nonblocking(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    let too_large = || io::Error::other(format!("larger than {}", show_size(limit)));
    if meta.len() > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    // One byte over the limit tells a file that grew since `fstat`.
    (&file).take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    #[cfg(unix)]
    let loose = {
        use std::os::unix::fs::PermissionsExt as _;
        meta.permissions().mode() & 0o044 != 0
    };
    #[cfg(not(unix))]
    let loose = false;
    Ok((bytes, loose))
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    Ok(rustix::fs::open(path, flags, Mode::empty())?.into())
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// `bytes` as KiB or MiB when it is a whole number of them.
fn show_size(bytes: u64) -> String {
    match bytes {
        b if b % (1024 * 1024) == 0 => format!("{} MiB", b / (1024 * 1024)),
        b if b % 1024 == 0 => format!("{} KiB", b / 1024),
        b => format!("{b} bytes"),
    }
}

thread_local! {
    /// The secret files readable by group or others read by the
    /// [`collect_loose_files`] running on this thread, if one is.
    static LOOSE_FILES: RefCell<Option<Vec<PathBuf>>> = const { RefCell::new(None) };
}

/// Notes a secret file group or others may read: for the config loader
/// when it runs (it names the field), else warned about here.
fn loose_file_read(path: &Path) {
    let collected = LOOSE_FILES.with_borrow_mut(|files| match files {
        Some(files) => {
            files.push(path.to_path_buf());
            true
        }
        None => false,
    });
    if !collected {
        warn_loose_file(None, None, path);
    }
}

/// Runs `f` (a deserialization on this thread) and returns, with its
/// result, the secret files it read that group or others may read.
pub(crate) fn collect_loose_files<R>(f: impl FnOnce() -> R) -> (R, Vec<PathBuf>) {
    let outer = LOOSE_FILES.replace(Some(Vec::new()));
    let result = f();
    let files = LOOSE_FILES.replace(outer).unwrap_or_default();
    (result, files)
}

/// The warning for a secret file group or others may read (the path and
/// field, never the content).
pub(crate) fn warn_loose_file(provider: Option<&str>, field: Option<&str>, path: &Path) {
    tracing::warn!(
        provider = provider.unwrap_or("-"),
        field = field.unwrap_or("-"),
        path = %path.display(),
        "secret file is readable by group or others; restrict it (chmod 600)"
    );
}

/// The dotted paths of the `{ file = "PATH" }` tables in `table` that name
/// `path` (where a secret file was configured).
pub(crate) fn fields_naming_file(table: &toml::Table, path: &Path) -> Vec<String> {
    fn walk(table: &toml::Table, prefix: &str, path: &Path, out: &mut Vec<String>) {
        for (key, value) in table {
            let field = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
            if let toml::Value::Table(inner) = value {
                if inner.len() == 1
                    && inner.get("file").and_then(toml::Value::as_str).map(Path::new) == Some(path)
                {
                    out.push(field);
                } else {
                    walk(inner, &field, path, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(table, "", path, &mut out);
    out
}

impl From<SecretString> for ConfigSecret {
    /// A secret obtained in code (from a vault, say), shown as `literal`.
    fn from(value: SecretString) -> Self {
        Self { value, source: SecretSource::Literal }
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

/// Deserializes a literal string or an `{ env }` / `{ file }` table. A
/// visitor (not an untagged enum) so serde's own errors, such as "missing
/// field `password`", reach the user unchanged.
struct SecretVisitor;

pub(crate) const EXPECTED: &str = "a secret: a string, { env = \"VAR\" } or { file = \"PATH\" }";

impl<'de> de::Visitor<'de> for SecretVisitor {
    type Value = ConfigSecret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<ConfigSecret, E> {
        if value.is_empty() {
            return Err(de::Error::custom("the secret is empty"));
        }
        Ok(ConfigSecret::literal(value))
    }

    // serde's own "invalid type" errors quote a number or a boolean, which
    // here may be the secret itself (`password = 1234`): say what was given,
    // never its value.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<ConfigSecret, E> {
        Err(not_a_string("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<ConfigSecret, E> {
        Err(not_a_string("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<ConfigSecret, E> {
        Err(not_a_string("a number"))
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<ConfigSecret, E> {
        Err(not_a_string("a number"))
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<ConfigSecret, E> {
        Err(not_a_string("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<ConfigSecret, E> {
        Err(not_a_string("a number"))
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<ConfigSecret, E> {
        Err(not_a_string("bytes"))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<ConfigSecret, A::Error> {
        let mut env = None;
        let mut file = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "env" if env.is_none() => env = Some(map.next_value::<String>()?),
                "file" if file.is_none() => file = Some(map.next_value::<PathBuf>()?),
                "env" | "file" => return Err(de::Error::custom(format!("duplicate key `{key}`"))),
                _ => {
                    return Err(de::Error::custom(format!(
                        "unknown key `{key}` in a secret reference; expected `env` or `file`"
                    )));
                }
            }
        }
        let secret = match (env, file) {
            (Some(var), None) => ConfigSecret::from_env(&var).map_err(de::Error::custom)?,
            (None, Some(path)) => ConfigSecret::from_file(path).map_err(de::Error::custom)?,
            _ => {
                return Err(de::Error::custom(
                    "a secret reference takes exactly one of `env` or `file`",
                ));
            }
        };
        // An empty secret loads but can never authenticate: say so now.
        match secret.source() {
            _ if !secret.value.expose_secret().is_empty() => Ok(secret),
            SecretSource::Env(var) => {
                Err(de::Error::custom(format!("environment variable {var} is empty")))
            }
            SecretSource::File(path) => {
                Err(de::Error::custom(format!("secret file {} is empty", path.display())))
            }
            SecretSource::Literal => Err(de::Error::custom("the secret is empty")),
        }
    }
}

/// The error for a secret given as something other than a string or a
/// reference, naming only what was given.
fn not_a_string<E: de::Error>(given: &str) -> E {
    de::Error::custom(format!("expected {EXPECTED}, found {given} (quote it as a string)"))
}

impl<'de> Deserialize<'de> for ConfigSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Creds {
        secret: ConfigSecret,
    }

    #[track_caller]
    fn check_error(toml_text: &str, expected: &str) {
        let err = toml::from_str::<Creds>(toml_text).err().expect("an error");
        assert!(err.message().contains(expected), "{}", err.message());
    }

    #[test]
    fn serde_errors_reach_the_user_unchanged() {
        check_error("", "missing field `secret`");
        check_error("secret = 5", "expected a secret: a string, { env");
        check_error("secret = { env = \"A\", file = \"b\" }", "exactly one of `env` or `file`");
        check_error("secret = { envv = \"A\" }", "unknown key `envv`");
        check_error(
            "secret = { env = \"TOKENSMITH_SURELY_UNSET_VAR\" }",
            "TOKENSMITH_SURELY_UNSET_VAR",
        );
    }

    #[test]
    fn a_secret_given_as_a_number_is_refused_without_quoting_it() {
        for (text, given) in [
            ("secret = 424242", "a number"),
            ("secret = 4242.42", "a number"),
            ("secret = -424242", "a number"),
            ("secret = true", "a boolean"),
        ] {
            let err = toml::from_str::<Creds>(text).err().expect("an error");
            let message = err.message();
            assert!(message.contains(given) && message.contains("quote it"), "{message}");
            assert!(!message.contains("4242") && !message.contains("true"), "{message}");
        }
    }

    #[test]
    fn empty_secrets_are_refused_naming_their_source() {
        let dir = tempfile::tempdir().unwrap();
        let (empty, newline, crlf) =
            (dir.path().join("empty"), dir.path().join("newline"), dir.path().join("crlf"));
        std::fs::write(&empty, "").unwrap();
        std::fs::write(&newline, "\n").unwrap();
        std::fs::write(&crlf, "\r\n").unwrap();
        check_error("secret = \"\"", "the secret is empty");
        for path in [&empty, &newline, &crlf] {
            let text = format!("secret = {{ file = {path:?} }}");
            check_error(&text, &format!("secret file {} is empty", path.display()));
        }
    }

    #[test]
    fn a_directory_or_missing_file_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("secret = {{ file = {:?} }}", dir.path());
        check_error(&text, &format!("cannot read secret file {}", dir.path().display()));
        let missing = dir.path().join("missing");
        let text = format!("secret = {{ file = {missing:?} }}");
        check_error(&text, &format!("cannot read secret file {}", missing.display()));
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_or_a_device_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from_raw_mode(0o600))
            .unwrap();
        // Nobody writes to the FIFO: opening it for reading would wait forever.
        for path in [fifo.as_path(), Path::new("/dev/zero"), Path::new("/dev/null")] {
            let text = format!("secret = {{ file = {path:?} }}");
            check_error(&text, &format!("cannot read secret file {}", path.display()));
            check_error(&text, "not a regular file");
        }
    }

    #[test]
    fn a_secret_file_over_the_cap_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![b'x'; 64 * 1024 + 1]).unwrap();
        let text = format!("secret = {{ file = {path:?} }}");
        check_error(&text, "larger than 64 KiB");
        std::fs::write(&path, vec![b'x'; 64 * 1024]).unwrap();
        let creds: Creds = toml::from_str(&text).unwrap();
        assert_eq!(creds.secret.expose_secret().len(), 64 * 1024);
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_file_others_can_read_is_warned_about_by_path_and_field() {
        #[derive(Deserialize)]
        #[allow(dead_code, reason = "only loaded")]
        struct Config {
            client_secret: ConfigSecret,
            nested: Nested,
        }
        #[derive(Deserialize)]
        #[allow(dead_code, reason = "only loaded")]
        struct Nested {
            password: ConfigSecret,
        }
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let (loose, tight) = (dir.path().join("loose"), dir.path().join("tight"));
        for (path, mode) in [(&loose, 0o644), (&tight, 0o600)] {
            std::fs::write(path, "hunter2-SECRET").unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let table: toml::Table = toml::from_str(&format!(
            "client_secret = {{ file = {tight:?} }}\n[nested]\npassword = {{ file = {loose:?} }}"
        ))
        .unwrap();
        let logs = crate::test_log::capture(|| {
            crate::config::from_table::<Config>("p", table).unwrap();
        });
        let warnings: Vec<&str> = logs.lines().filter(|l| l.contains("WARN")).collect();
        assert_eq!(warnings.len(), 1, "{logs}");
        assert!(warnings[0].contains(&loose.display().to_string()), "{logs}");
        assert!(warnings[0].contains("nested.password"), "{logs}");
        assert!(warnings[0].contains("provider=\"p\""), "{logs}");
        assert!(!logs.contains("hunter2"), "{logs}");
    }

    #[test]
    fn file_secrets_lose_a_trailing_crlf() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "hunter2\r\n").unwrap();
        let creds: Creds = toml::from_str(&format!("secret = {{ file = {path:?} }}")).unwrap();
        assert_eq!(creds.secret.expose_secret(), "hunter2");
    }

    #[test]
    fn file_secrets_lose_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "hunter2\n\n").unwrap();
        let creds: Creds = toml::from_str(&format!("secret = {{ file = {path:?} }}")).unwrap();
        assert_eq!(creds.secret.expose_secret(), "hunter2\n");
        assert_eq!(creds.secret.source(), &SecretSource::File(path));
    }
}
