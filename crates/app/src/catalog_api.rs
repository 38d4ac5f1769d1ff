//! Capabilities and templates for a workspace: the catalog's seeded templates merged with the
//! stored system (operator) and workspace templates, and their availability on the workspace's
//! plan (the plan's limits are in `crate::plan_limits`).

use std::collections::BTreeSet;

use catalog::{Catalog, PlanTier, Template, plan_allows};
use domain::time::now_ms;
use domain::{Permission, TemplateId};
use serde::Serialize;
use serde_json::Value;
use store::{NewTemplate, StoredTemplate};
use utoipa::ToSchema;

use crate::plan_limits::tier_name;
use crate::{App, AppError, FieldError, Principal};

/// A capability with its availability for the caller's workspace.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CapabilityView {
    pub id: String,
    pub label: String,
    pub description: String,
    pub icon: String,
    pub category: String,
    pub universal: bool,
    /// Dependency groups: each needs one of its members enabled.
    pub depends_on: Vec<Vec<String>>,
    #[schema(value_type = Object)]
    pub schema: Value,
    #[schema(value_type = Object)]
    pub ui_schema: Value,
    pub is_available: bool,
    /// The integration providing it; `null` when built in or unavailable.
    pub connected_via: Option<String>,
    /// When unavailable: integrations any one of which would make it available.
    pub requires: Vec<String>,
}

/// A template as a workspace sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TemplateView {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub icon: String,
    pub category: String,
    pub role: Option<String>,
    pub capabilities: Vec<String>,
    pub default_capabilities: Vec<String>,
    pub required_plan: String,
    pub is_featured: bool,
    pub is_active: bool,
    pub is_system: bool,
    /// `builtin` (shipped), `system` (operator-managed) or `workspace` (made by this workspace).
    pub source: String,
    pub usage_count: i64,
    /// Usable on the workspace's plan.
    pub is_available: bool,
    pub unavailable_reason: Option<String>,
    /// The whole template document (single-template responses only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub document: Option<Value>,
}

/// A template resolved for a workspace.
pub(crate) struct Resolved {
    pub template: Template,
    pub source: &'static str,
    pub is_active: bool,
    pub usage_count: i64,
}

pub(crate) fn validation(errors: Vec<catalog::FieldError>, prefix: &str) -> AppError {
    AppError::Validation(
        errors
            .into_iter()
            .map(|e| FieldError::new(&format!("{prefix}{}", e.path), &e.code, e.message))
            .collect(),
    )
}

impl App {
    /// The catalog shipped in the binary.
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// Every capability with its availability (no integrations can be connected yet, so
    /// built-in fallbacks decide).
    ///
    /// Any authenticated caller may read them (the registry is the same for every
    /// workspace; only availability would differ once integrations exist).
    pub async fn capabilities(&self, _p: &Principal) -> Result<Vec<CapabilityView>, AppError> {
        let connected = BTreeSet::new();
        Ok(self
            .catalog()
            .registry()
            .availability_all(&connected)
            .into_iter()
            .map(|(c, a)| CapabilityView {
                id: c.id.clone(),
                label: c.label.clone(),
                description: c.description.clone(),
                icon: c.icon.clone(),
                category: c.category.clone(),
                universal: c.universal,
                depends_on: c.depends_on.clone(),
                schema: c.schema.clone(),
                ui_schema: c.ui_schema.clone(),
                is_available: a.is_available,
                connected_via: a.connected_via,
                requires: a.requires,
            })
            .collect())
    }

    pub(crate) async fn require_operator(&self, p: &Principal) -> Result<(), AppError> {
        let Some(uid) = p.user_id() else {
            return Err(AppError::forbidden("user_required", "operators act as signed-in users"));
        };
        if self.inner.store.get_user(uid).await?.is_operator {
            Ok(())
        } else {
            Err(AppError::forbidden("operator_required", "only platform operators can do this"))
        }
    }

    fn parse_stored(&self, row: &StoredTemplate) -> Result<Template, AppError> {
        self.catalog().parse_template(&row.document.0).map_err(|e| {
            AppError::Internal(format!("stored template `{}` is invalid: {e:?}", row.slug))
        })
    }

    /// The template the workspace sees under `slug`: its own, else a stored system one, else
    /// the seeded one.
    pub(crate) async fn resolve_template(
        &self,
        p: &Principal,
        slug: &str,
    ) -> Result<Resolved, AppError> {
        if let Some(row) = self.inner.store.get_template(&p.scope(), slug).await? {
            return Ok(Resolved {
                template: self.parse_stored(&row)?,
                source: if row.is_system() { "system" } else { "workspace" },
                is_active: row.is_active,
                usage_count: row.usage_count,
            });
        }
        let t =
            self.catalog().template(slug).map_err(|_| AppError::NotFound { what: "template" })?;
        Ok(Resolved {
            is_active: t.is_active,
            template: t.clone(),
            source: "builtin",
            usage_count: 0,
        })
    }

    /// Resolves a template for making a new agent: it must be active and allowed on the plan.
    pub(crate) async fn usable_template(
        &self,
        p: &Principal,
        slug: &str,
        path: &str,
    ) -> Result<Template, AppError> {
        let r = self.resolve_template(p, slug).await.map_err(|e| match e {
            AppError::NotFound { .. } => {
                AppError::field(path, "unknown_template", format!("`{slug}` is not a template"))
            }
            other => other,
        })?;
        if !r.is_active {
            return Err(AppError::field(path, "template_retired", "this template is retired"));
        }
        let tier = self.plan_tier(p).await?;
        if !plan_allows(tier, r.template.required_plan) {
            return Err(AppError::forbidden(
                "plan_required",
                format!(
                    "template `{slug}` needs the {} plan; this workspace is on {}",
                    tier_name(r.template.required_plan),
                    tier_name(tier)
                ),
            ));
        }
        Ok(r.template)
    }

    fn view(r: &Resolved, tier: PlanTier, with_document: bool) -> TemplateView {
        let t = &r.template;
        let allowed = plan_allows(tier, t.required_plan);
        TemplateView {
            slug: t.slug.to_string(),
            name: t.name.clone(),
            description: t.description.clone(),
            icon: t.icon.clone(),
            category: t.category.clone(),
            role: t.role.clone(),
            capabilities: t.capabilities.clone(),
            default_capabilities: t.default_capabilities.clone(),
            required_plan: tier_name(t.required_plan).into(),
            is_featured: t.is_featured,
            is_active: r.is_active,
            is_system: r.source != "workspace",
            source: r.source.into(),
            usage_count: r.usage_count,
            is_available: allowed && r.is_active,
            unavailable_reason: if !r.is_active {
                Some("this template is retired".into())
            } else if !allowed {
                Some(format!("requires the {} plan", tier_name(t.required_plan)))
            } else {
                None
            },
            document: with_document.then(|| serde_json::to_value(t).unwrap_or_default()),
        }
    }

    /// Templates the workspace can see (retired ones left out), filtered.
    pub async fn templates(
        &self,
        p: &Principal,
        category: Option<&str>,
        featured: Option<bool>,
    ) -> Result<Vec<TemplateView>, AppError> {
        let tier = self.plan_tier(p).await?;
        let rows = self.inner.store.list_templates(Some(&p.scope()), true).await?;
        let mut out: Vec<Resolved> = Vec::new();
        let seeded = self.catalog().templates().iter().map(|t| Resolved {
            is_active: t.is_active,
            template: t.clone(),
            source: "builtin",
            usage_count: 0,
        });
        out.extend(seeded);
        // Rows come system first, then the workspace's: later entries override earlier ones.
        for row in &rows {
            let Ok(template) = self.parse_stored(row) else { continue };
            let r = Resolved {
                template,
                source: if row.is_system() { "system" } else { "workspace" },
                is_active: row.is_active,
                usage_count: row.usage_count,
            };
            match out.iter_mut().find(|o| o.template.slug.as_str() == row.slug) {
                Some(slot) => *slot = r,
                None => out.push(r),
            }
        }
        Ok(out
            .iter()
            .filter(|r| r.is_active)
            .filter(|r| category.is_none_or(|c| r.template.category == c))
            .filter(|r| featured.is_none_or(|f| r.template.is_featured == f))
            .map(|r| Self::view(r, tier, false))
            .collect())
    }

    pub async fn template(&self, p: &Principal, slug: &str) -> Result<TemplateView, AppError> {
        let tier = self.plan_tier(p).await?;
        Ok(Self::view(&self.resolve_template(p, slug).await?, tier, true))
    }

    /// Creates a system template (operators, `system`) or a workspace template.
    pub async fn create_template(
        &self,
        p: &Principal,
        mut document: Value,
        system: bool,
    ) -> Result<TemplateView, AppError> {
        if system {
            self.require_operator(p).await?;
        } else {
            p.require(Permission::Write)?;
        }
        if let Some(o) = document.as_object_mut() {
            o.insert("is_system".into(), Value::Bool(system));
        }
        let t = self.catalog().parse_template(&document).map_err(|e| validation(e, ""))?;
        let scope = p.scope();
        let owner = (!system).then_some(&scope);
        let new = NewTemplate {
            id: TemplateId::new(),
            slug: t.slug.to_string(),
            document: serde_json::to_value(&t).unwrap_or_default(),
            created_by: p.user_id(),
        };
        let row =
            self.inner.store.create_template(owner, &new, now_ms()).await.map_err(|e| match e {
                store::StoreError::Conflict(_) => AppError::conflict(
                    "template_exists",
                    format!("a template `{}` already exists", t.slug),
                ),
                other => other.into(),
            })?;
        self.template_audit(p, "template.created", &row.slug).await;
        self.template(p, &row.slug).await
    }

    /// Replaces a template's document and/or (de)activates it.
    pub async fn update_template(
        &self,
        p: &Principal,
        slug: &str,
        document: Option<Value>,
        is_active: Option<bool>,
        system: bool,
    ) -> Result<TemplateView, AppError> {
        if system {
            self.require_operator(p).await?;
        } else {
            p.require(Permission::Write)?;
        }
        let scope = p.scope();
        let owner = (!system).then_some(&scope);
        let now = now_ms();
        if let Some(mut doc) = document {
            if let Some(o) = doc.as_object_mut() {
                o.insert("is_system".into(), Value::Bool(system));
            }
            let t = self.catalog().parse_template(&doc).map_err(|e| validation(e, ""))?;
            if t.slug.as_str() != slug {
                return Err(AppError::field("/slug", "slug_mismatch", "must match the URL"));
            }
            let doc = serde_json::to_value(&t).unwrap_or_default();
            let res = self.inner.store.update_template(owner, slug, &doc, now).await;
            match res {
                // A seeded template is edited by storing a system row that overrides it.
                Err(store::StoreError::NotFound)
                    if system && self.catalog().template(slug).is_ok() =>
                {
                    let new = NewTemplate {
                        id: TemplateId::new(),
                        slug: slug.into(),
                        document: doc,
                        created_by: p.user_id(),
                    };
                    self.inner.store.create_template(None, &new, now).await?;
                }
                other => {
                    other.map_err(AppError::from_store("template"))?;
                }
            }
        }
        if let Some(active) = is_active {
            let res = self.inner.store.set_template_active(owner, slug, active, now).await;
            match res {
                Err(store::StoreError::NotFound) if system => {
                    let t = self
                        .catalog()
                        .template(slug)
                        .map_err(|_| AppError::NotFound { what: "template" })?;
                    let new = NewTemplate {
                        id: TemplateId::new(),
                        slug: slug.into(),
                        document: serde_json::to_value(t).unwrap_or_default(),
                        created_by: p.user_id(),
                    };
                    self.inner.store.create_template(None, &new, now).await?;
                    self.inner.store.set_template_active(None, slug, active, now).await?;
                }
                other => {
                    other.map_err(AppError::from_store("template"))?;
                }
            }
        }
        self.template_audit(p, "template.updated", slug).await;
        self.template(p, slug).await
    }

    /// Retires a system template (operators) or deletes one of the workspace's own.
    pub async fn delete_template(
        &self,
        p: &Principal,
        slug: &str,
        system: bool,
    ) -> Result<(), AppError> {
        if system {
            self.update_template(p, slug, None, Some(false), true).await?;
            return Ok(());
        }
        p.require(Permission::Write)?;
        self.inner
            .store
            .delete_template(Some(&p.scope()), slug)
            .await
            .map_err(AppError::from_store("template"))?;
        self.template_audit(p, "template.deleted", slug).await;
        Ok(())
    }

    async fn template_audit(&self, p: &Principal, action: &'static str, slug: &str) {
        self.audit(store::NewAuditEvent {
            workspace_id: Some(p.workspace_id),
            actor_user_id: p.user_id(),
            actor_key_id: p.key_id(),
            action,
            target: Some(slug.to_owned()),
            ip: None,
            detail: serde_json::json!({}),
        })
        .await;
    }
}
