//! The test harness: a temporary home for one test (config, cache
//! directory, a runtime serving the emulators) and a runner for the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tokensmith_testkit::{CustomEmulator, Emulator, Vendor};

/// An environment variable no test sets, for the "missing env var" case.
pub(crate) const UNSET_VAR: &str = "TOKENSMITH_IT_SURELY_UNSET";

/// One test's world: a temporary directory holding the config file, the
/// cache home and the working directory, and a runtime whose worker thread
/// serves the emulators while the test waits for the binary.
pub(crate) struct TestEnv {
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

impl TestEnv {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        Self { dir, rt }
    }

    /// Starts an emulator of `vendor` on 127.0.0.1 (stops when dropped).
    pub(crate) fn emulator(&self, vendor: Vendor) -> Emulator {
        self.rt.block_on(Emulator::start(vendor)).unwrap()
    }

    /// Starts the emulator of the vendor `description` describes (stops
    /// when dropped).
    pub(crate) fn custom_emulator(&self, description: &str) -> CustomEmulator {
        self.rt.block_on(CustomEmulator::start(description)).unwrap()
    }

    /// The runtime serving the emulators (for servers of a test's own).
    pub(crate) fn rt(&self) -> &tokio::runtime::Runtime {
        &self.rt
    }

    /// The working directory of the binary.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The config file `run` passes with `--config`.
    pub(crate) fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    /// Writes the config file.
    pub(crate) fn write_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).unwrap();
    }

    /// The per-user token cache directory of this test.
    pub(crate) fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache").join("tokensmith")
    }

    /// The cached token files.
    pub(crate) fn cache_files(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.cache_dir()) else { return Vec::new() };
        let mut files: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files
    }

    /// The binary, in the test's directory, with its own cache home and no
    /// `TOKENSMITH_CONFIG`.
    pub(crate) fn command(&self) -> Command {
        self.command_for(env!("CARGO_BIN_EXE_tokensmith"))
    }

    /// `program` (the binary, or a wrapper that execs it) in the
    /// environment of [`TestEnv::command`].
    pub(crate) fn command_for(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(self.dir.path())
            .env("XDG_CACHE_HOME", self.dir.path().join("cache"))
            .env("HOME", self.dir.path().join("home"))
            .env_remove("TOKENSMITH_CONFIG")
            .env_remove(UNSET_VAR)
            .env_remove("RUST_LOG");
        cmd
    }

    /// Runs `tokensmith --config <config> ARGS…`.
    pub(crate) fn run(&self, args: &[&str]) -> Run {
        let mut cmd = self.command();
        cmd.arg("--config").arg(self.config_path()).args(args);
        Run::from(cmd.output().unwrap())
    }

    /// Runs `tokensmith ARGS…` (no `--config`).
    pub(crate) fn run_bare(&self, args: &[&str]) -> Run {
        Run::from(self.command().args(args).output().unwrap())
    }
}

/// What one run of the binary did.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }
}

impl Run {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub(crate) fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        &self.stdout
    }

    /// Asserts exit code `code`, nothing on stdout and one line on stderr;
    /// returns that line.
    #[track_caller]
    pub(crate) fn fails(&self, code: i32) -> &str {
        assert_eq!(self.code, code, "expected exit {code}: {self:#?}");
        assert_eq!(self.stdout, "", "nothing on stdout on failure: {self:#?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {self:#?}");
        lines[0]
    }
}

/// A `[providers.NAME]` table for `emulator`, with the test credentials.
pub(crate) fn provider(emulator: &Emulator, name: &str) -> String {
    emulator.config_snippet(name)
}

/// The emulator's table with the client secret replaced by a wrong one.
pub(crate) fn with_wrong_secret(emulator: &Emulator, name: &str) -> String {
    let secret = emulator.credentials().client_secret().unwrap();
    provider(emulator, name).replace(&toml_str(secret), &toml_str(WRONG_SECRET))
}

/// A client secret no emulator accepts (and that must never be printed).
pub(crate) const WRONG_SECRET: &str = "wrong-secret-Zq9xK2";

/// A TOML (and JSON) string literal.
pub(crate) fn toml_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}
