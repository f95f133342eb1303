//! Text that reaches a terminal: what a definition or a state holds (a block label, a string with
//! `\u001b` in it) must not drive the terminal, so every control character but newline and tab is
//! shown as an escape (`\u{1b}`). The renderers' own colours are written as a marker that only
//! `for_terminal` turns into ESC, after the escaping, so they survive it and nothing else does.
//! Written by hand: it is a dozen lines over `char::is_control`, no crate's job.

use std::borrow::Cow;

/// What `Style` writes where a colour sequence starts (a private-use character).
pub(super) const COLOR_MARK: char = '\u{F8FE}';

fn unsafe_control(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// `text` with every control character but newline and tab written as `\u{..}`.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_control) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars().map(|c| if unsafe_control(c) { c.escape_unicode().to_string() } else { c.to_string() }).collect(),
    )
}

/// `text` with every control character but newline, tab and carriage return replaced by as many
/// `?` as it has bytes: for source text under byte spans, which must keep its length.
pub fn mask_controls(text: &str) -> Cow<'_, str> {
    let masked = |c: char| unsafe_control(c) && c != '\r';
    if !text.chars().any(masked) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.chars().map(|c| if masked(c) { "?".repeat(c.len_utf8()) } else { c.to_string() }).collect())
}

/// The colours `Style` writes (SGR: green, red, yellow, bold, dim, reset). A mark starts only
/// these, so text that holds the mark itself can at most colour, never move the cursor, clear the
/// screen or set a title.
const COLORS: [&str; 6] = ["[32m", "[31m", "[33m", "[1m", "[2m", "[0m"];

/// A rendering for the terminal: controls escaped, then the renderers' colour marks made ESC.
pub fn for_terminal(text: &str) -> String {
    let escaped = escape_controls(text);
    let mut out = String::with_capacity(escaped.len());
    let mut rest: &str = &escaped;
    while let Some(at) = rest.find(COLOR_MARK) {
        out.push_str(&rest[..at]);
        rest = &rest[at + COLOR_MARK.len_utf8()..];
        out.push(if COLORS.iter().any(|c| rest.starts_with(c)) { '\x1b' } else { COLOR_MARK });
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Style;

    #[test]
    fn controls_are_shown_and_only_our_colours_reach_the_terminal() {
        let label = "web\u{1b}]0;owned\u{7}\u{9b}31m";
        assert_eq!(escape_controls(label), "web\\u{1b}]0;owned\\u{7}\\u{9b}31m");
        assert_eq!(escape_controls("a\n\tb"), "a\n\tb", "newline and tab stay");
        assert_eq!(mask_controls("x = \"\u{1b}\u{9b}\"\r\n").len(), "x = \"\u{1b}\u{9b}\"\r\n".len());
        assert_eq!(mask_controls("x = \"\u{1b}\u{9b}\"\r\n"), "x = \"???\"\r\n");
        let painted = Style { color: true }.red(label);
        let shown = for_terminal(&painted);
        assert_eq!(shown, "\x1b[31mweb\\u{1b}]0;owned\\u{7}\\u{9b}31m\x1b[0m");
        assert_eq!(shown.matches('\x1b').count(), 2, "only the colour's own ESCs: {shown:?}");
        assert_eq!(for_terminal(&Style { color: false }.red(label)), escape_controls(label));
        // Text holding the mark itself starts no other sequence.
        let forged = format!("{COLOR_MARK}[2J{COLOR_MARK}]0;title");
        assert!(!for_terminal(&forged).contains('\x1b'), "{forged:?}");
    }
}
