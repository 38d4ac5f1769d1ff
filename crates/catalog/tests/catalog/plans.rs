//! Hub seed §3.6: plan limits and tier checks.

use catalog::{Limit, PlanTier, plan_allows};

use crate::catalog;

#[test]
fn plan_limits_match_the_hub_seed() {
    let c = catalog();
    let starter = c.plan_limits(PlanTier::Starter);
    assert_eq!(
        (starter.agents, starter.messages_per_month, starter.knowledge_docs, starter.integrations),
        (Limit::AtMost(1), Limit::AtMost(1_000), Limit::AtMost(10), Limit::AtMost(2))
    );
    let pro = c.plan_limits(PlanTier::Pro);
    assert_eq!(
        (pro.agents, pro.messages_per_month, pro.knowledge_docs, pro.integrations),
        (Limit::AtMost(5), Limit::AtMost(10_000), Limit::AtMost(100), Limit::AtMost(10))
    );
    let ent = c.plan_limits(PlanTier::Enterprise);
    assert_eq!(
        (ent.agents, ent.messages_per_month, ent.knowledge_docs, ent.integrations),
        (Limit::Unlimited, Limit::Unlimited, Limit::Unlimited, Limit::Unlimited)
    );
    assert_eq!(
        (starter.seats, starter.storage_mb, pro.seats, pro.storage_mb, ent.seats, ent.storage_mb),
        (
            Limit::AtMost(3),
            Limit::AtMost(100),
            Limit::AtMost(10),
            Limit::AtMost(1000),
            Limit::Unlimited,
            Limit::Unlimited
        )
    );
    assert_eq!(serde_json::to_value(ent.agents).unwrap(), serde_json::json!(-1));
    assert!(serde_json::from_value::<Limit>(serde_json::json!(-5)).is_err());
}

#[test]
fn agent_limits_allow_up_to_the_plans_count() {
    let c = catalog();
    assert!(c.agent_limit(PlanTier::Starter).allows_one_more(0));
    assert!(!c.agent_limit(PlanTier::Starter).allows_one_more(1));
    assert!(c.agent_limit(PlanTier::Pro).allows_one_more(4));
    assert!(!c.agent_limit(PlanTier::Pro).allows_one_more(5));
    assert!(c.agent_limit(PlanTier::Enterprise).allows_one_more(1_000_000));
}

#[test]
fn tiers_are_ordered_and_templates_need_their_tier() {
    assert!(plan_allows(PlanTier::Pro, PlanTier::Starter));
    assert!(plan_allows(PlanTier::Pro, PlanTier::Pro));
    assert!(!plan_allows(PlanTier::Pro, PlanTier::Enterprise));
    assert!(!plan_allows(PlanTier::Starter, PlanTier::Pro));
    let legal = catalog().template("legal-assistant").unwrap();
    assert!(!plan_allows(PlanTier::Starter, legal.required_plan));
    assert!(plan_allows(PlanTier::Enterprise, legal.required_plan));
}
