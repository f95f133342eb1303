//! Fault injection: which failures to inject and how often, decided by a seeded generator so that a run
//! with the same seed and the same requests fails in the same places.

use std::fmt;

/// How often each kind of fault is injected, as probabilities in `0.0..=1.0` per request (per action for
/// `action_error`). The default injects nothing.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FaultSpec {
    /// Answer `429 rate_limit_exceeded` although the budget is not spent.
    pub too_many_requests: f64,
    /// Answer `500 server_error`.
    pub internal_error: f64,
    /// Answer `502 Bad Gateway`, as a proxy in front of the API would.
    pub bad_gateway: f64,
    /// Answer `503 service_error`.
    pub unavailable: f64,
    /// Close the connection without an answer.
    pub reset: f64,
    /// Answer `504 timeout`.
    pub timeout: f64,
    /// Let an action end in `error` instead of `success`.
    pub action_error: f64,
    /// Answer a mutating request with `423 locked`.
    pub locked: f64,
    /// Answer a mutating request with `409 conflict`.
    pub conflict: f64,
    /// Carry the request out, then cut its answer's body halfway and close the connection: the
    /// client knows the status but not what the API said.
    pub truncate: f64,
}

/// A fault chosen for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    TooManyRequests,
    InternalError,
    BadGateway,
    Unavailable,
    Reset,
    Timeout,
    Locked,
    Conflict,
    Truncate,
}

impl FaultSpec {
    /// Whether any request fault can be drawn (action errors are drawn separately).
    fn request_faults(&self) -> [(f64, Fault); 9] {
        [
            (self.too_many_requests, Fault::TooManyRequests),
            (self.internal_error, Fault::InternalError),
            (self.bad_gateway, Fault::BadGateway),
            (self.unavailable, Fault::Unavailable),
            (self.reset, Fault::Reset),
            (self.timeout, Fault::Timeout),
            (self.locked, Fault::Locked),
            (self.conflict, Fault::Conflict),
            (self.truncate, Fault::Truncate),
        ]
    }

    /// Picks at most one fault for a request from one uniform draw, so each request consumes exactly one
    /// number and the sequence of faults depends only on the seed and the number of requests.
    pub(crate) fn pick(&self, draw: f64) -> Option<Fault> {
        let mut edge = 0.0;
        for (p, fault) in self.request_faults() {
            edge += p;
            if draw < edge {
                return Some(fault);
            }
        }
        None
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [
            ("429", self.too_many_requests),
            ("500", self.internal_error),
            ("502", self.bad_gateway),
            ("503", self.unavailable),
            ("reset", self.reset),
            ("timeout", self.timeout),
            ("action_error", self.action_error),
            ("locked", self.locked),
            ("conflict", self.conflict),
            ("truncate", self.truncate),
        ];
        let shown: Vec<String> = parts.iter().filter(|(_, p)| *p > 0.0).map(|(k, p)| format!("{k}={p}")).collect();
        if shown.is_empty() { f.write_str("none") } else { f.write_str(&shown.join(",")) }
    }
}

/// Parses `429=0.05,500=0.05,reset=0.02,action_error=0.01,locked=0.01,timeout=0.01` (also `502`, `503`,
/// `conflict`, `truncate`). An empty spec or `none` injects nothing. The request faults together must not exceed 1.
pub fn parse_faults(spec: &str) -> Result<FaultSpec, String> {
    let mut faults = FaultSpec::default();
    let spec = spec.trim();
    if spec.is_empty() || spec == "none" {
        return Ok(faults);
    }
    for part in spec.split(',') {
        let (key, value) =
            part.split_once('=').ok_or_else(|| format!("`{part}` is not KIND=PROBABILITY (e.g. 429=0.05)"))?;
        let p: f64 = value.trim().parse().map_err(|_| format!("`{value}` in `{part}` is not a number"))?;
        if !(0.0..=1.0).contains(&p) {
            return Err(format!("the probability in `{part}` must be between 0 and 1"));
        }
        let slot = match key.trim() {
            "429" => &mut faults.too_many_requests,
            "500" => &mut faults.internal_error,
            "502" => &mut faults.bad_gateway,
            "503" => &mut faults.unavailable,
            "reset" => &mut faults.reset,
            "timeout" => &mut faults.timeout,
            "action_error" => &mut faults.action_error,
            "locked" => &mut faults.locked,
            "conflict" => &mut faults.conflict,
            "truncate" => &mut faults.truncate,
            other => {
                return Err(format!(
                    "unknown fault `{other}`; known: 429, 500, 502, 503, reset, timeout, action_error, locked, conflict, \
                     truncate"
                ));
            }
        };
        *slot = p;
    }
    let total: f64 = faults.request_faults().iter().map(|(p, _)| p).sum();
    if total > 1.0 {
        return Err(format!("the request faults add up to {total}, more than 1"));
    }
    Ok(faults)
}

/// SplitMix64, written out instead of pulling in `rand`: a dozen lines give a fixed, well-mixed sequence
/// per seed, which is all reproducible fault injection needs (no cryptographic quality, no distributions).
#[derive(Debug, Clone)]
pub(crate) struct SeededRng {
    state: u64,
}

impl SeededRng {
    pub(crate) fn new(seed: u64) -> SeededRng {
        SeededRng { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in `[0, 1)` from the top 53 bits.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a test should stop at the first unexpected value")]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_and_rejects_nonsense() {
        let f =
            parse_faults("429=0.05,500=0.05,502=0.01,503=0.01,reset=0.02,timeout=0.01,action_error=0.01,locked=0.01")
                .unwrap();
        assert_eq!(f.too_many_requests, 0.05);
        assert_eq!(f.reset, 0.02);
        assert_eq!(f.action_error, 0.01);
        assert_eq!(parse_faults("").unwrap(), FaultSpec::default());
        assert!(parse_faults("418=0.1").unwrap_err().contains("unknown fault"));
        assert!(parse_faults("429=2").is_err());
        assert!(parse_faults("429").is_err());
        assert!(parse_faults("429=0.6,500=0.6").unwrap_err().contains("more than 1"));
    }

    #[test]
    fn same_seed_same_sequence() {
        let a: Vec<u64> = (0..5).scan(SeededRng::new(7), |r, _| Some(r.next_u64())).collect();
        let b: Vec<u64> = (0..5).scan(SeededRng::new(7), |r, _| Some(r.next_u64())).collect();
        let c: Vec<u64> = (0..5).scan(SeededRng::new(8), |r, _| Some(r.next_u64())).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
