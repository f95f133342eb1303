//! `terrace cost`: every phase of a stack side by side, like the seed's decision matrix.

use rust_decimal::Decimal;
use serde::Serialize;
use terrace_providers::pricing::Catalog;

use crate::addr::Address;
use crate::cost::Pricer;
use crate::model::Compiled;
use crate::plan::{FORMAT_VERSION, PricingInfo};

#[derive(Debug, Clone, Serialize)]
pub struct PhaseCost {
    pub name: String,
    pub users: Option<String>,
    pub description: Option<String>,
    /// Hetzner objects (primitives) in the phase.
    pub resources: usize,
    /// Services built by composites (`postgres`, `redis`).
    pub services: usize,
    #[serde(with = "rust_decimal::serde::str")]
    pub monthly_net: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub monthly_gross: Decimal,
    /// Change from the previous phase; `None` for the first.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub delta_net: Option<Decimal>,
    /// Resources whose price the catalog lacks: the sums leave them out.
    pub unknown: Vec<Address>,
    pub budget_monthly: Option<f64>,
    pub over_budget: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub format_version: &'static str,
    pub stack: String,
    pub pricing: PricingInfo,
    pub phases: Vec<PhaseCost>,
}

/// Compares compiled phases, in the order given (the stack's order).
pub fn compare(stack: &str, phases: &[Compiled], catalog: &Catalog) -> Comparison {
    let mut out: Vec<PhaseCost> = Vec::new();
    for compiled in phases {
        let resources: Vec<_> = compiled.resources.iter().map(|(_, r)| r).collect();
        let pricer = Pricer::new(catalog, resources.iter().copied());
        let mut total = Decimal::ZERO;
        let mut unknown = Vec::new();
        for resource in &resources {
            match pricer.cost(resource).monthly_net {
                Some(net) => total += net,
                None => unknown.push(resource.address.clone()),
            }
        }
        let delta_net = out.last().map(|previous| total - previous.monthly_net);
        let budget = compiled.phase.budget_monthly;
        let over_budget = budget.is_some_and(|b| Decimal::try_from(b).is_ok_and(|b| total > b));
        out.push(PhaseCost {
            name: compiled.phase.name.clone(),
            users: compiled.phase.users.clone(),
            description: compiled.phase.description.clone(),
            // Hetzner objects: secrets are terrace's own.
            resources: resources.iter().filter(|r| !r.kind.is_terrace_own()).count(),
            services: compiled.composites.len(),
            monthly_net: total,
            monthly_gross: catalog.gross(total),
            delta_net,
            unknown,
            budget_monthly: budget,
            over_budget,
        });
    }
    Comparison {
        format_version: FORMAT_VERSION,
        stack: stack.to_owned(),
        pricing: PricingInfo::of(catalog),
        phases: out,
    }
}
