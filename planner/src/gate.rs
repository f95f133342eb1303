//! Cost gates for pipelines: a phase's `budget_monthly`, and `--max-cost-increase` (EUR per month,
//! or a percentage of the current monthly cost) that a plan must not exceed.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Serialize;

use crate::addr::Address;
use crate::cost::{delta, money};
use crate::plan::Plan;

/// The most a plan may add to the monthly net cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxIncrease {
    /// EUR per month.
    Absolute(Decimal),
    /// A percentage of the monthly cost before the plan.
    Percent(Decimal),
}

impl FromStr for MaxIncrease {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (number, percent) = match text.strip_suffix('%') {
            Some(number) => (number.trim(), true),
            None => (text.trim_start_matches('€').trim_end_matches("EUR").trim(), false),
        };
        let value: Decimal =
            number.parse().map_err(|_| format!("`{text}` is not an amount of EUR (25) or a percentage (10%)"))?;
        if value.is_sign_negative() {
            return Err(format!("`{text}` is negative"));
        }
        Ok(if percent { MaxIncrease::Percent(value) } else { MaxIncrease::Absolute(value) })
    }
}

/// A plan that raises the monthly cost more than allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Breach {
    pub increase: Decimal,
    pub limit: Decimal,
    /// The resources whose monthly cost rises, largest rise first.
    pub resources: Vec<(Address, Decimal)>,
}

impl std::fmt::Display for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let behind: Vec<String> = self.resources.iter().map(|(a, d)| format!("{a} ({})", delta(*d))).collect();
        write!(
            f,
            "the plan raises the monthly cost by {} net, more than the allowed {}; behind it: {}",
            delta(self.increase),
            money(self.limit),
            if behind.is_empty() { "no single resource".to_owned() } else { behind.join(", ") }
        )
    }
}

/// Checks a plan against `--max-cost-increase`.
pub fn check(plan: &Plan, max: MaxIncrease) -> Option<Breach> {
    let increase = plan.cost.delta_net;
    let limit = match max {
        MaxIncrease::Absolute(amount) => amount,
        MaxIncrease::Percent(percent) => (plan.cost.before_net * percent / Decimal::ONE_HUNDRED).round_dp(4),
    };
    if increase <= limit {
        return None;
    }
    let mut resources: Vec<(Address, Decimal)> = plan
        .resource_changes
        .iter()
        .filter_map(|change| {
            let before = change.cost_before.as_ref().and_then(|c| c.monthly_net).unwrap_or_default();
            let after = change.cost_after.as_ref().and_then(|c| c.monthly_net).unwrap_or_default();
            (after > before).then(|| (change.address.clone(), after - before))
        })
        .collect();
    resources.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Some(Breach { increase, limit, resources })
}

/// The phase's budget and whether the plan's monthly cost is over it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Budget {
    pub budget_monthly: f64,
    #[serde(with = "rust_decimal::serde::str")]
    pub after_net: Decimal,
    pub over: bool,
}

pub fn budget(plan: &Plan) -> Option<Budget> {
    let budget_monthly = plan.phase.budget_monthly?;
    let limit = Decimal::try_from(budget_monthly).ok()?;
    Some(Budget { budget_monthly, after_net: plan.cost.after_net, over: plan.cost.after_net > limit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_as_amounts_or_percentages() {
        assert_eq!("25".parse(), Ok(MaxIncrease::Absolute(Decimal::from(25))));
        assert_eq!("€12.5".parse(), Ok(MaxIncrease::Absolute(Decimal::new(125, 1))));
        assert_eq!("10%".parse(), Ok(MaxIncrease::Percent(Decimal::from(10))));
        assert!("ten".parse::<MaxIncrease>().is_err());
        assert!("-5".parse::<MaxIncrease>().is_err());
    }
}
