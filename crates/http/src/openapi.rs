//! What every operation of the OpenAPI document can answer besides its own successes, added in
//! one place so the document says what the server does (schemathesis checks it): errors are
//! `application/problem+json`, any secured operation can be refused (401, 403) or rate limited
//! (429), one with a path id can be "not found" (404, another workspace's resource included),
//! one that takes input can be malformed (400) or invalid (422), and one with a body can be too
//! large (413) or of the wrong type (415).

use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr};

pub(crate) const PROBLEM: &str = "application/problem+json";

/// The modifier; registered on the API document.
pub(crate) struct ProblemResponses;

fn problem(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(PROBLEM, Content::new(Some(Ref::from_schema_name("Problem"))))
        .build()
        .into()
}

/// A response documented as a JSON `Problem` is served as problem+json: say so.
fn problem_content_type(response: &mut RefOr<Response>) {
    let RefOr::T(r) = response else { return };
    let is_problem = r.content.get("application/json").is_some_and(|c| match c {
        RefOr::T(c) => {
            matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"))
        }
        RefOr::Ref(_) => false,
    });
    if is_problem && let Some(c) = r.content.shift_remove("application/json") {
        r.content.insert(PROBLEM.to_owned(), c);
    }
}

fn complete(path: &str, op: &mut Operation) {
    for r in op.responses.responses.values_mut() {
        problem_content_type(r);
    }
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_id = path.contains('{');
    let has_body = op.request_body.is_some();
    let has_input = has_body || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let mut add = |status: &str, description: &str| {
        op.responses.responses.entry(status.to_owned()).or_insert_with(|| problem(description));
    };
    if secured {
        add("401", "No valid credentials");
        add("403", "The credentials do not allow this");
        add(
            "429",
            "Too many requests (rate limit); see `Retry-After`. Keys with limits get `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` on every response",
        );
    }
    if has_id {
        add("404", "Not found (or not this workspace's)");
    }
    if has_input {
        add("400", "A malformed request (query, path or body)");
        add("422", "Invalid input; `errors` names each field");
    }
    if has_body {
        add("413", "The body is too large");
        add("415", "The body is not of a supported content type");
    }
}

impl utoipa::Modify for ProblemResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let ops =
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in ops.into_iter().flatten() {
                complete(path, op);
            }
        }
    }
}
