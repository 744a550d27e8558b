//! `tokensmith demo`: every adapter against the built-in emulators.

use tokensmith_testkit::Vendor;

use crate::support::TestEnv;

#[test]
fn demo_gets_a_token_through_every_adapter_and_shows_the_cached_hit() {
    let env = TestEnv::new();
    // No config file: the demo brings its own.
    let out = env.run_bare(&["demo"]).ok().to_owned();
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cells| cells.get(1).is_some_and(|k| Vendor::ALL.iter().any(|v| v.kind() == *k)))
        .collect();
    assert_eq!(rows.len(), 4, "{out}");
    for vendor in Vendor::ALL {
        let row = rows.iter().find(|r| r[1] == vendor.kind()).unwrap();
        assert_eq!(row[2], "Bearer", "{out}");
        assert_eq!(*row.last().unwrap(), "1", "one upstream request per provider: {out}");
    }
    assert!(out.contains("All 4 adapters obtained a token."), "{out}");
    assert!(!env.cache_dir().exists(), "the demo does not touch the token cache");
}
