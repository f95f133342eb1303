//! The project's rate limit, from the `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`
//! (UNIX time of full recovery) headers of every response: when nothing remains, the next request
//! waits until one request has been refilled (one per second, 3600 an hour by default).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// UNIX seconds at which the budget is full again.
    pub reset: Option<u64>,
}

impl RateLimit {
    pub(crate) fn update(&mut self, headers: &HeaderMap) {
        let number = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
        if let Some(limit) = number("ratelimit-limit") {
            self.limit = Some(limit);
        }
        if let Some(remaining) = number("ratelimit-remaining") {
            self.remaining = Some(remaining);
        }
        if let Some(reset) = number("ratelimit-reset") {
            self.reset = Some(reset);
        }
    }

    /// How long to wait before the next request, if the budget is spent: until one request is
    /// refilled (the time to full recovery divided by the limit), at least a second.
    pub fn wait_needed(&self, now: SystemTime) -> Option<Duration> {
        if self.remaining != Some(0) {
            return None;
        }
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let until_full = self.reset.map_or(1, |reset| reset.saturating_sub(now));
        let per_request = match self.limit {
            Some(limit) if limit > 0 => until_full.div_ceil(limit),
            _ => until_full,
        };
        Some(Duration::from_secs(per_request.max(1)))
    }

    /// After waiting, one request is available again.
    pub(crate) fn assume_recovered(&mut self) {
        self.remaining = Some(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_and_a_spent_budget_waits_for_one_refill() {
        let mut headers = HeaderMap::new();
        headers.insert("RateLimit-Limit", "3600".parse().expect("header"));
        headers.insert("RateLimit-Remaining", "0".parse().expect("header"));
        headers.insert("RateLimit-Reset", "1000003600".parse().expect("header"));
        let mut rate = RateLimit::default();
        rate.update(&headers);
        assert_eq!(rate, RateLimit { limit: Some(3600), remaining: Some(0), reset: Some(1_000_003_600) });
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(rate.wait_needed(now), Some(Duration::from_secs(1)));
        rate.remaining = Some(5);
        assert_eq!(rate.wait_needed(now), None);
    }
}
