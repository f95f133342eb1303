//! Diagnostics: what is wrong with a definition, where, and what to do about it. The parser, the
//! compiler and the validator return every diagnostic they find, never only the first.

use std::ops::Range;
use std::path::PathBuf;

use serde::Serialize;

/// An index into [`Sources`].
pub type FileId = usize;

/// A byte range in one source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub file: FileId,
    pub range: Range<usize>,
}

/// The text of every file read, so diagnostics can show snippets and line:column.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    files: Vec<SourceFile>,
}

#[derive(Debug, Clone)]
pub struct SourceFile {
    /// As the user should read it: relative to the folder terrace was pointed at.
    pub name: String,
    pub path: PathBuf,
    pub text: String,
}

impl Sources {
    pub fn add(&mut self, name: String, path: PathBuf, text: String) -> FileId {
        self.files.push(SourceFile { name, path, text });
        self.files.len() - 1
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id]
    }

    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding. `summary` is a short sentence; `detail` explains; `hint` says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub summary: String,
    pub detail: Option<String>,
    pub span: Option<Span>,
    /// The label printed under the snippet.
    pub label: Option<String>,
    /// More places in the same file, each with its label (the `{` an error never closes).
    pub related: Vec<(Span, String)>,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(summary: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            summary: summary.into(),
            detail: None,
            span: None,
            label: None,
            related: Vec::new(),
            hint: None,
        }
    }

    pub fn warning(summary: impl Into<String>) -> Self {
        Self { severity: Severity::Warning, ..Self::error(summary) }
    }

    pub fn at(mut self, span: Option<Span>) -> Self {
        self.span = span;
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn related(mut self, span: Span, label: impl Into<String>) -> Self {
        self.related.push((span, label.into()));
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn hint_opt(mut self, hint: Option<String>) -> Self {
        self.hint = hint.or(self.hint);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A list of diagnostics being gathered.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    pub fn extend(&mut self, other: impl IntoIterator<Item = Diagnostic>) {
        self.items.extend(other);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// In reading order: by file, then position; diagnostics without a place last.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by_key(|d| d.span.as_ref().map_or((usize::MAX, usize::MAX), |s| (s.file, s.range.start)));
        self.items.dedup();
        self.items
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// Diagnostics that say the same thing (severity, summary, detail, label and hint) in several
/// places, as one: the first, and the places of the others. Five thousand servers of a type with
/// restricted availability are one warning that names how many, not five thousand.
#[derive(Debug)]
pub struct Grouped<'d> {
    pub first: &'d Diagnostic,
    pub more: Vec<Option<&'d Span>>,
}

/// `diags` grouped by what they say, in the order each was first said.
pub fn grouped(diags: &[Diagnostic]) -> Vec<Grouped<'_>> {
    type Key<'d> = (Severity, &'d str, Option<&'d str>, Option<&'d str>, Option<&'d str>);
    let mut index: std::collections::HashMap<Key<'_>, usize> = std::collections::HashMap::new();
    let mut groups: Vec<Grouped<'_>> = Vec::new();
    for diagnostic in diags {
        let key = (
            diagnostic.severity,
            diagnostic.summary.as_str(),
            diagnostic.detail.as_deref(),
            diagnostic.label.as_deref(),
            diagnostic.hint.as_deref(),
        );
        match index.get(&key) {
            Some(&at) => groups[at].more.push(diagnostic.span.as_ref()),
            None => {
                index.insert(key, groups.len());
                groups.push(Grouped { first: diagnostic, more: Vec::new() });
            }
        }
    }
    groups
}

impl Sources {
    /// `file:line:column` of a span (1-based), for naming a place without its snippet.
    pub fn place(&self, span: &Span) -> String {
        let file = self.get(span.file);
        let before = &file.text[..span.range.start.min(file.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("{}:{line}:{column}", file.name)
    }
}

impl Grouped<'_> {
    /// `the same in 1999 more places: p.hcl:6:3, p.hcl:10:3, p.hcl:14:3 and 1996 more`, or `None`.
    pub fn more_places(&self, sources: &Sources) -> Option<String> {
        const SHOWN: usize = 3;
        if self.more.is_empty() {
            return None;
        }
        let named: Vec<String> = self.more.iter().flatten().take(SHOWN).map(|span| sources.place(span)).collect();
        let rest = self.more.len() - named.len();
        let plural = if self.more.len() == 1 { "" } else { "s" };
        let mut text = format!("the same in {} more place{plural}", self.more.len());
        if !named.is_empty() {
            text.push_str(&format!(": {}", named.join(", ")));
            if rest > 0 {
                text.push_str(&format!(" and {rest} more"));
            }
        }
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_diagnostic_in_several_places_is_one_group_naming_them() {
        let mut sources = Sources::default();
        let file = sources.add("p.hcl".into(), PathBuf::from("p.hcl"), "a\nbb b\nc\n".into());
        let at = |start: usize| Some(Span { file, range: start..start + 1 });
        let diags = vec![
            Diagnostic::warning("same").at(at(0)),
            Diagnostic::error("other").at(at(2)),
            Diagnostic::warning("same").at(at(5)),
            Diagnostic::warning("same").hint("but with a hint").at(at(7)),
            Diagnostic::warning("same"),
        ];
        let groups = grouped(&diags);
        assert_eq!(groups.len(), 3, "{groups:?}");
        assert_eq!(groups[0].more.len(), 2);
        assert_eq!(groups[0].more_places(&sources).as_deref(), Some("the same in 2 more places: p.hcl:2:4 and 1 more"));
        assert_eq!(groups[1].more_places(&sources), None);
        assert_eq!(sources.place(&Span { file, range: 7..8 }), "p.hcl:3:1");
    }
}
