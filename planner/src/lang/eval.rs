//! Expression evaluation: literals, templates, operators, function calls and references to
//! variables, locals, `count.index` and other blocks. References to blocks become [`Value::Ref`]
//! edges (or the referenced attribute's value when it is known at plan time) and are recorded as
//! dependencies.

use std::collections::{BTreeMap, BTreeSet};

use hcl::edit::Span as _;
use hcl::edit::expr::{BinaryOperator, Expression, ObjectKey, TraversalOperator, UnaryOperator};
use hcl::edit::template::{Element, Template};

use crate::addr::Address;
use crate::diag::{Diagnostic, Diagnostics, FileId, Span};
use crate::kind::Kind;
use crate::schema::{self, suggest};
use crate::value::{Reference, Value};

/// What the evaluator knows about a declared block.
#[derive(Debug, Clone)]
pub struct ObjectEntry {
    /// `Some(n)` for a block with `count = n`.
    pub count: Option<u32>,
    /// Readable attributes of each instance, once the block is evaluated; empty until then.
    pub instances: Vec<BTreeMap<String, Value>>,
    /// The block failed to evaluate; references to it are unknown, without further errors.
    pub failed: bool,
}

/// The names an expression can see.
pub struct Scope<'a> {
    pub file: FileId,
    pub vars: &'a BTreeMap<String, Value>,
    pub locals: &'a BTreeMap<String, Value>,
    pub objects: &'a BTreeMap<(Kind, String), ObjectEntry>,
    /// `Some` inside an instance of a counted block.
    pub count_index: Option<u32>,
}

/// Evaluates expressions, gathering diagnostics and the addresses referenced.
pub struct Evaluator<'s, 'd> {
    pub scope: &'s Scope<'s>,
    pub diags: &'d mut Diagnostics,
    pub deps: BTreeSet<Address>,
}

/// An evaluation failed; its diagnostic is already recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed;

pub type Eval = Result<Value, Failed>;

impl<'s, 'd> Evaluator<'s, 'd> {
    pub fn new(scope: &'s Scope<'s>, diags: &'d mut Diagnostics) -> Self {
        Self { scope, diags, deps: BTreeSet::new() }
    }

    pub fn span(&self, expr: &Expression) -> Option<Span> {
        expr.span().map(|range| Span { file: self.scope.file, range })
    }

    pub fn error(&mut self, expr: &Expression, diagnostic: Diagnostic) -> Failed {
        let span = self.span(expr);
        self.diags.push(diagnostic.at(span));
        Failed
    }

    /// Evaluates `expr`. A list, object, call or template whose value outgrows `MAX_VALUE_SIZE`
    /// is an error at its place, before anything that doubles it (a local joining itself, twice
    /// over) can exhaust memory.
    pub fn eval(&mut self, expr: &Expression) -> Eval {
        let value = self.eval_unbounded(expr)?;
        let grows = matches!(
            expr,
            Expression::Array(_)
                | Expression::Object(_)
                | Expression::FuncCall(_)
                | Expression::StringTemplate(_)
                | Expression::HeredocTemplate(_)
        );
        if grows && exceeds(&value, MAX_VALUE_SIZE) {
            return Err(self.error(
                expr,
                Diagnostic::error(format!(
                    "this value is larger than a definition's values may be ({} MiB of text and elements)",
                    MAX_VALUE_SIZE >> 20
                ))
                .hint("a value that joins or merges itself grows twice as large each time"),
            ));
        }
        Ok(value)
    }

    fn eval_unbounded(&mut self, expr: &Expression) -> Eval {
        match expr {
            Expression::Null(_) => Ok(Value::Null),
            Expression::Bool(b) => Ok(Value::Bool(*b.value())),
            Expression::Number(n) => Ok(Value::Number(n.as_f64().unwrap_or(f64::NAN))),
            Expression::String(text) => Ok(Value::String(text.value().clone())),
            Expression::Array(items) => {
                let mut values = Vec::new();
                let mut failed = false;
                for item in items.iter() {
                    match self.eval(item) {
                        Ok(Value::List(inner)) if is_object_list(item) => values.extend(inner),
                        Ok(value) => values.push(value),
                        Err(Failed) => failed = true,
                    }
                }
                if failed { Err(Failed) } else { Ok(Value::List(values)) }
            }
            Expression::Object(object) => {
                let mut map = BTreeMap::new();
                let mut failed = false;
                for (key, value) in object.iter() {
                    let key = match key {
                        ObjectKey::Ident(ident) => ident.as_str().to_owned(),
                        ObjectKey::Expression(expr) => match self.eval(expr) {
                            Ok(Value::String(text)) => text,
                            Ok(other) => {
                                self.error(
                                    expr,
                                    Diagnostic::error(format!(
                                        "an object key must be a string, not {}",
                                        other.type_name()
                                    )),
                                );
                                failed = true;
                                continue;
                            }
                            Err(Failed) => {
                                failed = true;
                                continue;
                            }
                        },
                    };
                    match self.eval(value.expr()) {
                        Ok(value) => {
                            map.insert(key, value);
                        }
                        Err(Failed) => failed = true,
                    }
                }
                if failed { Err(Failed) } else { Ok(Value::Map(map)) }
            }
            Expression::StringTemplate(template) => self.template(expr, template),
            Expression::HeredocTemplate(heredoc) => self.template(expr, &heredoc.template),
            Expression::Parenthesis(inner) => self.eval(inner.inner()),
            Expression::Variable(ident) => self.root(expr, ident.as_str(), &[]),
            Expression::Traversal(traversal) => match &traversal.expr {
                Expression::Variable(ident) => self.root(expr, ident.as_str(), &traversal.operators),
                inner => {
                    let base = self.eval(inner)?;
                    self.navigate(expr, base, &traversal.operators)
                }
            },
            Expression::Conditional(cond) => match self.eval(&cond.cond_expr)? {
                Value::Bool(true) => self.eval(&cond.true_expr),
                Value::Bool(false) => self.eval(&cond.false_expr),
                Value::Unknown | Value::Ref(_) => {
                    self.eval(&cond.true_expr)?;
                    self.eval(&cond.false_expr)?;
                    Ok(Value::Unknown)
                }
                other => Err(self.error(
                    &cond.cond_expr,
                    Diagnostic::error(format!("a condition must be true or false, not {}", other.type_name())),
                )),
            },
            Expression::UnaryOp(op) => {
                let value = self.eval(&op.expr)?;
                match (op.operator.value(), value) {
                    (_, Value::Unknown) => Ok(Value::Unknown),
                    (UnaryOperator::Neg, Value::Number(n)) => Ok(Value::Number(-n)),
                    (UnaryOperator::Not, Value::Bool(b)) => Ok(Value::Bool(!b)),
                    (operator, other) => Err(self
                        .error(expr, Diagnostic::error(format!("`{operator}` cannot apply to {}", other.type_name())))),
                }
            }
            Expression::BinaryOp(op) => {
                let lhs = self.eval(&op.lhs_expr);
                let rhs = self.eval(&op.rhs_expr);
                let (lhs, rhs) = (lhs?, rhs?);
                self.binary(expr, *op.operator.value(), lhs, rhs)
            }
            Expression::FuncCall(call) => {
                let name = call.name.name.as_str().to_owned();
                let mut args = Vec::new();
                for arg in call.args.iter() {
                    args.push(self.eval(arg)?);
                }
                if args.iter().any(|arg| !arg.is_known()) {
                    return Ok(Value::Unknown);
                }
                match super::functions::call(&name, args) {
                    Ok(value) => Ok(value),
                    Err(message) => {
                        let hint = (message.starts_with("unknown function"))
                            .then(|| suggest(&name, super::functions::NAMES.iter().copied()))
                            .flatten()
                            .map(|s| format!("did you mean `{s}`?"))
                            .unwrap_or_else(|| format!("functions: {}", super::functions::NAMES.join(", ")));
                        Err(self.error(expr, Diagnostic::error(message).hint(hint)))
                    }
                }
            }
            Expression::ForExpr(_) => Err(self.error(
                expr,
                Diagnostic::error("`for` expressions are not supported")
                    .hint("use `count` on a block, or write the list out"),
            )),
        }
    }

    fn template(&mut self, expr: &Expression, template: &Template) -> Eval {
        let mut text = String::new();
        // Text and references to attributes known after apply: the template is rendered when
        // they are recorded. Anything else unknown makes the whole string unknown.
        let mut parts: Vec<Value> = Vec::new();
        let mut known = true;
        for element in template.iter() {
            match element {
                Element::Literal(literal) => text.push_str(literal.value()),
                Element::Interpolation(interpolation) => {
                    let value = self.eval(&interpolation.expr)?;
                    match value.to_template_text() {
                        Some(part) => text.push_str(&part),
                        None if matches!(&value, Value::Ref(r) if r.attribute.is_some())
                            || matches!(&value, Value::Sensitive(inner) if inner.is_known() || matches!(**inner, Value::Ref(_))) =>
                        {
                            parts.push(Value::String(std::mem::take(&mut text)));
                            parts.push(value);
                        }
                        None if !value.is_known() => known = false,
                        None => {
                            return Err(self.error(
                                &interpolation.expr,
                                Diagnostic::error(format!("cannot put {} into a string", value.type_name()))
                                    .hint("interpolate a string, number or bool; to read an attribute of a resource, name it (e.g. `server.app.ipv4_address`)"),
                            ));
                        }
                    }
                }
                Element::Directive(_) => {
                    return Err(self.error(
                        expr,
                        Diagnostic::error("template directives (`%{if}`, `%{for}`) are not supported")
                            .hint("compute the text with a conditional expression or in a local"),
                    ));
                }
            }
        }
        if !known {
            return Ok(Value::Unknown);
        }
        if parts.is_empty() {
            return Ok(Value::String(text));
        }
        parts.push(Value::String(text));
        parts.retain(|p| p.as_str() != Some(""));
        Ok(Value::Template(parts))
    }

    fn binary(&mut self, expr: &Expression, op: BinaryOperator, lhs: Value, rhs: Value) -> Eval {
        use BinaryOperator as B;
        if !lhs.is_known() || !rhs.is_known() {
            return Ok(Value::Unknown);
        }
        let value = match (op, &lhs, &rhs) {
            (B::Eq, _, _) => Value::Bool(lhs == rhs),
            (B::NotEq, _, _) => Value::Bool(lhs != rhs),
            (B::And, Value::Bool(a), Value::Bool(b)) => Value::Bool(*a && *b),
            (B::Or, Value::Bool(a), Value::Bool(b)) => Value::Bool(*a || *b),
            (_, Value::Number(a), Value::Number(b)) => match op {
                B::Plus => Value::Number(a + b),
                B::Minus => Value::Number(a - b),
                B::Mul => Value::Number(a * b),
                B::Div | B::Mod if *b == 0.0 => {
                    return Err(self.error(expr, Diagnostic::error("division by zero")));
                }
                B::Div => Value::Number(a / b),
                B::Mod => Value::Number(a % b),
                B::Less => Value::Bool(a < b),
                B::LessEq => Value::Bool(a <= b),
                B::Greater => Value::Bool(a > b),
                B::GreaterEq => Value::Bool(a >= b),
                _ => return Err(self.operand_error(expr, op, &lhs, &rhs)),
            },
            _ => return Err(self.operand_error(expr, op, &lhs, &rhs)),
        };
        Ok(value)
    }

    fn operand_error(&mut self, expr: &Expression, op: BinaryOperator, lhs: &Value, rhs: &Value) -> Failed {
        self.error(
            expr,
            Diagnostic::error(format!("`{}` cannot apply to {} and {}", op.as_str(), lhs.type_name(), rhs.type_name())),
        )
    }

    /// A traversal that starts at a name: `var.x`, `local.y`, `count.index`, `server.app[0].id`.
    fn root(&mut self, expr: &Expression, root: &str, ops: &[hcl::edit::Decorated<TraversalOperator>]) -> Eval {
        let first_attr = ops.first().and_then(|op| match op.value() {
            TraversalOperator::GetAttr(ident) => Some(ident.as_str().to_owned()),
            _ => None,
        });
        let rest = ops.get(1..).unwrap_or(&[]);
        match root {
            "var" | "local" => {
                let Some(name) = first_attr else {
                    return Err(self.error(expr, Diagnostic::error(format!("`{root}` needs a name: `{root}.NAME`"))));
                };
                let table = if root == "var" { self.scope.vars } else { self.scope.locals };
                let Some(value) = table.get(&name).cloned() else {
                    let what = if root == "var" { "variable" } else { "local value" };
                    let hint = suggest(&name, table.keys().map(String::as_str))
                        .map(|s| format!("did you mean `{root}.{s}`?"))
                        .unwrap_or_else(|| {
                            format!(
                                "declare it with `{}`",
                                if root == "var" {
                                    format!("variable \"{name}\" {{ default = ... }}")
                                } else {
                                    format!("locals {{ {name} = ... }}")
                                }
                            )
                        });
                    return Err(self.error(
                        expr,
                        Diagnostic::error(format!("reference to undeclared {what} `{root}.{name}`"))
                            .label("not declared")
                            .hint(hint),
                    ));
                };
                self.navigate(expr, value, rest)
            }
            "count" => match (first_attr.as_deref(), self.scope.count_index) {
                (Some("index"), Some(index)) => self.navigate(expr, Value::Number(f64::from(index)), rest),
                (Some("index"), None) => Err(self.error(
                    expr,
                    Diagnostic::error("`count.index` outside a block with `count`")
                        .hint("add `count = N` to this block, or use a fixed value"),
                )),
                _ => Err(self.error(expr, Diagnostic::error("`count` has one attribute: `count.index`"))),
            },
            _ => match root.parse::<Kind>() {
                Ok(kind) => {
                    let Some(name) = first_attr else {
                        return Err(
                            self.error(expr, Diagnostic::error(format!("`{root}` needs a name: `{root}.NAME`")))
                        );
                    };
                    self.object(expr, kind, &name, rest)
                }
                Err(()) => {
                    let candidates = Kind::ALL.iter().map(|k| k.as_str()).chain(["var", "local", "count"]);
                    Err(self.error(
                        expr,
                        Diagnostic::error(format!("unknown name `{root}`"))
                            .label("not a variable, local or block kind")
                            .hint_opt(suggest(root, candidates).map(|s| format!("did you mean `{s}`?"))),
                    ))
                }
            },
        }
    }

    fn object(
        &mut self,
        expr: &Expression,
        kind: Kind,
        name: &str,
        ops: &[hcl::edit::Decorated<TraversalOperator>],
    ) -> Eval {
        let Some(entry) = self.scope.objects.get(&(kind, name.to_owned())) else {
            let declared = self.scope.objects.keys().filter(|(k, _)| *k == kind).map(|(_, n)| n.as_str());
            let hint = suggest(name, declared)
                .map(|s| format!("did you mean `{kind}.{s}`?"))
                .unwrap_or_else(|| format!("no `{kind}` block is named `{name}` in this phase"));
            return Err(self.error(
                expr,
                Diagnostic::error(format!("reference to undeclared `{kind}.{name}`"))
                    .label("dangling reference")
                    .hint(hint),
            ));
        };
        let block = Address::new(kind, name, None);
        let (index, rest) = match (entry.count, ops.first().map(|op| op.value())) {
            (Some(count), Some(TraversalOperator::Index(index_expr))) => {
                let index = match self.eval(index_expr)? {
                    Value::Number(n) if n >= 0.0 && n.fract() == 0.0 => n as u32,
                    Value::Unknown => {
                        return Err(self.error(index_expr, Diagnostic::error("an index must be known before apply")));
                    }
                    other => {
                        return Err(self.error(
                            index_expr,
                            Diagnostic::error(format!("an index must be a whole number, not {}", other.type_name())),
                        ));
                    }
                };
                if index >= count {
                    return Err(self.error(
                        expr,
                        Diagnostic::error(format!("`{block}[{index}]` does not exist: `{block}` has count = {count}"))
                            .hint(format!("indexes run from 0 to {}", count.saturating_sub(1))),
                    ));
                }
                (Some(index), &ops[1..])
            }
            (Some(count), Some(TraversalOperator::AttrSplat(_) | TraversalOperator::FullSplat(_))) => {
                let mut items = Vec::new();
                for index in 0..count {
                    let value =
                        self.instance(expr, kind, entry, block.with_index(Some(index)), index as usize, &ops[1..])?;
                    items.push(value);
                }
                return Ok(Value::List(items));
            }
            (Some(count), None) => {
                let items = (0..count)
                    .map(|index| {
                        let address = block.with_index(Some(index));
                        self.deps.insert(address.clone());
                        Value::Ref(Reference { address, attribute: None })
                    })
                    .collect();
                return Ok(Value::List(items));
            }
            (Some(_), Some(_)) => {
                return Err(self.error(
                    expr,
                    Diagnostic::error(format!("`{block}` has `count`: pick an instance"))
                        .hint(format!("write `{block}[0]`, or `{block}[*].attribute` for all of them")),
                ));
            }
            (None, Some(TraversalOperator::Index(_) | TraversalOperator::LegacyIndex(_))) => {
                return Err(self.error(
                    expr,
                    Diagnostic::error(format!("`{block}` has no `count`, so it cannot be indexed"))
                        .hint(format!("write `{block}`")),
                ));
            }
            (None, _) => (None, ops),
        };
        let slot = index.unwrap_or(0) as usize;
        self.instance(expr, kind, entry, block.with_index(index), slot, rest)
    }

    fn instance(
        &mut self,
        expr: &Expression,
        kind: Kind,
        entry: &ObjectEntry,
        address: Address,
        slot: usize,
        ops: &[hcl::edit::Decorated<TraversalOperator>],
    ) -> Eval {
        self.deps.insert(address.clone());
        let Some(first) = ops.first() else {
            return Ok(Value::Ref(Reference { address, attribute: None }));
        };
        let TraversalOperator::GetAttr(attr) = first.value() else {
            return Err(
                self.error(expr, Diagnostic::error(format!("`{address}` is an object: read one of its attributes")))
            );
        };
        let attr = attr.as_str();
        if entry.failed {
            return Ok(Value::Unknown);
        }
        let known = entry.instances.get(slot).and_then(|attrs| attrs.get(attr));
        let value = match known {
            Some(value) if !matches!(value, Value::Null) => value.clone(),
            _ if schema::readable(kind).any(|name| name == attr) => {
                Value::Ref(Reference { address: address.clone(), attribute: Some(attr.to_owned()) })
            }
            _ => {
                return Err(self.error(
                    expr,
                    Diagnostic::error(format!("`{kind}` has no attribute `{attr}`"))
                        .hint_opt(suggest(attr, schema::readable(kind)).map(|s| format!("did you mean `{s}`?"))),
                ));
            }
        };
        self.navigate(expr, value, &ops[1..])
    }

    /// Applies `.attr` and `[index]` to a value.
    fn navigate(
        &mut self,
        expr: &Expression,
        mut value: Value,
        ops: &[hcl::edit::Decorated<TraversalOperator>],
    ) -> Eval {
        for op in ops {
            // An unknown scalar stays unknown; a list or object holding unknowns can still be read into.
            if matches!(value, Value::Unknown | Value::Ref(Reference { attribute: Some(_), .. })) {
                return Ok(Value::Unknown);
            }
            value = match (op.value(), value) {
                (TraversalOperator::GetAttr(key), Value::Map(mut map)) => match map.remove(key.as_str()) {
                    Some(inner) => inner,
                    None => {
                        return Err(self.error(
                            expr,
                            Diagnostic::error(format!("the object has no key `{}`", key.as_str())).hint_opt(
                                suggest(key.as_str(), map.keys().map(String::as_str))
                                    .map(|s| format!("did you mean `{s}`?")),
                            ),
                        ));
                    }
                },
                (TraversalOperator::Index(index_expr), Value::List(mut items)) => {
                    let index = self.eval(index_expr)?;
                    match index.as_u64() {
                        Some(i) if (i as usize) < items.len() => items.swap_remove(i as usize),
                        _ => {
                            return Err(self.error(
                                index_expr,
                                Diagnostic::error(format!(
                                    "index {index} is out of range for a list of {}",
                                    items.len()
                                )),
                            ));
                        }
                    }
                }
                (TraversalOperator::LegacyIndex(i), Value::List(mut items)) => {
                    let i = *i.value() as usize;
                    if i < items.len() {
                        items.swap_remove(i)
                    } else {
                        return Err(self.error(expr, Diagnostic::error(format!("index {i} is out of range"))));
                    }
                }
                (TraversalOperator::Index(index_expr), Value::Map(mut map)) => match self.eval(index_expr)? {
                    Value::String(key) if map.contains_key(&key) => map.remove(&key).unwrap_or(Value::Null),
                    other => {
                        return Err(self.error(index_expr, Diagnostic::error(format!("the object has no key {other}"))));
                    }
                },
                (_, other) => {
                    return Err(self.error(expr, Diagnostic::error(format!("cannot read into {}", other.type_name()))));
                }
            };
        }
        Ok(value)
    }
}

/// An array element that names a whole counted block (`[server.app]`) is flattened into the list,
/// so `[server.app, server.db]` lists every instance.
fn is_object_list(expr: &Expression) -> bool {
    match expr {
        Expression::Traversal(traversal) => {
            matches!(&traversal.expr, Expression::Variable(v) if v.as_str().parse::<Kind>().is_ok())
                && traversal.operators.len() == 1
        }
        _ => false,
    }
}

/// A name an expression refers to, found without evaluating it: the edges of the definition graph.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Root {
    Var(String),
    Local(String),
    /// A block; `true` when the expression reads one of its attributes (`server.app.location`)
    /// rather than naming it (`server.app`).
    Object(Kind, String, bool),
}

/// Every variable, local and block an expression mentions, with where.
pub fn roots(expr: &Expression, out: &mut Vec<(Root, Option<std::ops::Range<usize>>)>) {
    match expr {
        Expression::Traversal(traversal) => {
            if let Expression::Variable(ident) = &traversal.expr {
                if let Some(TraversalOperator::GetAttr(name)) = traversal.operators.first().map(|op| op.value()) {
                    let name = name.as_str().to_owned();
                    let root = match ident.as_str() {
                        "var" => Some(Root::Var(name)),
                        "local" => Some(Root::Local(name)),
                        other => other.parse::<Kind>().ok().map(|kind| {
                            // Anything after the name (and an index) reads into the object.
                            let reads = traversal.operators[1..].iter().any(|op| {
                                !matches!(op.value(), TraversalOperator::Index(_) | TraversalOperator::LegacyIndex(_))
                            });
                            Root::Object(kind, name, reads)
                        }),
                    };
                    if let Some(root) = root {
                        out.push((root, expr.span()));
                    }
                }
            } else {
                roots(&traversal.expr, out);
            }
            for op in &traversal.operators {
                if let TraversalOperator::Index(index) = op.value() {
                    roots(index, out);
                }
            }
        }
        Expression::Array(items) => items.iter().for_each(|item| roots(item, out)),
        Expression::Object(object) => {
            for (key, value) in object.iter() {
                if let ObjectKey::Expression(key) = key {
                    roots(key, out);
                }
                roots(value.expr(), out);
            }
        }
        Expression::StringTemplate(template) => template_roots(template, out),
        Expression::HeredocTemplate(heredoc) => template_roots(&heredoc.template, out),
        Expression::Parenthesis(inner) => roots(inner.inner(), out),
        Expression::Conditional(cond) => {
            roots(&cond.cond_expr, out);
            roots(&cond.true_expr, out);
            roots(&cond.false_expr, out);
        }
        Expression::UnaryOp(op) => roots(&op.expr, out),
        Expression::BinaryOp(op) => {
            roots(&op.lhs_expr, out);
            roots(&op.rhs_expr, out);
        }
        Expression::FuncCall(call) => call.args.iter().for_each(|arg| roots(arg, out)),
        _ => {}
    }
}

/// The most a value of a definition may weigh: its text in bytes, and 16 for each element of a
/// list or object. Ample for any real definition (a cloud-init is at most 32 KiB).
pub const MAX_VALUE_SIZE: usize = 16 << 20;

/// Whether `value` weighs more than `limit`; stops counting once it does.
fn exceeds(value: &Value, limit: usize) -> bool {
    /// Takes `n` from what is left; true once nothing is.
    fn take(left: &mut usize, n: usize) -> bool {
        match left.checked_sub(n) {
            Some(rest) => {
                *left = rest;
                false
            }
            None => true,
        }
    }
    fn weigh(value: &Value, left: &mut usize) -> bool {
        match value {
            Value::String(text) => take(left, text.len()),
            Value::List(items) => items.iter().any(|item| take(left, 16) || weigh(item, left)),
            Value::Map(map) => map.iter().any(|(key, item)| take(left, 16 + key.len()) || weigh(item, left)),
            Value::Sensitive(inner) => weigh(inner, left),
            _ => take(left, 16),
        }
    }
    let mut left = limit;
    weigh(value, &mut left)
}

fn template_roots(template: &Template, out: &mut Vec<(Root, Option<std::ops::Range<usize>>)>) {
    for element in template.iter() {
        if let Element::Interpolation(interpolation) = element {
            roots(&interpolation.expr, out);
        }
    }
}
