//! What the OpenAPI document promises beyond each handler's own annotation, added in one place so
//! that no operation forgets it: the one error body every failure has, each error status an
//! operation can answer (from what it takes: a token, path parameters, a body, a query), and the
//! `Location` of what a 201 created.

use axum::Json;
use axum::http::{StatusCode, header::LOCATION};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::{
    ContentBuilder, HttpMethod, ObjectBuilder, OpenApi, Ref, RefOr, ResponseBuilder, Type, header::HeaderBuilder,
    path::Operation, path::ParameterIn, schema::Schema,
};

/// The name of the error body's schema in `components`.
const ERROR: &str = "Error";

/// Adds the error schema, the error responses and the `Location` headers.
pub struct Contract;

impl utoipa::Modify for Contract {
    fn modify(&self, api: &mut OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.schemas.insert(ERROR.into(), RefOr::T(error_schema()));
        for body in ["OrderInput", "OrderPatch"] {
            if let Some(RefOr::T(Schema::Object(o))) = components.schemas.get_mut(body)
                && let Some(RefOr::T(Schema::Object(currency))) = o.properties.get_mut("currency")
            {
                // The codes the host takes, from the one list it checks against.
                let mut codes: Vec<serde_json::Value> =
                    crate::domain::money::ISO_4217.iter().map(|c| serde_json::json!(c)).collect();
                if body == "OrderPatch" {
                    codes.push(serde_json::Value::Null);
                }
                currency.enum_values = Some(codes);
            }
        }
        for (path, item) in api.paths.paths.iter_mut() {
            let methods = [
                (HttpMethod::Get, &mut item.get),
                (HttpMethod::Post, &mut item.post),
                (HttpMethod::Put, &mut item.put),
                (HttpMethod::Patch, &mut item.patch),
                (HttpMethod::Delete, &mut item.delete),
            ];
            for (method, op) in methods {
                if let Some(op) = op.as_mut() {
                    declare_path_parameters(path, op);
                    for (status, why) in error_statuses(path, &method, op) {
                        add_error(op, status, why);
                    }
                    if let Some(RefOr::T(created)) = op.responses.responses.get_mut("201") {
                        let location = HeaderBuilder::new()
                            .schema(
                                ObjectBuilder::new()
                                    .schema_type(Type::String)
                                    .format(Some(utoipa::openapi::SchemaFormat::Custom("uri-reference".into()))),
                            )
                            .description(Some("Where the created resource is read"))
                            .build();
                        created.headers.insert("Location".into(), location);
                    }
                }
            }
        }
    }
}

/// `{"error": {"code", "message", ...}}`: `field` names the offending input of a 422, `line` and
/// `column` place a script's compile error, `error_id` names a logged internal error.
fn error_schema() -> Schema {
    let string = || ObjectBuilder::new().schema_type(Type::String);
    let inner = ObjectBuilder::new()
        .property("code", string().description(Some("Machine-readable, snake_case, e.g. `invalid_input`")))
        .property("message", string().description(Some("What went wrong and what to do")))
        .property("field", string().description(Some("The offending field's path (422)")))
        .required("code")
        .required("message");
    Schema::Object(
        ObjectBuilder::new()
            .property("error", inner)
            .required("error")
            .description(Some("Every failure's body"))
            .build(),
    )
}

/// Declares every `{name}` of the path that the operation's annotation left out, as a string.
fn declare_path_parameters(path: &str, op: &mut Operation) {
    use utoipa::openapi::path::ParameterBuilder;
    let names = path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')));
    for name in names {
        let params = op.parameters.get_or_insert_with(Vec::new);
        if params.iter().any(|p| p.name == name && p.parameter_in == ParameterIn::Path) {
            continue;
        }
        let param = ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Path)
            .required(utoipa::openapi::Required::True)
            .schema(Some(ObjectBuilder::new().schema_type(Type::String).min_length(Some(1))))
            .build();
        params.push(param);
    }
}

/// The error statuses an operation can answer, with why.
fn error_statuses(path: &str, method: &HttpMethod, op: &Operation) -> Vec<(u16, &'static str)> {
    let mut out = vec![
        (401, "No token, or one that is not valid"),
        (403, "The caller's roles do not allow it, or it needs a token marked for critical actions"),
        (503, "The database could not complete the request; nothing was changed, retry shortly"),
    ];
    let params = op.parameters.as_deref().unwrap_or_default();
    let in_path = path.contains('{');
    let in_query = params.iter().any(|p| p.parameter_in == ParameterIn::Query);
    let body = op.request_body.is_some();
    if in_path {
        out.push((404, "No such object in the caller's tenant"));
    }
    if body {
        out.push((400, "The body is not one JSON document"));
        out.push((413, "The body is larger than the limit"));
    }
    if body || in_query || in_path {
        out.push((422, "A field or parameter is missing, unknown or invalid; `field` names it"));
    }
    if *method != HttpMethod::Get {
        out.push((409, "The object is not in a state that allows it, or changed meanwhile"));
        out.push((502, "An extension this change runs failed; nothing was changed"));
    }
    out
}

/// Documents an error status with the error body, unless the operation's annotation already
/// says more about it.
fn add_error(op: &mut Operation, status: u16, why: &str) {
    let key = status.to_string();
    let body = ContentBuilder::new().schema(Some(Ref::from_schema_name(ERROR))).build();
    match op.responses.responses.get_mut(&key) {
        Some(RefOr::T(existing)) => {
            existing.content.entry("application/json".into()).or_insert(body);
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            let response = ResponseBuilder::new().description(why).content("application/json", body).build();
            op.responses.responses.insert(key, RefOr::T(response));
        }
    }
}

/// A 201 answer: the created resource, and in `Location` where it is read.
pub struct Created<T>(pub String, pub T);

impl<T: serde::Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        (StatusCode::CREATED, [(LOCATION, self.0)], Json(self.1)).into_response()
    }
}

/// A path segment as it goes into a `Location`: everything but unreserved characters and `@`
/// percent-encoded.
pub fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'@' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A point in time as the API reads one: an RFC 3339 time, or a date meaning its midnight UTC.
pub fn date_or_time() -> Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, SchemaFormat};
    let string = |f| ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(f)));
    Schema::AnyOf(AnyOfBuilder::new().item(string(KnownFormat::DateTime)).item(string(KnownFormat::Date)).build())
}
