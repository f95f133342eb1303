//! Progress of an apply on stderr. Always one line per event (`server.app: Creating...`,
//! `... complete after 2.1s [id=42]`) and, like Terraform, `Still creating... [20s elapsed]` every
//! ten seconds of a long operation; on a terminal, a status line under them that is redrawn twice
//! a second with what is in flight and how much is done.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use terrace::addr::Address;
use terrace::apply::{Event, Progress};
use terrace::render::terminal::escape_controls;

const STILL_EVERY: Duration = Duration::from_secs(10);

pub(crate) struct Display {
    color: bool,
    live: bool,
    total: usize,
    state: Mutex<Shown>,
}

#[derive(Default)]
struct Shown {
    /// Address -> (verb, started, the last "still" line).
    in_flight: BTreeMap<Address, (&'static str, Instant, Instant)>,
    done: usize,
    status_drawn: bool,
}

impl Display {
    /// `live` draws the status line (stderr is a terminal); `total` is the number of operations.
    pub(crate) fn new(color: bool, live: bool, total: usize) -> Display {
        Display { color, live, total, state: Mutex::new(Shown::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shown> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Called twice a second while the apply runs.
    pub(crate) fn tick(&self) {
        let mut shown = self.lock();
        let mut lines = Vec::new();
        let now = Instant::now();
        for (address, (verb, started, last)) in shown.in_flight.iter_mut() {
            if now.duration_since(*last) >= STILL_EVERY {
                *last = now;
                lines.push(format!("{address}: Still {}... [{}s elapsed]", still(verb), started.elapsed().as_secs()));
            }
        }
        self.write(&mut shown, &lines);
    }

    /// Clears the status line for good.
    pub(crate) fn finish(&self) {
        let mut shown = self.lock();
        let mut err = std::io::stderr().lock();
        if shown.status_drawn {
            let _ = write!(err, "\r\x1b[2K");
            shown.status_drawn = false;
        }
    }

    /// Prints `lines` above the status line and redraws it.
    fn write(&self, shown: &mut Shown, lines: &[String]) {
        let mut err = std::io::stderr().lock();
        if shown.status_drawn {
            let _ = write!(err, "\r\x1b[2K");
        }
        for line in lines {
            let _ = writeln!(err, "{line}");
        }
        if self.live {
            let names: Vec<String> = shown
                .in_flight
                .iter()
                .take(3)
                .map(|(address, (_, started, _))| format!("{address} {}s", started.elapsed().as_secs()))
                .collect();
            let more = shown.in_flight.len().saturating_sub(3);
            let more = if more > 0 { format!(", +{more}") } else { String::new() };
            let _ = write!(
                err,
                "  {} of {} done · {} in flight: {}{more}",
                shown.done,
                self.total,
                shown.in_flight.len(),
                names.join(", ")
            );
            shown.status_drawn = true;
        }
        let _ = err.flush();
    }
}

impl Progress for Display {
    fn event(&self, event: Event) {
        let (bold, red, reset) = if self.color { ("\x1b[1m", "\x1b[31m", "\x1b[0m") } else { ("", "", "") };
        let mut shown = self.lock();
        let line = match event {
            Event::Started { address, verb } => {
                let now = Instant::now();
                let line = format!("{bold}{address}{reset}: {}...", ing(verb));
                shown.in_flight.insert(address, (verb, now, now));
                line
            }
            Event::Finished { address, verb, elapsed, id } => {
                shown.in_flight.remove(&address);
                shown.done += 1;
                let id = id.map(|id| format!(" [id={id}]")).unwrap_or_default();
                format!("{bold}{address}{reset}: {} complete after {:.1}s{id}", noun(verb), elapsed.as_secs_f64())
            }
            Event::Note { address, message } => format!("{bold}{address}{reset}: {}", escape_controls(&message)),
            Event::Failed { address, verb, error } => {
                shown.in_flight.remove(&address);
                format!("{red}{bold}{address}{reset}{red}: {} failed: {}{reset}", noun(verb), escape_controls(&error))
            }
        };
        self.write(&mut shown, &[line]);
    }
}

fn ing(verb: &str) -> &'static str {
    match verb {
        "create" => "Creating",
        "delete" => "Destroying",
        "replace" => "Replacing",
        "migrate" => "Migrating",
        _ => "Modifying",
    }
}

fn still(verb: &str) -> &'static str {
    match verb {
        "create" => "creating",
        "delete" => "destroying",
        "replace" => "replacing",
        "migrate" => "migrating",
        _ => "modifying",
    }
}

fn noun(verb: &str) -> &'static str {
    match verb {
        "create" => "Creation",
        "delete" => "Destruction",
        "replace" => "Replacement",
        "migrate" => "Migration",
        _ => "Modifications",
    }
}
