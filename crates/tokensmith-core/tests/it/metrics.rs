//! The cache's metrics (feature `metrics`), read through the `metrics`
//! debugging recorder: every metric documented in `docs/metrics.md`, with
//! its labels and values after a known sequence of calls.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tokensmith_core::{CacheConfig, CachedProvider, TokenProvider};

use crate::current::{Counting, clock, until};

/// The documented metrics (docs/metrics.md), each with the labels it carries.
const DOCUMENTED: [(&str, &[&str]); 6] = [
    ("tokensmith_fetches_total", &["provider", "kind", "outcome"]),
    ("tokensmith_fetch_duration_seconds", &["provider", "kind", "outcome"]),
    ("tokensmith_cache_hits_total", &["provider", "kind"]),
    ("tokensmith_served_during_backoff_total", &["provider", "kind"]),
    ("tokensmith_refreshes_total", &["provider", "kind"]),
    ("tokensmith_token_seconds_left", &["provider", "kind"]),
];

/// One metric series: its name and `outcome` label (if any) to its value.
type Series = BTreeMap<(String, Option<String>), DebugValue>;

#[test]
fn every_documented_metric_is_emitted_with_bounded_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let clock = clock();
    let upstream = Counting::new(&clock);
    let cache = CachedProvider::new(
        "metered",
        upstream.clone(),
        CacheConfig::default(),
        Arc::new(clock.clone()),
    )
    .with_kind("test-kind");
    // One thread: the cache's spawned fetches run where the local recorder is.
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            cache.token().await.unwrap(); // fetch ok
            for _ in 0..5 {
                cache.token().await.unwrap(); // 5 hits
            }
            // Into the refresh window with the upstream down: one refresh, failing.
            upstream.fail(true);
            clock.advance(Duration::from_mins(50));
            cache.token().await.unwrap(); // hit, starts the refresh
            until("the failed refresh", || cache.stats().refresh_failures == 1).await;
            for _ in 0..3 {
                cache.token().await.unwrap(); // 3 hits served during the backoff
            }
            cache.export_metrics();
        });
    });

    let mut series = Series::new();
    for (key, unit, description, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let labels: BTreeMap<&str, &str> = key.labels().map(|l| (l.key(), l.value())).collect();
        let name = key.name().to_owned();
        let (_, expected) = DOCUMENTED
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("undocumented metric {name}"));
        assert_eq!(
            labels.keys().copied().collect::<Vec<_>>().len(),
            expected.len(),
            "{name}: {labels:?}"
        );
        for label in *expected {
            assert!(labels.contains_key(label), "{name} lacks label {label}: {labels:?}");
        }
        assert_eq!((labels["provider"], labels["kind"]), ("metered", "test-kind"), "{name}");
        assert!(description.is_some(), "{name} is described");
        if name.ends_with("_seconds") || name.ends_with("_seconds_left") {
            assert_eq!(unit, Some(metrics::Unit::Seconds), "{name}");
        }
        series.insert((name, labels.get("outcome").map(|o| (*o).to_owned())), value);
    }
    let get = |name: &str, outcome: Option<&str>| {
        series
            .get(&(name.to_owned(), outcome.map(str::to_owned)))
            .unwrap_or_else(|| panic!("{name} {outcome:?} not emitted: {series:?}"))
    };
    let counter = |name, outcome| match get(name, outcome) {
        DebugValue::Counter(n) => *n,
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(counter("tokensmith_fetches_total", Some("ok")), 1);
    assert_eq!(counter("tokensmith_fetches_total", Some("error")), 1);
    assert_eq!(counter("tokensmith_cache_hits_total", None), 9);
    assert_eq!(counter("tokensmith_served_during_backoff_total", None), 3);
    assert_eq!(counter("tokensmith_refreshes_total", None), 1);
    for outcome in ["ok", "error"] {
        match get("tokensmith_fetch_duration_seconds", Some(outcome)) {
            // The counting upstream answers at once on a manual clock.
            DebugValue::Histogram(values) => assert_eq!(values.len(), 1, "{outcome}"),
            other => panic!("{other:?}"),
        }
    }
    match get("tokensmith_token_seconds_left", None) {
        // An hour's token, 3000 s later.
        DebugValue::Gauge(left) => assert!((left.into_inner() - 600.0).abs() < 1e-9, "{left}"),
        other => panic!("{other:?}"),
    }
    let emitted: Vec<&str> = series.keys().map(|(n, _)| n.as_str()).collect();
    for (name, _) in DOCUMENTED {
        assert!(emitted.contains(&name), "{name} never emitted");
    }
    assert_eq!(cache.stats().hits, 9);
}
