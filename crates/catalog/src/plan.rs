//! Plans as data (hub seed §3.6 "Default Plan Limits"): starter, pro, enterprise, each with
//! limits on agents, messages per month, knowledge documents, integrations, monthly credits,
//! seats and document storage (-1 = unlimited in the data file), and the tier order templates use for `required_plan`.

use serde::{Deserialize, Serialize};

use crate::error::CatalogError;

const BUILTIN: &str = include_str!("../data/plans.json");

/// A plan tier, ordered: starter < pro < enterprise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanTier {
    Starter,
    Pro,
    Enterprise,
}

/// A numeric limit; `-1` in data means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub enum Limit {
    Unlimited,
    AtMost(u64),
}

impl TryFrom<i64> for Limit {
    type Error = String;
    fn try_from(v: i64) -> Result<Self, String> {
        match v {
            -1 => Ok(Self::Unlimited),
            n if n >= 0 => Ok(Self::AtMost(n as u64)),
            n => Err(format!("limit {n} is invalid: use -1 for unlimited or a count")),
        }
    }
}

impl From<Limit> for i64 {
    fn from(l: Limit) -> i64 {
        match l {
            Limit::Unlimited => -1,
            Limit::AtMost(n) => n as i64,
        }
    }
}

impl Limit {
    /// Whether one more can be added when `current` exist already.
    pub fn allows_one_more(self, current: u64) -> bool {
        match self {
            Self::Unlimited => true,
            Self::AtMost(n) => current < n,
        }
    }
}

/// A plan's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanLimits {
    pub agents: Limit,
    pub messages_per_month: Limit,
    pub knowledge_docs: Limit,
    pub integrations: Limit,
    /// Credits granted each UTC month (the ledger's `allowance`); `-1` (the default): credits
    /// are not enforced on this plan.
    #[serde(default = "unlimited")]
    pub credits_per_month: Limit,
    /// Members plus pending invites (`-1`, the default: no limit).
    #[serde(default = "unlimited")]
    pub seats: Limit,
    /// The size of the workspace's stored documents, in MiB (`-1`, the default: no limit).
    #[serde(default = "unlimited")]
    pub storage_mb: Limit,
}

fn unlimited() -> Limit {
    Limit::Unlimited
}

/// A plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub tier: PlanTier,
    pub name: String,
    pub limits: PlanLimits,
}

/// The built-in plans, one per tier, in tier order.
pub fn builtin_plans() -> Result<Vec<Plan>, CatalogError> {
    let mut plans: Vec<Plan> = serde_json::from_str(BUILTIN).map_err(|e| {
        CatalogError::BuiltinData { file: "plans.json".into(), detail: e.to_string() }
    })?;
    plans.sort_by_key(|p| p.tier);
    Ok(plans)
}

/// Whether a workspace on `plan` may use a template that requires `required`.
pub fn plan_allows(plan: PlanTier, required: PlanTier) -> bool {
    plan >= required
}

/// The limits of a tier in `plans`.
pub fn limits(plans: &[Plan], tier: PlanTier) -> Option<PlanLimits> {
    plans.iter().find(|p| p.tier == tier).map(|p| p.limits)
}

/// How many agents a tier may have.
pub fn agent_limit(plans: &[Plan], tier: PlanTier) -> Option<Limit> {
    limits(plans, tier).map(|l| l.agents)
}
