//! Prometheus metrics: decisions by reason, decision latency, token cache hits and
//! misses, webhook deliveries. Rendered in the text exposition format at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::engine::Reason;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// How a presented token was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheResult {
    /// Verified earlier: no store or argon2 work.
    Hit,
    /// Looked up and verified with argon2.
    Miss,
    /// Refused before any store or argon2 work (malformed, bad checksum, or a wrong
    /// secret for a token verified earlier).
    Rejected,
    /// A lookup id the store did not know a moment ago: refused without a store read.
    Unknown,
    /// A lookup id whose secret failed argon2 within the window: refused without argon2.
    Throttled,
}

impl CacheResult {
    const ALL: [Self; 5] = [
        Self::Hit,
        Self::Miss,
        Self::Rejected,
        Self::Unknown,
        Self::Throttled,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Rejected => "rejected",
            Self::Unknown => "unknown",
            Self::Throttled => "throttled",
        }
    }
}

/// The counters are made once, one per label value, so that counting is one atomic
/// add: no label lookup on the decision path.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// By `Reason as usize`.
    decisions: Vec<Counter>,
    latency: Histogram,
    /// By `CacheResult as usize`.
    token_cache: Vec<Counter>,
    /// Webhook deliveries: `[delivered, failed]`.
    webhook: [Counter; 2],
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("patrol");
        let decisions = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "decisions",
            "Authorization decisions, by reason",
            decisions.clone(),
        );
        // 1 microsecond to about 1 second.
        let latency = Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
            1e-6, 4.0, 11,
        ));
        registry.register(
            "decision_duration_seconds",
            "Time to answer one check, token verification included",
            latency.clone(),
        );
        let token_cache = Family::<ResultLabel, Counter>::default();
        registry.register(
            "token_cache",
            "Presented tokens, by how they were recognised",
            token_cache.clone(),
        );
        let mut by_reason = vec![Counter::default(); Reason::ALL.len()];
        for reason in Reason::ALL {
            by_reason[reason as usize] = decisions
                .get_or_create(&ReasonLabel {
                    reason: reason.as_str(),
                })
                .clone();
        }
        let mut by_result = vec![Counter::default(); CacheResult::ALL.len()];
        for result in CacheResult::ALL {
            by_result[result as usize] = token_cache
                .get_or_create(&ResultLabel {
                    result: result.as_str(),
                })
                .clone();
        }
        let webhook = Family::<ResultLabel, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Notification delivery attempts to the webhook, by result",
            webhook.clone(),
        );
        let webhook = ["delivered", "failed"]
            .map(|result| webhook.get_or_create(&ResultLabel { result }).clone());
        Self {
            registry,
            decisions: by_reason,
            latency,
            token_cache: by_result,
            webhook,
        }
    }
}

impl Metrics {
    pub fn decision(&self, reason: Reason, seconds: f64) {
        self.decisions[reason as usize].inc();
        self.latency.observe(seconds);
    }

    pub fn token_cache(&self, result: CacheResult) {
        self.token_cache[result as usize].inc();
    }

    /// One delivery attempt to the webhook.
    pub fn webhook_delivery(&self, delivered: bool) {
        self.webhook[usize::from(!delivered)].inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
