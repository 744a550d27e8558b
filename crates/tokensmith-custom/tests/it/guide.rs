//! The guide's examples (`docs/describe-a-vendor.md`): each complete config
//! loads, and its provider gets a token from the emulator of it and presents
//! it as the guide says.

use std::path::Path;
use std::sync::Arc;

use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::{ProviderContext, Registry};
use tokensmith_custom::{Custom, CustomProvider};
use tokensmith_testkit::CustomEmulator;

use crate::clock;

/// The fenced `toml` blocks of the guide that are complete configs.
fn examples() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/describe-a-vendor.md");
    let text = std::fs::read_to_string(path).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```toml") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), line) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks.into_iter().filter(|b| b.contains("[providers.")).collect()
}

#[tokio::test]
async fn each_example_of_the_guide_loads_and_gets_a_token_from_its_emulator() {
    let examples = examples();
    assert_eq!(examples.len(), 3, "the guide has three complete examples");
    let mut presented = Vec::new();
    for example in examples {
        // Loads as written (no network).
        Registry::new()
            .with(Custom)
            .load_str(&example)
            .unwrap_or_else(|e| panic!("{e}\n{example}"));
        let emulator = CustomEmulator::start(&example).await.unwrap();
        let doc: toml::Table = toml::from_str(&example).unwrap();
        let (name, table) = doc["providers"].as_table().unwrap().iter().next().unwrap();
        let mut table = table.as_table().unwrap().clone();
        table.insert("token_url".into(), toml::Value::String(emulator.token_url()));
        let ctx = ProviderContext::new(name, table, Arc::new(clock())).unwrap();
        let provider = CustomProvider::from_context(&ctx).unwrap();
        let token = provider.fetch().await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(token.secret().expose_secret(), "token-1", "{name}");
        let (header, value) = provider.present(&token);
        // The token itself carries the same presentation (contract §7).
        let (name_on_token, value_on_token) = token.header().unwrap();
        assert_eq!(name_on_token.as_str(), header.to_ascii_lowercase(), "{name}");
        assert_eq!(value_on_token.to_str().unwrap(), value.expose_secret(), "{name}");
        presented.push(format!("{name}: {header}: {}", value.expose_secret()));
        assert_eq!(emulator.requests(), 1, "{name}");
    }
    assert_eq!(
        presented,
        [
            "ledger: Authorization: Bearer token-1",
            "vault: X-Session: token-1",
            "cadence: Authorization: CwsAuth Bearer=token-1",
        ]
    );
}
