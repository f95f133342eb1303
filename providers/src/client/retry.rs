//! When to retry, and how long to wait: Hetzner's official Go client retries `conflict`,
//! `rate_limit_exceeded` (429), `timeout`, 502 and 504, up to 5 times, from 1 s doubling to 60 s
//! with jitter; terrace also retries `locked` (a running action on the resource, as the Terraform
//! provider does), 500 and 503 `service_error`, and broken connections. Other errors are final.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries of one request.
    pub max_retries: u32,
    pub base: Duration,
    pub cap: Duration,
    /// Retries of all requests of a run together, so that a failing API is not hammered.
    pub budget: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_retries: 5, base: Duration::from_secs(1), cap: Duration::from_secs(60), budget: 200 }
    }
}

impl RetryPolicy {
    /// Whether an error is worth another attempt.
    pub fn retryable(error: &ApiError) -> bool {
        matches!(
            error.code.as_str(),
            "conflict" | "rate_limit_exceeded" | "timeout" | "locked" | "connection" | "service_error"
        ) || matches!(error.status, Some(429 | 500 | 502 | 503 | 504))
    }

    /// The wait before retry number `attempt` (0-based), or `None` to give up: full jitter over an
    /// exponential bound, so that parallel workers do not retry in step.
    pub fn delay(&self, attempt: u32, error: &ApiError) -> Option<Duration> {
        if attempt >= self.max_retries || !Self::retryable(error) {
            return None;
        }
        let bound = self.base.saturating_mul(1u32 << attempt.min(16)).min(self.cap);
        let millis = bound.as_millis() as u64;
        Some(Duration::from_millis(millis / 2 + fastrand::u64(0..=millis / 2)))
    }
}

/// The run's retry budget, shared by clones of the client.
#[derive(Debug)]
pub(super) struct Budget(AtomicU32);

impl Budget {
    pub(super) fn new(retries: u32) -> Self {
        Self(AtomicU32::new(retries))
    }

    /// Takes one retry; false when none is left.
    pub(super) fn take(&self) -> bool {
        self.0.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: &str, status: Option<u16>) -> ApiError {
        ApiError::action(&super::super::Operation::new("test"), code, String::new()).with_status(status)
    }

    #[test]
    fn only_transient_errors_are_retried() {
        for code in ["conflict", "rate_limit_exceeded", "timeout", "locked", "connection", "service_error"] {
            assert!(RetryPolicy::retryable(&error(code, None)), "{code}");
        }
        for code in ["invalid_input", "uniqueness_error", "not_found", "protected", "unauthorized"] {
            assert!(!RetryPolicy::retryable(&error(code, Some(422))), "{code}");
        }
        assert!(RetryPolicy::retryable(&error("http_error", Some(502))));
    }

    #[test]
    fn delays_grow_with_jitter_within_the_cap_and_stop() {
        let policy = RetryPolicy::default();
        let locked = error("locked", Some(423));
        for attempt in 0..5 {
            let delay = policy.delay(attempt, &locked).expect("retried");
            let bound = Duration::from_secs(1 << attempt).min(policy.cap);
            assert!(delay >= bound / 2 && delay <= bound, "attempt {attempt}: {delay:?}");
        }
        assert_eq!(policy.delay(5, &locked), None, "five retries at most");
        assert_eq!(policy.delay(0, &error("not_found", Some(404))), None);
    }

    #[test]
    fn the_budget_runs_out() {
        let budget = Budget::new(2);
        assert!(budget.take() && budget.take());
        assert!(!budget.take());
    }
}
