//! Plans as data (hub seed §3.6 "Default Plan Limits"): starter, pro, enterprise, each with
//! limits on agents, messages per month, knowledge documents, integrations, monthly credits,
//! seats, document storage and API requests per minute (-1 = unlimited in the data file), the
//! operator's changes to them ([`PlanPatch`]), and the tier order templates use for `required_plan`.

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
    /// Requests a minute the workspace's API keys may make together, on every API surface
    /// (`-1`, the default: no limit beyond each key's own).
    #[serde(default = "unlimited")]
    pub api_requests_per_minute: Limit,
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

/// An operator's changes to one plan (`[plans.starter] messages_per_month = 5000` in the
/// server's configuration): the name and any limit; what is not named stays as shipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_per_month: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knowledge_docs: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrations: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits_per_month: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seats: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_mb: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_requests_per_minute: Option<Limit>,
}

impl PlanPatch {
    /// `plan` with this patch's values in place of its own.
    pub fn apply(&self, plan: &mut Plan) {
        if let Some(name) = &self.name {
            plan.name.clone_from(name);
        }
        let l = &mut plan.limits;
        let pairs = [
            (&mut l.agents, self.agents),
            (&mut l.messages_per_month, self.messages_per_month),
            (&mut l.knowledge_docs, self.knowledge_docs),
            (&mut l.integrations, self.integrations),
            (&mut l.credits_per_month, self.credits_per_month),
            (&mut l.seats, self.seats),
            (&mut l.storage_mb, self.storage_mb),
            (&mut l.api_requests_per_minute, self.api_requests_per_minute),
        ];
        for (field, value) in pairs {
            if let Some(v) = value {
                *field = v;
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_changes_what_it_names_and_keeps_the_rest() {
        let mut plans = builtin_plans().unwrap();
        let starter = plans.iter_mut().find(|p| p.tier == PlanTier::Starter).unwrap();
        let before = starter.limits;
        let patch: PlanPatch =
            serde_json::from_str(r#"{"name":"Basic","messages_per_month":5000,"seats":-1}"#)
                .unwrap();
        patch.apply(starter);
        assert_eq!(starter.name, "Basic");
        assert_eq!(starter.limits.messages_per_month, Limit::AtMost(5000));
        assert_eq!(starter.limits.seats, Limit::Unlimited);
        assert_eq!(starter.limits.agents, before.agents);
        assert_eq!(starter.limits.api_requests_per_minute, before.api_requests_per_minute);
    }

    #[test]
    fn a_patch_refuses_unknown_limits_and_negative_counts() {
        let unknown = serde_json::from_str::<PlanPatch>(r#"{"messages":5}"#).unwrap_err();
        assert!(unknown.to_string().contains("unknown field"), "{unknown}");
        let negative = serde_json::from_str::<PlanPatch>(r#"{"seats":-2}"#).unwrap_err();
        assert!(negative.to_string().contains("-1 for unlimited"), "{negative}");
    }

    #[test]
    fn shipped_plans_limit_api_requests_except_enterprise() {
        let plans = builtin_plans().unwrap();
        let rpm = |t| limits(&plans, t).unwrap().api_requests_per_minute;
        assert_eq!(rpm(PlanTier::Starter), Limit::AtMost(600));
        assert_eq!(rpm(PlanTier::Pro), Limit::AtMost(3000));
        assert_eq!(rpm(PlanTier::Enterprise), Limit::Unlimited);
    }
}
