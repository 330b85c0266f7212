//! The OpenAPI document as the server behaves: errors are
//! `application/problem+json`, and the answers every `/api` operation can
//! give (a malformed request, the per-address budget, a backend outage; for
//! bodies, their size, type and fields; for writes, the cross-site refusal) are
//! listed on each, so a client generated from the document expects them.

use utoipa::openapi::{
    ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder, path::Operation, response::Response,
};

const PROBLEM: &str = "application/problem+json";

/// Rewrites `doc` in place; run once when the router is built.
pub fn document_errors(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        if !path.starts_with("/api/") {
            continue;
        }
        let safe = [&mut item.get, &mut item.head, &mut item.options];
        for operation in safe.into_iter().flatten() {
            complete(operation, false);
        }
        let unsafe_ = [
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in unsafe_.into_iter().flatten() {
            complete(operation, true);
        }
    }
}

fn complete(operation: &mut Operation, writes: bool) {
    let responses = &mut operation.responses.responses;
    for response in responses.values_mut() {
        if let RefOr::T(response) = response {
            as_problem(response);
        }
    }
    let mut common = vec![
        ("400", "Malformed request: body, path or query"),
        (
            "429",
            "Too many requests from this address; see Retry-After",
        ),
        ("503", "A backend is unavailable; retry after Retry-After"),
    ];
    if writes {
        common.push(("403", "Refused: sent from another site (Origin)"));
    }
    if operation.request_body.is_some() {
        common.push(("413", "Request body too large"));
        common.push(("415", "Unsupported Content-Type"));
        common.push(("422", "Invalid fields"));
    }
    for (status, description) in common {
        responses.entry(status.to_owned()).or_insert_with(|| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        PROBLEM,
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Problem")))
                            .build(),
                    )
                    .build(),
            )
        });
    }
}

/// A response whose body is a `Problem` is sent as problem+json.
fn as_problem(response: &mut Response) {
    let is_problem = response.content.get("application/json").is_some_and(
        |c| matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem")),
    );
    if is_problem && let Some(content) = response.content.shift_remove("application/json") {
        response.content.insert(PROBLEM.to_owned(), content);
    }
}
