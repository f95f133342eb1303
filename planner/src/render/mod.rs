//! Renderers: pure functions from data (a plan, a cost comparison, a graph, diagnostics) to text.
//! They never change what they render.

pub mod compare;
pub mod diagnostics;
pub mod graph;
mod host;
pub mod markdown;
mod migration;

pub use migration::status as migration_status;
pub mod reference;
pub mod terminal;
pub mod text;

use serde::Serialize;

/// Pretty JSON with a trailing newline. Serializing our own types cannot fail; if it ever did,
/// the error is rendered as a JSON string rather than lost.
pub fn json<T: Serialize>(value: &T) -> String {
    match serde_json::to_string_pretty(value) {
        Ok(text) => text + "\n",
        Err(error) => format!("{{\"error\": {:?}}}\n", error.to_string()),
    }
}

/// The changes to show, in address order (the plan itself keeps them in apply order).
pub(crate) fn by_address(plan: &crate::plan::Plan) -> Vec<&crate::plan::ResourceChange> {
    let mut changes: Vec<_> = plan.resource_changes.iter().filter(|c| c.action != crate::plan::Action::NoOp).collect();
    changes.sort_by(|a, b| a.address.cmp(&b.address));
    changes
}

/// Terminal styling: ANSI colours only when asked for (a terminal, and `NO_COLOR` unset).
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        // A mark, not ESC: `terminal::for_terminal` makes it ESC once user text is escaped.
        let mark = terminal::COLOR_MARK;
        if self.color { format!("{mark}[{code}m{text}{mark}[0m") } else { text.to_owned() }
    }

    pub fn green(self, text: &str) -> String {
        self.paint("32", text)
    }

    pub fn red(self, text: &str) -> String {
        self.paint("31", text)
    }

    pub fn yellow(self, text: &str) -> String {
        self.paint("33", text)
    }

    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }
}
