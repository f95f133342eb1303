//! Diagnostics as miette reports: the summary, `file:line:column`, the offending snippet with its
//! labels, and the hint.

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};

use crate::diag::{Diagnostic, Severity, Sources};

/// Renders diagnostics, each followed by a blank line, then a count line when there are errors. Those
/// that say the same thing in several places are rendered once, naming the other places
/// (`diag::grouped`); the count line counts every one.
pub fn render(diags: &[Diagnostic], sources: &Sources, color: bool) -> String {
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100).with_links(false);
    let mut out = String::new();
    for group in crate::diag::grouped(diags) {
        let diagnostic = group.first;
        let mut report = Report::new(diagnostic, sources);
        if let Some(more) = group.more_places(sources) {
            report.message.push('\n');
            report.message.push_str(&super::terminal::escape_controls(&more));
        }
        let mut text = String::new();
        if handler.render_report(&mut text, &report).is_err() {
            text = format!(
                "{}: {}\n",
                severity_word(diagnostic.severity),
                super::terminal::escape_controls(&diagnostic.summary)
            );
        }
        out.push_str(&text);
        out.push('\n');
    }
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    if errors > 0 {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        out.push_str(&format!("{errors} error{}", plural(errors)));
        if warnings > 0 {
            out.push_str(&format!(", {warnings} warning{}", plural(warnings)));
        }
        out.push('\n');
    }
    out
}

fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// A diagnostic with its source, in the shape miette renders.
#[derive(Debug)]
struct Report {
    message: String,
    severity: miette::Severity,
    help: Option<String>,
    source: Option<NamedSource<String>>,
    labels: Vec<LabeledSpan>,
}

impl Report {
    fn new(diagnostic: &Diagnostic, sources: &Sources) -> Self {
        // What the definition holds is shown, never sent to the terminal as it is.
        let escape = |text: &str| super::terminal::escape_controls(text).into_owned();
        let mut message = format!("{}: {}", severity_word(diagnostic.severity), escape(&diagnostic.summary));
        if let Some(detail) = &diagnostic.detail {
            message.push('\n');
            message.push_str(&escape(detail));
        }
        let mut source = None;
        let mut labels = Vec::new();
        if let Some(span) = &diagnostic.span {
            let file = sources.get(span.file);
            let clamp = |range: &std::ops::Range<usize>| {
                let start = range.start.min(file.text.len());
                SourceSpan::new(start.into(), range.end.min(file.text.len()).saturating_sub(start))
            };
            let text = super::terminal::mask_controls(&file.text).into_owned();
            source = Some(NamedSource::new(escape(&file.name), text).with_language("hcl"));
            let label = diagnostic.label.as_deref().map(escape);
            labels.push(LabeledSpan::new_primary_with_span(label, clamp(&span.range)));
            for (related, label) in diagnostic.related.iter().filter(|(r, _)| r.file == span.file) {
                labels.push(LabeledSpan::new_with_span(Some(escape(label)), clamp(&related.range)));
            }
        }
        Self {
            message,
            severity: match diagnostic.severity {
                Severity::Error => miette::Severity::Error,
                Severity::Warning => miette::Severity::Warning,
            },
            help: diagnostic.hint.as_deref().map(escape),
            source,
            labels,
        }
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help.as_ref().map(|help| Box::new(help) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.labels.iter().cloned()))
    }
}
