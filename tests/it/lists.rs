//! One source for each list: where a list of kinds, crates, features or
//! common fields has to exist in more than one place (the facade's cargo
//! features, the testkit's vendors, the docs), this test ties each copy to
//! core's `KNOWN_KINDS` and `CommonConfig`, so they cannot drift apart.

use std::path::Path;

use tokensmith_core::CommonConfig;
use tokensmith_core::KNOWN_KINDS;
use tokensmith_testkit::Vendor;

fn read(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn known_kinds() -> Vec<&'static str> {
    let mut kinds: Vec<&str> = KNOWN_KINDS.iter().map(|(kind, _, _)| *kind).collect();
    kinds.sort_unstable();
    kinds
}

#[test]
fn every_known_kind_is_its_adapter_s_kind_and_the_testkit_s_vendor() {
    let mut adapters = [
        (tokensmith_soti::KIND, "tokensmith-soti"),
        (tokensmith_configapi::KIND, "tokensmith-configapi"),
        (tokensmith_oauth2::KIND, "tokensmith-oauth2"),
        (tokensmith_deyel::KIND, "tokensmith-deyel"),
        (tokensmith_custom::KIND, "tokensmith-custom"),
    ];
    adapters.sort_unstable();
    let mut known: Vec<(&str, &str)> =
        KNOWN_KINDS.iter().map(|(kind, krate, _)| (*kind, *krate)).collect();
    known.sort_unstable();
    assert_eq!(known, adapters);
    // Every kind has a fixed vendor emulator, except `custom`: its emulator
    // (`CustomEmulator`) is configured by the description it reads.
    let mut vendors: Vec<&str> = Vendor::ALL.iter().map(|v| v.kind()).collect();
    vendors.push(tokensmith_custom::KIND);
    vendors.sort_unstable();
    assert_eq!(vendors, known_kinds());
}

#[test]
fn every_known_kind_is_a_facade_feature_registered_by_with_enabled_adapters() {
    let manifest: toml::Table = read("crates/tokensmith/Cargo.toml").parse().unwrap();
    let features = manifest["features"].as_table().unwrap();
    let lib = read("crates/tokensmith/src/lib.rs");
    for (kind, krate, feature) in KNOWN_KINDS {
        let enables = features.get(*feature).and_then(toml::Value::as_array);
        let dep = format!("dep:{krate}");
        assert!(
            enables.is_some_and(|deps| deps.iter().any(|d| d.as_str() == Some(dep.as_str()))),
            "the facade's feature `{feature}` must enable {dep} (kind {kind})"
        );
        let default = features["default"].as_array().unwrap();
        assert!(default.iter().any(|d| d.as_str() == Some(feature)), "{feature} is on by default");
        let module = krate.replace('-', "_");
        for needle in [format!("#[cfg(feature = \"{feature}\")]"), format!("pub use {module} as")] {
            assert!(lib.contains(&needle), "crates/tokensmith/src/lib.rs lacks {needle}");
        }
    }
    // Every feature but `default`, `metrics` and `redis` (not adapters) is one.
    let adapters =
        features.keys().filter(|f| !["default", "metrics", "redis"].contains(&f.as_str())).count();
    assert_eq!(adapters, KNOWN_KINDS.len(), "a facade feature without a KNOWN_KINDS entry");
}

#[test]
fn the_docs_list_every_common_field_and_every_kind() {
    let docs = read("docs/configuration.md");
    for field in CommonConfig::field_names() {
        assert!(docs.contains(&format!("| `{field}` |")), "docs/configuration.md: {field}");
    }
    for kind in known_kinds() {
        assert!(docs.contains(&format!("`{kind}`")), "docs/configuration.md: kind {kind}");
    }
}
