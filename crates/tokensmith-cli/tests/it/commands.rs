//! `--help`, `--version`, usage errors, config file resolution, `check`,
//! `list` and `mock-server`.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use tokensmith_testkit::Vendor;

use crate::support::{TestEnv, provider};

const COMMANDS: &[&str] = &["token", "header", "check", "list", "cache", "demo", "mock-server"];

#[test]
fn help_lists_every_command_with_examples() {
    let env = TestEnv::new();
    let help = env.run_bare(&["--help"]).ok().to_owned();
    for command in COMMANDS {
        assert!(help.contains(command), "--help lacks {command}: {help}");
    }
    assert!(help.contains("Examples:") && help.contains("Exit codes"), "{help}");
    for command in COMMANDS {
        let help = env.run_bare(&[command, "--help"]).ok().to_owned();
        assert!(help.contains("Examples:"), "{command} --help has no examples: {help}");
    }
}

#[test]
fn version_prints_the_version() {
    let env = TestEnv::new();
    let out = env.run_bare(&["--version"]).ok().to_owned();
    assert_eq!(out, format!("tokensmith {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn bad_usage_exits_2() {
    let env = TestEnv::new();
    for args in [
        &[][..],
        &["frobnicate"],
        &["token"],
        &["header", "a", "b"],
        &["cache"],
        &["cache", "flush"],
        &["mock-server"],
        &["mock-server", "--vendor", "okta"],
        &["mock-server", "--vendor", "deyel", "--port", "http"],
    ] {
        let run = env.run_bare(args);
        assert_eq!(run.code, 2, "{args:?}: {run:#?}");
        assert!(run.stdout.is_empty(), "{args:?}: {run:#?}");
        assert!(!run.stderr.is_empty(), "{args:?}: {run:#?}");
    }
}

#[test]
fn check_and_list_show_every_provider_without_network() {
    let env = TestEnv::new();
    let emulators: Vec<_> = Vendor::ALL.iter().map(|v| env.emulator(*v)).collect();
    let config: Vec<String> = emulators.iter().map(|e| provider(e, e.vendor().kind())).collect();
    env.write_config(&config.join("\n"));
    let check = env.run(&["check"]).ok().to_owned();
    let list = env.run(&["list"]).ok().to_owned();
    let mut kinds: Vec<&str> = Vendor::ALL.iter().map(|v| v.kind()).collect();
    kinds.sort_unstable();
    let check_lines: Vec<Vec<&str>> =
        check.lines().map(|l| l.split_whitespace().collect()).collect();
    let list_lines: Vec<Vec<&str>> = list.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(check_lines.len(), 4, "{check}");
    for (i, kind) in kinds.iter().enumerate() {
        let emulator = emulators.iter().find(|e| e.vendor().kind() == *kind).unwrap();
        assert_eq!(check_lines[i], [*kind, *kind, emulator.token_url().as_str()], "{check}");
        assert_eq!(list_lines[i], [*kind, *kind], "{list}");
    }
    assert!(emulators.iter().all(|e| e.requests() == 0), "check and list never call out");
}

#[test]
fn check_shows_the_issuer_of_a_provider_found_by_discovery() {
    let env = TestEnv::new();
    env.write_config(
        "[providers.idp]\nkind = \"oauth2\"\nissuer = \"https://idp.example.com\"\n\
         client_id = \"app\"\nclient_secret = \"x\"\n",
    );
    let check = env.run(&["check"]).ok().to_owned();
    let fields: Vec<&str> = check.split_whitespace().collect();
    assert_eq!(fields, ["idp", "oauth2", "https://idp.example.com", "(discovery)"], "{check}");
}

#[test]
fn check_reports_a_bad_provider() {
    let env = TestEnv::new();
    env.write_config(
        "[providers.mdm]\nkind = \"soti-connect\"\ntoken_url = \"https://mdm.example.com/t\"\n\
         client_id = \"app\"\nclient_secret = \"x\"\ngrant = \"password\"\nusername = \"u\"\n\
         password = \"p\"\nflavour = \"vanilla\"\n",
    );
    let line = env.run(&["check"]).fails(2).to_owned();
    assert!(line.contains("mdm") && line.contains("flavour"), "{line}");
}

#[test]
fn the_config_file_comes_from_the_flag_then_the_environment_then_the_working_directory() {
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    let missing = env.run_bare(&["list"]);
    assert!(missing.fails(2).contains("tokensmith.toml"), "{missing:#?}");

    std::fs::write(env.dir().join("tokensmith.toml"), provider(&deyel, "from-cwd")).unwrap();
    assert_eq!(env.run_bare(&["list"]).ok(), "from-cwd  deyel\n");

    let from_env = env.dir().join("env.toml");
    std::fs::write(&from_env, provider(&deyel, "from-env")).unwrap();
    let run = env.command().env("TOKENSMITH_CONFIG", &from_env).arg("list").output().unwrap();
    assert_eq!(String::from_utf8(run.stdout).unwrap(), "from-env  deyel\n");

    env.write_config(&provider(&deyel, "from-flag"));
    let run = env
        .command()
        .env("TOKENSMITH_CONFIG", &from_env)
        .arg("list")
        .arg("--config")
        .arg(env.config_path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(run.stdout).unwrap(), "from-flag  deyel\n");
}

#[test]
fn invalid_toml_is_a_config_error() {
    let env = TestEnv::new();
    env.write_config("[providers.x\nkind = ");
    assert!(env.run(&["list"]).fails(2).contains("TOML"));
}

/// `mock-server` prints a config snippet that works as is, serves
/// `tokensmith token` through it, and stops cleanly on Ctrl-C (SIGINT).
#[cfg(unix)]
#[test]
fn mock_server_serves_the_snippet_it_prints_until_interrupted() {
    let env = TestEnv::new();
    let mut child = env
        .command()
        .args(["mock-server", "--vendor", "configapi"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    while !banner.contains("Press Ctrl-C") {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "mock-server ended early: {banner}");
        banner.push_str(&line);
    }
    let creds = Vendor::ConfigApi.credentials();
    assert!(banner.contains("/configapi/v2/oauth/token"), "{banner}");
    assert!(banner.contains(creds.client_id()), "{banner}");
    assert!(banner.contains(creds.client_secret().unwrap()), "{banner}");
    let snippet: String = banner
        .lines()
        .skip_while(|l| !l.starts_with("[providers."))
        .take_while(|l| !l.is_empty())
        .flat_map(|l| [l, "\n"])
        .collect();
    assert!(snippet.starts_with("[providers.tenant]\nkind = \"configapi\"\n"), "{banner}");
    env.write_config(&snippet);
    let json: serde_json::Value =
        serde_json::from_str(env.run(&["token", "tenant", "--json"]).ok()).unwrap();
    assert_eq!(json["kind"], "configapi");

    // The shell's `kill` builtin: no procps needed.
    let status = std::process::Command::new("sh")
        .args(["-c", &format!("kill -INT {}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "Ctrl-C ends it with 0");
    assert!(rest.contains("stopped: 1 token request, 1 token issued"), "{rest}");
}

#[test]
fn mock_server_on_a_busy_port_fails_clearly() {
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    let port = deyel.addr().port().to_string();
    let run = env.run_bare(&["mock-server", "--vendor", "deyel", "--port", &port]);
    assert!(run.fails(2).contains(&port), "{run:#?}");
}

/// `mock-server --vendor custom --describe FILE` serves the vendor the file
/// describes; `tokensmith token` gets a token from it once `token_url`
/// points there, and no secret of the description is printed.
#[cfg(unix)]
#[test]
fn mock_server_serves_a_described_vendor() {
    const DESCRIPTION: &str = r#"
[providers.ledger]
kind = "custom"
token_url = "https://api.ledgerly.example/v2/auth/login"
client_id = "reporting"
client_secret = "described-secret-1"

[providers.ledger.request]
body = "json"
auth = { type = "body", id_field = "clientId", secret_field = "clientSecret" }

[providers.ledger.response]
token = "/data/accessToken"
expires_in = "/data/ttl"
"#;
    let env = TestEnv::new();
    env.write_config(DESCRIPTION);
    let describe = env.config_path();
    let mut child = env
        .command()
        .args(["mock-server", "--vendor", "custom", "--describe"])
        .arg(&describe)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    while !banner.contains("Press Ctrl-C") {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "mock-server ended early: {banner}");
        banner.push_str(&line);
    }
    assert!(!banner.contains("described-secret-1"), "{banner}");
    let url = banner
        .lines()
        .find_map(|l| l.strip_prefix("token URL"))
        .map_or_else(|| panic!("{banner}"), str::trim)
        .to_owned();
    assert!(url.ends_with("/v2/auth/login"), "{banner}");
    env.write_config(&DESCRIPTION.replace("https://api.ledgerly.example/v2/auth/login", &url));
    let json: serde_json::Value =
        serde_json::from_str(env.run(&["token", "ledger", "--json"]).ok()).unwrap();
    assert_eq!(json["kind"], "custom");
    assert_eq!(json["access_token"], "token-1");
    let status = std::process::Command::new("sh")
        .args(["-c", &format!("kill -INT {}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "Ctrl-C ends it with 0");
    assert!(rest.contains("stopped: 1 token request, 1 token issued"), "{rest}");
}

#[test]
fn mock_server_custom_needs_a_description_that_loads() {
    let env = TestEnv::new();
    let run = env.run_bare(&["mock-server", "--vendor", "custom"]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("--describe"), "{run:#?}");
    env.write_config("[providers.x]\nkind = \"custom\"\nclient_id = \"a\"\n[providers.x.response]\ntoken = \"t\"\n");
    let path = env.config_path();
    let run =
        env.run_bare(&["mock-server", "--vendor", "custom", "--describe", path.to_str().unwrap()]);
    assert!(run.fails(2).contains("response.token"), "{run:#?}");
}
