//! No secret from the config ever reaches stdout or stderr, even with
//! `--verbose`: every failing case is run again with logging on, and a
//! successful run's log is checked for the token too.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokensmith_testkit::Vendor;

use crate::exit_codes::{CASE_SECRET, failing_cases, run_case};
use crate::support::{Run, TestEnv, WRONG_SECRET, provider};

/// Every secret the test configs hold, and the forms they travel in.
fn needles() -> Vec<String> {
    let mut secrets = vec![
        WRONG_SECRET.to_owned(),
        CASE_SECRET.to_owned(),
        "pw-Kq2-secret".to_owned(),
        "Application1Password".to_owned(),
    ];
    for vendor in Vendor::ALL {
        let creds = vendor.credentials();
        secrets.extend(creds.client_secret().map(str::to_owned));
        // SOTI's example password ("1") is too short to search for.
        secrets.extend(creds.password().filter(|p| p.len() > 4).map(str::to_owned));
    }
    let mut needles = secrets.clone();
    for vendor in Vendor::ALL {
        let id = vendor.credentials().client_id();
        for secret in &secrets {
            needles.push(STANDARD.encode(format!("{id}:{secret}")));
        }
    }
    needles
}

#[track_caller]
fn assert_no_secret(what: &str, run: &Run, extra: &[&str]) {
    for needle in needles().iter().map(String::as_str).chain(extra.iter().copied()) {
        assert!(!run.stdout.contains(needle), "{what}: stdout shows {needle:?}: {run:#?}");
        assert!(!run.stderr.contains(needle), "{what}: stderr shows {needle:?}: {run:#?}");
    }
}

#[test]
fn no_failing_case_shows_a_secret_even_when_verbose() {
    let env = TestEnv::new();
    for case in failing_cases(&env) {
        let run = run_case(&env, &case, &["--verbose"]);
        assert_eq!(run.code, case.code, "{}: {run:#?}", case.what);
        assert!(run.stdout.is_empty(), "{}: {run:#?}", case.what);
        assert_no_secret(case.what, &run, &[]);
    }
}

#[test]
fn a_verbose_success_logs_neither_secrets_nor_the_token() {
    let env = TestEnv::new();
    let emulators: Vec<_> = Vendor::ALL.iter().map(|v| env.emulator(*v)).collect();
    let config: Vec<String> = emulators.iter().map(|e| provider(e, e.vendor().kind())).collect();
    env.write_config(&config.join("\n"));
    for vendor in Vendor::ALL {
        for round in ["fetch", "cache hit"] {
            let run = env.run(&["--verbose", "token", vendor.kind()]);
            let token = run.ok().trim().to_owned();
            assert!(!run.stderr.is_empty(), "--verbose logs something");
            assert!(!run.stderr.contains(&token), "{vendor} {round}: the log shows the token");
            assert_no_secret(vendor.kind(), &run, &[]);
        }
    }
    // The cache file names are keyed on the secrets: not for logs people paste.
    env.run(&["cache", "clear"]).ok();
    for vendor in Vendor::ALL {
        let run = env.run(&["--verbose", "token", vendor.kind()]);
        run.ok();
        for file in env.cache_files() {
            let stem = file.file_stem().unwrap().to_str().unwrap().to_owned();
            assert!(!run.stderr.contains(&stem), "{vendor}: the log shows {stem}: {run:#?}");
        }
    }
    assert_eq!(env.cache_files().len(), Vendor::ALL.len());
}
