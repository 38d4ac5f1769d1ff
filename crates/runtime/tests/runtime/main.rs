//! The runtime end to end against the scripted fake LLM server over real HTTP: streaming,
//! tools, citations, confirmation, routing, the no-model fallback, failures, trimming and
//! cancellation. One test binary, one module per area.

mod kit;

mod cancellation;
mod confirmation;
mod custom_tools;
mod failures;
mod no_model;
mod prompt;
mod routing;
mod streaming;
mod tools;
