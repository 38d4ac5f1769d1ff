//! The knowledge-base block's answer: skip, pick an existing knowledge base, or create a new
//! one, optionally with URLs to crawl — each allowed or not by the template's
//! `KnowledgeBaseBlock`, and mandatory when the block is `required`.

use domain::KnowledgeBaseId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::KnowledgeBaseBlock;
use super::field_value::is_web_url;
use crate::error::{FieldError, pointer_join};

/// What the user chose in the knowledge-base step (`{"mode": …}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum KnowledgeBaseChoice {
    /// No knowledge base (only when the block is not required).
    Skip,
    /// One of the workspace's knowledge bases (the app checks it belongs to the workspace).
    Existing {
        knowledge_base_id: KnowledgeBaseId,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        urls: Vec<String>,
    },
    /// A new knowledge base created with the agent.
    CreateNew {
        name: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        urls: Vec<String>,
    },
}

impl KnowledgeBaseChoice {
    /// Whether a knowledge base is attached.
    pub fn is_configured(&self) -> bool {
        !matches!(self, Self::Skip)
    }
}

/// Validates the `knowledge_base` answer (None = not given) against the block's rules.
pub(crate) fn check(
    block: &KnowledgeBaseBlock,
    answer: Option<&Value>,
    path: &str,
) -> Result<Option<KnowledgeBaseChoice>, Vec<FieldError>> {
    let choice = match answer.filter(|v| !v.is_null()) {
        None => None,
        Some(v) => Some(crate::template::from_value_at::<KnowledgeBaseChoice>(v, path)?),
    };
    let mut errors = Vec::new();
    match &choice {
        None | Some(KnowledgeBaseChoice::Skip) if block.required => errors.push(FieldError::new(
            path,
            "knowledge_base_required",
            "this agent needs a knowledge base: pick an existing one or create a new one",
        )),
        Some(KnowledgeBaseChoice::Existing { .. }) if !block.allow_existing => {
            errors.push(FieldError::new(
                pointer_join(path, "mode"),
                "not_allowed",
                "choosing an existing knowledge base is not allowed here",
            ))
        }
        Some(KnowledgeBaseChoice::CreateNew { name, .. }) => {
            if !block.allow_create_new {
                errors.push(FieldError::new(
                    pointer_join(path, "mode"),
                    "not_allowed",
                    "creating a knowledge base is not allowed here",
                ));
            }
            let len = name.trim().chars().count();
            if !(2..=100).contains(&len) {
                errors.push(FieldError::new(
                    pointer_join(path, "name"),
                    "length",
                    "must be 2 to 100 characters",
                ));
            }
        }
        _ => {}
    }
    let urls = match &choice {
        Some(
            KnowledgeBaseChoice::Existing { urls, .. }
            | KnowledgeBaseChoice::CreateNew { urls, .. },
        ) => urls.as_slice(),
        _ => &[],
    };
    if !urls.is_empty() && !block.allow_url_import {
        errors.push(FieldError::new(
            pointer_join(path, "urls"),
            "not_allowed",
            "importing URLs is not allowed here",
        ));
    }
    for (i, u) in urls.iter().enumerate() {
        if !is_web_url(u.trim()) {
            errors.push(FieldError::new(
                pointer_join(&pointer_join(path, "urls"), i),
                "invalid_url",
                "must be a web address starting with http:// or https://",
            ));
        }
    }
    if errors.is_empty() { Ok(choice) } else { Err(errors) }
}
