//! Evaluating one block against its kind's schema: `count` instances, attribute types, defaults,
//! nested blocks, `lifecycle` and `depends_on`. Primitives become resources here; composites are
//! handed to the expansion.

use std::collections::{BTreeMap, BTreeSet};

use hcl::edit::Span as _;
use hcl::edit::expr::ObjectKey;
use hcl::edit::structure::{Body, Structure};

use super::State;
use super::merge::MergedBlock;
use super::types::coerce;
use crate::addr::Address;
use crate::diag::{Diagnostic, Span};
use crate::kind::Kind;
use crate::lang::Expression;
use crate::lang::eval::{Evaluator, Failed, Scope};
use crate::model::{Lifecycle, Origin, Resource};
use crate::schema::{self, BlockSchema, Default as Dflt, META_ATTRS, Ty, suggest};
use crate::value::Value;

/// The most instances one `count` may make.
pub(super) const MAX_COUNT: u32 = 10_000;

/// The most servers one `postgres` or `redis` block makes, all its instances and replicas
/// together: checked before any is expanded.
pub const MAX_SERVICE_SERVERS: u64 = 10_000;

/// One evaluated instance of a block.
pub(super) struct Instance {
    pub address: Address,
    pub attrs: BTreeMap<String, Value>,
    pub origin: Origin,
    pub lifecycle: Lifecycle,
    pub deps: BTreeSet<Address>,
}

impl State<'_> {
    pub(super) fn block(&mut self, block: &MergedBlock<'_>) {
        let def = &block.def;
        let key = (def.kind, def.name.clone());
        let file = def.span.file;
        let count = match def.body.attributes().find(|attr| attr.key.as_str() == "count") {
            None => Ok(None),
            Some(attr) => {
                let scope =
                    Scope { file, vars: &self.vars, locals: &self.locals, objects: &self.objects, count_index: None };
                let mut eval = Evaluator::new(&scope, &mut self.diags);
                match eval.eval(&attr.value) {
                    Ok(Value::Number(n)) if n >= 0.0 && n.fract() == 0.0 && n <= f64::from(MAX_COUNT) => {
                        Ok(Some(n as u32))
                    }
                    Ok(value) if !value.is_known() => Err(eval.error(
                        &attr.value,
                        Diagnostic::error("`count` must be known before apply")
                            .hint("compute count from variables and locals, not from resource attributes"),
                    )),
                    Ok(value) => Err(eval.error(
                        &attr.value,
                        Diagnostic::error(format!("`count` must be a whole number from 0 to {MAX_COUNT}, not {value}")),
                    )),
                    Err(failed) => Err(failed),
                }
            }
        };
        let Ok(count) = count else {
            if let Some(entry) = self.objects.get_mut(&key) {
                entry.failed = true;
            }
            return;
        };
        if let Some(entry) = self.objects.get_mut(&key) {
            entry.count = count;
        }
        let indices: Vec<Option<u32>> = match count {
            Some(n) => (0..n).map(Some).collect(),
            None => vec![None],
        };
        let mut instances = Vec::new();
        let mut failed = false;
        for index in indices {
            let address = Address::new(def.kind, def.name.clone(), index);
            match self.instance(def.kind, &def.body, &def.span, address, index) {
                Some(instance) => instances.push(instance),
                None => failed = true,
            }
        }
        // A service's servers are counted before any is expanded: `count` and `replicas` are each
        // within their domain, but together they could still ask for more than any stack holds.
        let servers: u64 = if def.kind.is_composite() {
            instances.iter().map(|i| 1 + i.attrs.get("replicas").and_then(Value::as_u64).unwrap_or(0)).sum()
        } else {
            0
        };
        if servers > MAX_SERVICE_SERVERS {
            let span = def
                .body
                .attributes()
                .find(|a| a.key.as_str() == "count")
                .and_then(|a| a.span())
                .map(|range| Span { file, range })
                .unwrap_or_else(|| def.span.clone());
            self.diags.push(
                Diagnostic::error(format!(
                    "`{}.{}` would make {servers} servers (count times 1 + replicas); a block makes at most \
                     {MAX_SERVICE_SERVERS}",
                    def.kind, def.name
                ))
                .at(Some(span))
                .hint("lower `count` or `replicas`"),
            );
            instances.clear();
            failed = true;
        }
        let mut readable = Vec::new();
        for instance in instances {
            if def.kind.is_composite() {
                match self.expand(instance) {
                    Some(exports) => readable.push(exports),
                    None => failed = true,
                }
            } else {
                let mut attrs = instance.attrs;
                attrs.insert("name".into(), Value::String(self.name_of(&attrs, &instance.address)));
                readable.push(if self.kept.contains(&key) { attrs.clone() } else { BTreeMap::new() });
                self.deps.insert(instance.address.clone(), instance.deps);
                self.resources.push(Resource {
                    address: instance.address,
                    kind: def.kind,
                    attrs,
                    composite: None,
                    lifecycle: instance.lifecycle,
                    origin: instance.origin,
                });
            }
        }
        if def.kind == Kind::Postgres && count.is_some() {
            self.share_shard_map(&mut readable);
        }
        if let Some(entry) = self.objects.get_mut(&key) {
            entry.instances = readable;
            entry.failed = failed;
        }
    }

    /// The Hetzner name: the `name` attribute, or one made of the stack and the address
    /// (`fastbots-app-0`, `fastbots-main-replica-0`): unique per kind, readable in the console.
    pub(super) fn name_of(&self, attrs: &BTreeMap<String, Value>, address: &Address) -> String {
        if let Some(Value::String(name)) = attrs.get("name") {
            return name.clone();
        }
        let mut parts = vec![self.stack.to_owned()];
        for segment in address.segments() {
            parts.push(segment.name.clone());
            if let Some(index) = segment.index {
                parts.push(index.to_string());
            }
        }
        parts.join("-").replace('_', "-")
    }

    fn instance(
        &mut self,
        kind: Kind,
        body: &Body,
        block_span: &Span,
        address: Address,
        index: Option<u32>,
    ) -> Option<Instance> {
        let scope = Scope {
            file: block_span.file,
            vars: &self.vars,
            locals: &self.locals,
            objects: &self.objects,
            count_index: index,
        };
        let mut eval = Evaluator::new(&scope, &mut self.diags);
        let mut reader = BodyReader {
            eval: &mut eval,
            origin: Origin { block: Some(block_span.clone()), attrs: Vec::new() },
            failed: false,
            lifecycle: Lifecycle::default(),
            depends_on: BTreeSet::new(),
            kind,
            address: &address,
        };
        let attrs = reader.body(body, schema::of(kind), "", Some(block_span), None);
        let BodyReader { origin, failed, lifecycle, depends_on, .. } = reader;
        let mut deps = std::mem::take(&mut eval.deps);
        deps.extend(depends_on);
        (!failed).then_some(Instance { address, attrs, origin, lifecycle, deps })
    }
}

struct BodyReader<'r, 's, 'd> {
    eval: &'r mut Evaluator<'s, 'd>,
    origin: Origin,
    failed: bool,
    lifecycle: Lifecycle,
    depends_on: BTreeSet<Address>,
    kind: Kind,
    address: &'r Address,
}

impl BodyReader<'_, '_, '_> {
    fn span(&self, range: Option<std::ops::Range<usize>>) -> Option<Span> {
        range.map(|range| Span { file: self.eval.scope.file, range })
    }

    fn error(&mut self, diagnostic: Diagnostic) {
        self.eval.diags.push(diagnostic);
        self.failed = true;
    }

    /// Reads a body; `top` is the block's own span when this is the block itself, `nested_span`
    /// the nested block's header otherwise (where a missing required attribute is reported).
    fn body(
        &mut self,
        body: &Body,
        schema: &BlockSchema,
        path: &str,
        top: Option<&Span>,
        nested_span: Option<&Span>,
    ) -> BTreeMap<String, Value> {
        let mut attrs = BTreeMap::new();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let what = if path.is_empty() { self.kind.to_string() } else { path.trim_end_matches('.').to_owned() };
        for structure in body.iter() {
            match structure {
                Structure::Attribute(attr) => {
                    let key = attr.key.as_str();
                    let key_span = self.span(attr.key.span());
                    if !seen.insert(key) {
                        self.error(
                            Diagnostic::error(format!("attribute `{key}` is set twice"))
                                .at(key_span)
                                .hint("keep one of them"),
                        );
                        continue;
                    }
                    if top.is_some() && key == "count" {
                        continue;
                    }
                    if top.is_some() && key == "depends_on" {
                        self.depends_on(&attr.value);
                        continue;
                    }
                    let Some(spec) = schema.attr(key) else {
                        self.unknown(key, key_span, schema, &what, top.is_some(), false);
                        continue;
                    };
                    let full = format!("{path}{key}");
                    if let Some(span) = self.span(attr.value.span()) {
                        self.origin.attrs.push((full.clone(), span));
                    }
                    if let (Ty::Labels, Expression::Object(object)) = (spec.ty, &attr.value) {
                        // Each label's key, so that a bad label is pointed at exactly.
                        for (label, _) in object.iter() {
                            let name = match label {
                                ObjectKey::Ident(ident) => ident.as_str().to_owned(),
                                ObjectKey::Expression(Expression::String(text)) => text.value().clone(),
                                ObjectKey::Expression(_) => continue,
                            };
                            if let Some(span) = self.span(label.span()) {
                                self.origin.attrs.push((format!("{full}.{name}"), span));
                            }
                        }
                    }
                    match self.eval.eval(&attr.value) {
                        Ok(value) => match coerce(value, spec.ty) {
                            Ok(value) if spec.out_of_range(&value) => {
                                let span = self.span(attr.value.span());
                                self.error(
                                    Diagnostic::error(format!(
                                        "`{full}` must be {}, not {}",
                                        spec.describe(),
                                        // Beyond 2^53 a number is no longer the one written.
                                        match value.as_f64() {
                                            Some(n) if n.abs() < 9_007_199_254_740_992.0 => value.to_string(),
                                            _ if value.as_f64().is_some_and(f64::is_sign_negative) => {
                                                "a number that far below it".to_owned()
                                            }
                                            _ => "a number that large".to_owned(),
                                        }
                                    ))
                                    .at(span),
                                );
                            }
                            Ok(value) => {
                                let value = if spec.sensitive { Value::Sensitive(Box::new(value)) } else { value };
                                attrs.insert(key.to_owned(), value);
                            }
                            Err(error) => {
                                let span = self.span(attr.value.span());
                                self.error(error.diagnostic(&full, spec.ty).at(span));
                            }
                        },
                        Err(Failed) => self.failed = true,
                    }
                }
                Structure::Block(inner) => {
                    let ident = inner.ident.as_str();
                    let ident_span = self.span(inner.ident.span());
                    if top.is_some() && ident == "lifecycle" {
                        self.lifecycle(&inner.body);
                        continue;
                    }
                    let Some(nested) = schema.block(ident) else {
                        self.unknown(ident, ident_span, schema, &what, top.is_some(), true);
                        continue;
                    };
                    if !inner.labels.is_empty() {
                        let span = self.span(inner.labels[0].span());
                        self.error(Diagnostic::error(format!("`{ident}` blocks take no label")).at(span));
                    }
                    let position = match attrs.get(ident) {
                        Some(Value::List(items)) => items.len(),
                        Some(_) => 1,
                        None => 0,
                    };
                    if !nested.repeated && position > 0 {
                        self.error(
                            Diagnostic::error(format!("`{ident}` may appear once in `{what}`"))
                                .at(ident_span)
                                .hint("merge the two blocks into one"),
                        );
                        continue;
                    }
                    let inner_path =
                        if nested.repeated { format!("{path}{ident}[{position}].") } else { format!("{path}{ident}.") };
                    let value =
                        Value::Map(self.body(&inner.body, nested.schema, &inner_path, None, ident_span.as_ref()));
                    if let Some(span) = ident_span {
                        self.origin.attrs.push((inner_path.trim_end_matches('.').to_owned(), span));
                    }
                    if nested.repeated {
                        if let Value::List(items) =
                            attrs.entry(ident.to_owned()).or_insert_with(|| Value::List(Vec::new()))
                        {
                            items.push(value);
                        }
                    } else {
                        attrs.insert(ident.to_owned(), value);
                    }
                }
            }
        }
        apply_defaults(schema, &mut attrs);
        // Required means written: a written attribute whose value failed is reported once, there.
        let required_at = if top.is_some() { top.cloned() } else { nested_span.cloned() };
        if let Some(span) = required_at {
            self.check_required(schema, &seen, path, &span);
        }
        attrs
    }

    fn check_required(&mut self, schema: &BlockSchema, written: &BTreeSet<&str>, path: &str, span: &Span) {
        for spec in schema.attrs.iter().filter(|spec| spec.required) {
            if !written.contains(spec.name) {
                let in_what = if path.is_empty() {
                    format!("`{}`", self.address)
                } else {
                    format!("`{}`", path.trim_end_matches('.'))
                };
                self.error(
                    Diagnostic::error(format!("{in_what} is missing the required attribute `{}`", spec.name))
                        .at(Some(span.clone()))
                        .hint(format!("add `{} = ...` ({})", spec.name, spec.ty.describe())),
                );
            }
        }
    }

    fn unknown(&mut self, name: &str, span: Option<Span>, schema: &BlockSchema, what: &str, top: bool, is_block: bool) {
        let meta = if top { META_ATTRS.iter().map(|a| a.name).chain(["lifecycle"]).collect() } else { Vec::new() };
        let candidates: Vec<&str> = schema.names().chain(meta).collect();
        let hint = if !is_block && schema.block(name).is_some() {
            format!("`{name}` is a block: write `{name} {{ ... }}`")
        } else if is_block && schema.attr(name).is_some() {
            format!("`{name}` is an attribute: write `{name} = ...`")
        } else if let Some(similar) = suggest(name, candidates.iter().copied()) {
            format!("did you mean `{similar}`?")
        } else {
            format!("`{what}` accepts: {}", candidates.join(", "))
        };
        let noun = if is_block { "block" } else { "attribute" };
        self.error(
            Diagnostic::error(format!("unknown {noun} `{name}` in `{what}`"))
                .at(span)
                .label(format!("`{what}` has no {noun} of this name"))
                .hint(hint),
        );
    }

    fn depends_on(&mut self, expr: &Expression) {
        match self.eval.eval(expr) {
            Ok(value) => match coerce(value, Ty::Refs(&Kind::ALL)) {
                Ok(Value::List(items)) => {
                    for item in items {
                        if let Value::Ref(reference) = item {
                            self.depends_on.insert(reference.address);
                        }
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    let span = self.span(expr.span());
                    let diagnostic = error
                        .diagnostic("depends_on", Ty::Refs(&Kind::ALL))
                        .hint("list blocks: `depends_on = [server.db, network.private]`");
                    self.error(diagnostic.at(span));
                }
            },
            Err(Failed) => self.failed = true,
        }
    }

    /// `lifecycle { prevent_destroy, create_before_destroy, ignore_changes = [attr, ...] }`.
    fn lifecycle(&mut self, body: &Body) {
        for structure in body.iter() {
            let Structure::Attribute(attr) = structure else {
                let Structure::Block(inner) = structure else {
                    continue;
                };
                let span = self.span(inner.ident.span());
                self.error(
                    Diagnostic::error(format!("unknown block `{}` in `lifecycle`", inner.ident.as_str())).at(span),
                );
                continue;
            };
            let key = attr.key.as_str();
            let value_span = self.span(attr.value.span());
            match key {
                "prevent_destroy" | "create_before_destroy" => match &attr.value {
                    Expression::Bool(flag) => {
                        let flag = *flag.value();
                        if key == "prevent_destroy" {
                            self.lifecycle.prevent_destroy = flag;
                        } else {
                            self.lifecycle.create_before_destroy = flag;
                        }
                    }
                    _ => self.error(
                        Diagnostic::error(format!("wrong type for `lifecycle.{key}`: expected true or false"))
                            .at(value_span),
                    ),
                },
                "ignore_changes" => {
                    let Expression::Array(items) = &attr.value else {
                        self.error(
                            Diagnostic::error("`ignore_changes` must be a list of attribute names")
                                .at(value_span)
                                .hint("write `ignore_changes = [user_data, labels]`"),
                        );
                        continue;
                    };
                    for item in items.iter() {
                        let name = match item {
                            Expression::Variable(ident) => ident.as_str().to_owned(),
                            Expression::String(text) => text.value().clone(),
                            _ => String::new(),
                        };
                        let schema = schema::of(self.kind);
                        if name == "all" || schema.attr(&name).is_some() || schema.block(&name).is_some() {
                            self.lifecycle.ignore_changes.push(name);
                        } else {
                            let span = self.span(item.span());
                            self.error(
                                Diagnostic::error(format!(
                                    "`ignore_changes` names `{name}`, which `{}` does not have",
                                    self.kind
                                ))
                                .at(span)
                                .hint_opt(suggest(&name, schema.names()).map(|s| format!("did you mean `{s}`?"))),
                            );
                        }
                    }
                }
                _ => {
                    let span = self.span(attr.key.span());
                    let known = ["prevent_destroy", "create_before_destroy", "ignore_changes"];
                    self.error(
                        Diagnostic::error(format!("unknown attribute `{key}` in `lifecycle`"))
                            .at(span)
                            .hint_opt(suggest(key, known).map(|s| format!("did you mean `{s}`?"))),
                    );
                }
            }
        }
    }
}

/// Fills in the schema's defaults for attributes that were not written.
pub(super) fn apply_defaults(schema: &BlockSchema, attrs: &mut BTreeMap<String, Value>) {
    for spec in schema.attrs {
        if let (false, Some(default)) = (attrs.contains_key(spec.name), spec.default) {
            let value = match default {
                Dflt::Str(text) => Value::str(text),
                Dflt::Int(n) => Value::Number(n as f64),
                Dflt::Bool(b) => Value::Bool(b),
            };
            attrs.insert(spec.name.to_owned(), value);
        }
    }
}
