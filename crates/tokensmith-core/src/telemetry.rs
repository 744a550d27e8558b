//! The cache's metrics, through the [`metrics`](https://docs.rs/metrics)
//! facade, behind the `metrics` cargo feature (names and meanings in
//! `docs/metrics.md`).
//!
//! Every function here is an empty `#[inline]` function without the
//! feature, so the cache's calls compile to nothing. With it, they run on
//! the cache's slow path only (a fetch, a refresh, a precise re-check of the
//! time at most every 100 ms while calls arrive, an invalidation, or
//! [`CachedProvider::export_metrics`](crate::CachedProvider::export_metrics)):
//! the hit path itself never calls the facade. Hits and tokens served
//! during a backoff are read from the cache's own striped counter, as an
//! absolute value or a difference, instead of one metric call per hit.
//!
//! Labels are bounded: the provider's name and its kind, plus `outcome`
//! (`ok` or `error`) on fetches.

#![cfg_attr(
    not(feature = "metrics"),
    allow(dead_code, unused_variables, reason = "the functions are empty without the feature")
)]

use std::time::Duration;

/// `tokensmith_fetches_total{provider, kind, outcome}`: upstream requests.
pub(crate) const FETCHES: &str = "tokensmith_fetches_total";
/// `tokensmith_fetch_duration_seconds{provider, kind, outcome}`: their duration.
pub(crate) const FETCH_DURATION: &str = "tokensmith_fetch_duration_seconds";
/// `tokensmith_cache_hits_total{provider, kind}`: calls answered from the cache.
pub(crate) const HITS: &str = "tokensmith_cache_hits_total";
/// `tokensmith_served_during_backoff_total{provider, kind}`: calls answered
/// with the current token while its refresh was failing.
pub(crate) const SERVED_DURING_BACKOFF: &str = "tokensmith_served_during_backoff_total";
/// `tokensmith_refreshes_total{provider, kind}`: background refreshes started.
pub(crate) const REFRESHES: &str = "tokensmith_refreshes_total";
/// `tokensmith_token_seconds_left{provider, kind}`: seconds until the
/// current token expires (0 when there is none).
pub(crate) const SECONDS_LEFT: &str = "tokensmith_token_seconds_left";

/// The labels every metric of one provider carries.
pub(crate) struct Labels<'a> {
    pub(crate) provider: &'a std::sync::Arc<str>,
    pub(crate) kind: &'a std::sync::Arc<str>,
}

#[cfg(feature = "metrics")]
impl Labels<'_> {
    fn pairs(&self) -> [metrics::Label; 2] {
        [
            metrics::Label::new("provider", metrics::SharedString::from(self.provider.clone())),
            metrics::Label::new("kind", metrics::SharedString::from(self.kind.clone())),
        ]
    }

    fn with_outcome(&self, ok: bool) -> [metrics::Label; 3] {
        let [provider, kind] = self.pairs();
        [provider, kind, metrics::Label::new("outcome", if ok { "ok" } else { "error" })]
    }
}

/// Describes every metric once per process (units and help text), so an
/// exporter renders them with `# HELP` lines.
#[cfg(feature = "metrics")]
fn describe() {
    static DESCRIBED: std::sync::Once = std::sync::Once::new();
    DESCRIBED.call_once(describe_all);
}

/// Describes every metric to the recorder in use now (called by
/// `export_metrics`, so a recorder installed after the first emission gets
/// the descriptions too).
#[inline]
pub(crate) fn describe_all() {
    #[cfg(feature = "metrics")]
    {
        use metrics::Unit;
        metrics::describe_counter!(FETCHES, "Upstream token requests, by outcome");
        metrics::describe_histogram!(
            FETCH_DURATION,
            Unit::Seconds,
            "Duration of upstream token requests"
        );
        metrics::describe_counter!(HITS, "Calls answered with the cached token");
        metrics::describe_counter!(
            SERVED_DURING_BACKOFF,
            "Calls answered with the current token while its refresh was failing"
        );
        metrics::describe_counter!(REFRESHES, "Background (refresh-ahead) refreshes started");
        metrics::describe_gauge!(
            SECONDS_LEFT,
            Unit::Seconds,
            "Seconds until the current token expires (0: none)"
        );
    }
}

/// One upstream request ended.
#[inline]
pub(crate) fn fetched(labels: &Labels<'_>, ok: bool, took: Duration) {
    #[cfg(feature = "metrics")]
    {
        describe();
        metrics::counter!(FETCHES, labels.with_outcome(ok).iter()).increment(1);
        metrics::histogram!(FETCH_DURATION, labels.with_outcome(ok).iter())
            .record(took.as_secs_f64());
    }
}

/// A background refresh started.
#[inline]
pub(crate) fn refresh_started(labels: &Labels<'_>) {
    #[cfg(feature = "metrics")]
    {
        describe();
        metrics::counter!(REFRESHES, labels.pairs().iter()).increment(1);
    }
}

/// The hit counter's total (read only with the feature on).
#[inline]
pub(crate) fn hits(labels: &Labels<'_>, total: impl FnOnce() -> u64) {
    #[cfg(feature = "metrics")]
    {
        describe();
        metrics::counter!(HITS, labels.pairs().iter()).absolute(total());
    }
}

/// Hits answered while the refresh was failing, since the last report.
#[inline]
pub(crate) fn served_during_backoff(labels: &Labels<'_>, count: u64) {
    #[cfg(feature = "metrics")]
    {
        describe();
        metrics::counter!(SERVED_DURING_BACKOFF, labels.pairs().iter()).increment(count);
    }
}

/// Time left on the token in service (`None`: no token).
#[inline]
pub(crate) fn seconds_left(labels: &Labels<'_>, left: Option<Duration>) {
    #[cfg(feature = "metrics")]
    {
        describe();
        metrics::gauge!(SECONDS_LEFT, labels.pairs().iter())
            .set(left.unwrap_or_default().as_secs_f64());
    }
}
