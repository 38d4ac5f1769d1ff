//! Vendor clients for integrations, kept out of `app` so the use cases stay vendor-free and
//! builds stay small:
//!
//! - [`oauth2`]: the authorization-code flow with PKCE (S256) and `state`, the token exchange,
//!   refresh, RFC 7009 revocation and the userinfo read, retried with backoff on 5xx;
//! - [`actions`]: each provider's actions over its REST API (Slack, Gmail, Google Calendar,
//!   Zendesk, HubSpot, the signed webhook), from validated JSON arguments to a short text the
//!   model reads;
//! - [`stripe`]: Checkout and customer-portal sessions, metered usage as meter events with
//!   idempotency keys, and the verification of Stripe's webhook signatures.
//!
//! Every call goes through [`fetch::GuardedClient`]: the operator's address policy decides which
//! hosts may be reached (vendor base URLs are the operator's configuration).

pub mod actions;
pub mod oauth2;
mod retry;
pub mod stripe;

pub use actions::{ActionError, Credentials, check_credentials, execute};
pub use oauth2::{OAuthClient, OAuthEndpoints, OAuthError, Pkce, TokenSet};
