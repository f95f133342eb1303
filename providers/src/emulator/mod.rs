//! An in-memory emulator of the Hetzner Cloud API, served over HTTP under `/v1`, for tests, demos and
//! pipelines that must not spend money (DESIGN.md section 7, docs/emulator.md).
//!
//! The store (`store/`) holds the objects and enforces Hetzner's rules without knowing HTTP; `wire.rs`
//! decodes request bodies; `render.rs` writes Hetzner's JSON; `http.rs` authenticates, rate-limits,
//! injects faults and routes; `s3.rs` serves Object Storage's buckets (S3) under `/s3`. Time comes from
//! a [`clock`] that tests can freeze, and actions finish lazily when the clock passes their end, so no
//! background task runs.

mod clock;
mod errors;
mod faults;
mod http;
mod labels;
mod pagination;
mod ratelimit;
mod render;
mod s3;
mod store;
mod wire;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::service::Service as _;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use faults::{FaultSpec, parse_faults};

use crate::pricing::Catalog;

/// How an emulator behaves. [`EmulatorConfig::default`] answers like the real API: any bearer token,
/// 3600 requests per hour, actions that take a second, no faults, real time.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// How long every action runs before it ends.
    pub action_delay: Duration,
    /// Faults to inject, drawn from a generator seeded with `seed`.
    pub faults: FaultSpec,
    /// Seeds the fault generator, the first ids and generated passwords.
    pub seed: u64,
    /// Requests per hour; the budget refills steadily (one per second at 3600).
    pub hourly_budget: u32,
    /// The accepted token; `None` accepts any bearer token.
    pub token: Option<String>,
    /// UNIX milliseconds the clock starts at; `None` is the current time.
    pub start_time_ms: Option<i64>,
    /// A clock that moves only through [`Emulator::advance`], for exact tests.
    pub manual_clock: bool,
    /// How many of the latest requests [`Emulator::requests`] keeps (older ones are dropped, so memory
    /// stays flat under load); 0 records none.
    pub record_limit: usize,
    /// Where the public IPv4s of servers, Primary IPs, Floating IPs and Load Balancers come from, in every
    /// location; `None` uses blocks Hetzner announces per network zone (49.12.0.0/16 in eu-central, ...).
    /// A test lab that routes these addresses itself gives a range that is never routed on the internet
    /// (198.18.0.0/15, RFC 2544).
    pub public_ipv4_range: Option<ipnet::Ipv4Net>,
    /// How long a connection may take to send a request's headers (or idle between requests), and
    /// a request's body to arrive; then it is let go (408 for a body).
    pub read_timeout: Duration,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            action_delay: Duration::from_secs(1),
            faults: FaultSpec::default(),
            seed: 0,
            hourly_budget: 3600,
            token: None,
            start_time_ms: None,
            manual_clock: false,
            read_timeout: Duration::from_secs(10),
            record_limit: 10_000,
            public_ipv4_range: None,
        }
    }
}

/// A request the emulator received, for tests and benchmarks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, e.g. `/v1/servers/42`.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
}

/// A running emulator. Dropping it without [`Emulator::shutdown`] leaves the server task running until
/// the runtime ends.
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<http::Shared>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Emulator {
    /// Binds `listen` (`127.0.0.1:0` for an ephemeral port) and serves until [`Emulator::shutdown`].
    pub async fn start(listen: SocketAddr, config: EmulatorConfig) -> std::io::Result<Emulator> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let start_ms = config.start_time_ms.unwrap_or_else(|| jiff::Timestamp::now().as_millisecond());
        let clock = clock::Clock::new(start_ms, config.manual_clock);
        let now = clock.now_ms();
        let data = store::StaticData::from_catalog(&Catalog::embedded());
        let delay_ms = i64::try_from(config.action_delay.as_millis()).unwrap_or(i64::MAX / 4);
        let shared = Arc::new(http::Shared {
            inner: Mutex::new(http::Inner {
                store: store::Store::new(data, config.seed, delay_ms).with_public_ipv4_range(config.public_ipv4_range),
                limiter: ratelimit::RateLimiter::new(config.hourly_budget, now),
                fault_rng: faults::SeededRng::new(config.seed),
                requests: VecDeque::new(),
                buckets: s3::Buckets::default(),
            }),
            clock,
            faults: config.faults,
            token: config.token,
            record_limit: config.record_limit,
            read_timeout: config.read_timeout,
        });
        let router = axum::Router::new().fallback(http::handle).with_state(Arc::clone(&shared));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(serve(listener, router, stopped, config.read_timeout));
        Ok(Emulator { addr, shared, stop, task })
    }

    /// The API's base URL, e.g. `http://127.0.0.1:41234/v1`.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The Object Storage (S3) endpoint, e.g. `http://127.0.0.1:41234/s3`: one for every location, so it
    /// serves as `TERRACE_S3_ENDPOINT` as it is.
    pub fn s3_url(&self) -> String {
        format!("http://{}/s3", self.addr)
    }

    /// The names of the Object Storage buckets, sorted.
    pub fn buckets(&self) -> Vec<String> {
        self.shared.lock().buckets.names()
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The latest requests received, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.iter().cloned().collect()
    }

    /// Moves a manual clock forward (see [`EmulatorConfig::manual_clock`]); a real clock ignores it.
    pub fn advance(&self, by: Duration) {
        self.shared.clock.advance(by);
    }

    /// Stops accepting, lets open connections finish their current request, and waits for the server.
    pub async fn shutdown(self) {
        // Fails only if the server task already ended, which is what we want anyway.
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Runs an emulator on a runtime of its own until Ctrl-C, for the `terrace emulator` command (the CLI
/// crate stays free of tokio). `ready` is called once it listens, with its base URL.
pub fn run_until_interrupted(
    listen: SocketAddr,
    config: EmulatorConfig,
    ready: impl FnOnce(&str),
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let emulator = Emulator::start(listen, config).await?;
        ready(&emulator.url());
        let interrupted = tokio::signal::ctrl_c().await;
        emulator.shutdown().await;
        interrupted
    })
}

async fn serve(listener: TcpListener, router: axum::Router, stopped: watch::Receiver<bool>, read_timeout: Duration) {
    let mut stop = stopped.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                // Small JSON answers: do not let Nagle's algorithm hold them back.
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(stream, router.clone(), stopped.clone(), read_timeout));
            }
            _ = stop.changed() => break,
        }
    }
}

/// Serves one keep-alive connection. A response marked [`http::ResetConnection`] becomes a service
/// error, on which hyper drops the connection without answering: what a client sees as a reset.
async fn connection(
    stream: tokio::net::TcpStream,
    router: axum::Router,
    mut stopped: watch::Receiver<bool>,
    read_timeout: Duration,
) {
    let tower = TowerToHyperService::new(router);
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let answer = tower.call(req);
        async move {
            let resp = answer.await.unwrap_or_else(|never| match never {});
            if resp.extensions().get::<http::ResetConnection>().is_some() {
                Err(http::ResetConnection)
            } else {
                Ok(resp)
            }
        }
    });
    // A client that opens a connection and sends its headers slowly, or never, or idles between
    // requests, is let go after `read_timeout` (a body that stops coming: the handler).
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(read_timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopped.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
