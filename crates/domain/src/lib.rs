//! EchoForge's nouns, with no IO: typed ids (UUIDv7 with a type prefix), newtypes that parse
//! and validate (`Email`, `Slug`, `Password`), roles and permissions, and time helpers.
//!
//! Everything here is cheap to copy or clone and safe to put on the hot path.

pub mod access;
pub mod ids;
pub mod text;
pub mod time;

pub use access::{Permission, Permissions, Readable, Role, UnknownName};
pub use ids::*;
pub use text::{Email, Password, Slug, TextError};
