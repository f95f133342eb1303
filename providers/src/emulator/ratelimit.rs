//! The request budget: Hetzner's per-project hourly limit, which refills steadily and is reported in
//! `RateLimit-*` headers on every response. It refills one request per second, as Hetzner's default
//! 3600 per hour does; a larger budget refills proportionally faster (budget / 3600 per second), and a
//! smaller one still refills one per second, so that tests with a tiny budget wait seconds, not hours.

/// A token bucket over the emulator's clock (milliseconds), so tests with a manual clock are exact.
#[derive(Debug, Clone)]
pub(crate) struct RateLimiter {
    limit: u32,
    /// Fractional tokens, scaled by 1000 to refill smoothly without floats.
    milli_tokens: u64,
    updated_ms: i64,
}

/// What the headers report after a request was counted (or refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateState {
    pub(crate) limit: u32,
    pub(crate) remaining: u32,
    /// UNIX seconds at which the bucket is full again.
    pub(crate) reset: i64,
}

impl RateLimiter {
    pub(crate) fn new(limit: u32, now_ms: i64) -> RateLimiter {
        RateLimiter { limit: limit.max(1), milli_tokens: u64::from(limit.max(1)) * 1000, updated_ms: now_ms }
    }

    /// Requests regained per hour.
    fn per_hour(&self) -> u64 {
        u64::from(self.limit).max(3600)
    }

    fn refill(&mut self, now_ms: i64) {
        let elapsed = u64::try_from(now_ms - self.updated_ms).unwrap_or(0);
        // `per_hour` tokens per 3600 s is `per_hour` milli-tokens per 3600 ms.
        let gained = elapsed.saturating_mul(self.per_hour()) / 3600;
        if gained > 0 {
            self.milli_tokens = (self.milli_tokens + gained).min(u64::from(self.limit) * 1000);
            self.updated_ms = now_ms;
        }
        if self.milli_tokens == u64::from(self.limit) * 1000 {
            self.updated_ms = now_ms;
        }
    }

    /// Counts one request; `Err` when the budget is spent.
    pub(crate) fn take(&mut self, now_ms: i64) -> Result<RateState, RateState> {
        self.refill(now_ms);
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            Ok(self.state(now_ms))
        } else {
            Err(self.state(now_ms))
        }
    }

    /// The state without counting a request (for answers to unauthenticated requests).
    pub(crate) fn peek(&mut self, now_ms: i64) -> RateState {
        self.refill(now_ms);
        self.state(now_ms)
    }

    fn state(&self, now_ms: i64) -> RateState {
        let full = u64::from(self.limit) * 1000;
        let missing = full - self.milli_tokens;
        // Milliseconds until full: missing milli-tokens at `per_hour` per 3600 ms.
        let to_full_ms = (missing * 3600).div_ceil(self.per_hour());
        let reset_ms = now_ms + i64::try_from(to_full_ms).unwrap_or(i64::MAX / 2);
        RateState {
            limit: self.limit,
            remaining: u32::try_from(self.milli_tokens / 1000).unwrap_or(u32::MAX),
            reset: reset_ms.div_euclid(1000) + i64::from(reset_ms.rem_euclid(1000) > 0),
        }
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a test should stop at the first unexpected value")]
mod tests {
    use super::*;

    #[test]
    fn spends_and_refills_one_per_second_at_3600() {
        let mut r = RateLimiter::new(3600, 0);
        assert_eq!(r.take(0).unwrap().remaining, 3599);
        for _ in 0..3599 {
            r.take(0).unwrap();
        }
        let refused = r.take(0).unwrap_err();
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.reset, 3600);
        assert_eq!(r.take(1000).unwrap().remaining, 0);
        assert!(r.take(1500).is_err());
        assert_eq!(r.peek(10_000).remaining, 9);
    }

    #[test]
    fn small_budgets_refill_one_per_second_and_large_ones_faster() {
        let mut small = RateLimiter::new(3, 0);
        for _ in 0..3 {
            small.take(0).unwrap();
        }
        assert_eq!(small.take(0).unwrap_err().reset, 3);
        assert!(small.take(999).is_err());
        assert_eq!(small.take(1000).unwrap().remaining, 0);
        let mut large = RateLimiter::new(7200, 0);
        for _ in 0..7200 {
            large.take(0).unwrap();
        }
        assert_eq!(large.peek(1000).remaining, 2);
    }
}
