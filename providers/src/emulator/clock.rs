//! The emulator's clock: a start time plus either real elapsed time or time that tests advance by hand,
//! so `created` stamps and action progress are reproducible in tests.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct Clock {
    start_ms: i64,
    origin: Instant,
    /// `Some` for a manual clock: milliseconds advanced so far.
    manual_offset_ms: Option<AtomicI64>,
}

impl Clock {
    pub(crate) fn new(start_ms: i64, manual: bool) -> Clock {
        Clock { start_ms, origin: Instant::now(), manual_offset_ms: manual.then(|| AtomicI64::new(0)) }
    }

    /// UNIX milliseconds.
    pub(crate) fn now_ms(&self) -> i64 {
        match &self.manual_offset_ms {
            Some(offset) => self.start_ms + offset.load(Ordering::Relaxed),
            None => self.start_ms + i64::try_from(self.origin.elapsed().as_millis()).unwrap_or(i64::MAX / 2),
        }
    }

    /// Moves a manual clock forward; a real clock ignores it (it moves by itself).
    pub(crate) fn advance(&self, by: Duration) {
        if let Some(offset) = &self.manual_offset_ms {
            offset.fetch_add(i64::try_from(by.as_millis()).unwrap_or(i64::MAX / 4), Ordering::Relaxed);
        }
    }
}

/// UNIX milliseconds as Hetzner writes times: `2016-01-30T23:55:00+00:00`.
pub(crate) fn rfc3339(ms: i64) -> String {
    match jiff::Timestamp::from_second(ms.div_euclid(1000)) {
        Ok(ts) => {
            let text = ts.to_string();
            match text.strip_suffix('Z') {
                Some(head) => format!("{head}+00:00"),
                None => text,
            }
        }
        // Out of jiff's range (year > 9999): no emulated object lives that long.
        Err(_) => "9999-12-31T23:59:59+00:00".to_owned(),
    }
}

/// The `YYYY-MM-DD` day of a time, to compare with deprecation dates.
pub(crate) fn day(ms: i64) -> String {
    rfc3339(ms).chars().take(10).collect()
}
