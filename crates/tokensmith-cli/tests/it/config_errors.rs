//! A config shared by hosts that hold only some secrets: `token` and
//! `header` need only their own provider; and typos get errors that name
//! the field written and the one meant.

use tokensmith_testkit::Vendor;

use crate::support::{TestEnv, UNSET_VAR, provider};

#[test]
fn one_broken_provider_does_not_block_the_others() {
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    let missing_env = format!(
        "[providers.other]\nkind = \"deyel\"\ntoken_url = \"https://deyel.example.com/token\"\n\
         client_id = \"app\"\nclient_secret = {{ env = \"{UNSET_VAR}\" }}\n"
    );
    let kind_typo = "[providers.typo]\nkind = \"deyal\"\ntoken_url = \"https://deyel.example.com/token\"\n\
         client_id = \"app\"\n";
    env.write_config(&format!("{}\n{missing_env}\n{kind_typo}", provider(&deyel, "lowcode")));
    let token = env.run(&["token", "lowcode"]).ok().to_owned();
    assert!(!token.trim().is_empty());
    assert!(env.run(&["header", "lowcode", "--no-cache"]).ok().starts_with("Bearer "));
    assert_eq!(deyel.requests(), 2);
    // The broken ones still fail, each with its own error.
    let line = env.run(&["token", "other"]).fails(2).to_owned();
    assert!(line.contains("\"other\"") && line.contains(UNSET_VAR), "{line}");
    let line = env.run(&["header", "typo"]).fails(2).to_owned();
    assert!(line.contains("\"typo\"") && line.contains("deyal"), "{line}");
    // `check` still validates every provider.
    env.run(&["check"]).fails(2);
}

#[test]
fn typos_name_the_field_written_and_suggest_the_one_meant() {
    let env = TestEnv::new();
    let table = |kind: &str, extra: &str| {
        format!(
            "[providers.p]\nkind = \"{kind}\"\ntoken_url = \"https://vendor.example.com/token\"\n\
             client_id = \"app\"\n{extra}\n"
        )
    };
    let cases: [(&str, String, &[&str]); 5] = [
        (
            "a common field misspelt",
            table("configapi", "client_secret = \"s\"\nscope = \"t\"\ntimout = \"5s\""),
            &["`timout`", "did you mean `timeout`", "`scope`", "`expiry_margin`"],
        ),
        (
            "a field another kind has",
            table("deyel", "client_secret = \"s\"\nscope = \"t\""),
            &["`scope`", "`client_secret`", "`timeout`"],
        ),
        (
            "a misspelt required field",
            table("deyel", "client_secre = \"s\""),
            &["`client_secre`", "did you mean `client_secret`"],
        ),
        (
            "a misspelt kind field",
            table("configapi", "client_secret = \"s\"\nscop = \"t\""),
            &["`scop`", "did you mean `scope`"],
        ),
        ("a misspelt kind", table("deyal", "client_secret = \"s\""), &["did you mean \"deyel\""]),
    ];
    for (what, config, needles) in cases {
        env.write_config(&config);
        let line = env.run(&["check"]).fails(2).to_owned();
        for needle in needles {
            assert!(line.contains(needle), "{what}: {line:?} lacks {needle:?}");
        }
        assert!(!line.contains("there are no fields"), "{what}: {line}");
    }
}

#[test]
fn every_command_reports_broken_toml_with_its_position_and_no_secret() {
    let env = TestEnv::new();
    // Line 4 is broken; line 3 holds a secret toml's own message would quote.
    env.write_config(
        "[providers.p]\nkind = \"deyel\"\nclient_secret = \"sec-Qz81\"\nclient_id = app\n",
    );
    for args in [&["token", "p"][..], &["check"], &["list"], &["cache", "clear"]] {
        let line = env.run(args).fails(2).to_owned();
        assert!(line.contains("invalid TOML at line 4, column 13"), "{args:?}: {line}");
        assert!(line.contains("config.toml: "), "names the file: {args:?}: {line}");
        assert!(!line.contains("sec-Qz81"), "{args:?}: {line}");
    }
}
