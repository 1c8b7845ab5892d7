//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::{ascii, batch, compat, fetch, image, ops, placeholder, playground, transform};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "progimage",
        description = "Upload images, get them back converted and transformed. Errors are `{\"code\", \"message\"}` JSON with stable codes."
    ),
    paths(
        image::upload,
        image::list,
        image::metadata,
        image::delete,
        image::original,
        image::variant,
        image::get_by_path_spec,
        transform::with_path_spec,
        transform::with_query_spec,
        batch::batch,
        ascii::post_ascii,
        placeholder::blurhash,
        ascii::stored_ascii,
        ascii::legacy_root,
        compat::upload,
        compat::meta,
        compat::list,
        fetch::with_path_spec,
        fetch::with_query_spec,
        fetch::compat_spec_url,
        ops::health,
        ops::ready,
        ops::status,
        ops::metrics,
        ops::openapi,
        playground::root,
    ),
    components(schemas(
        crate::store::ImageMeta,
        crate::error::ErrorBody,
        image::ImageList,
        ops::Status
    )),
    modifiers(&CompatAliases, &ErrorResponses)
)]
pub struct ApiDoc;

/// The `/images…` routes (for clients of services that used the plural) are aliases of
/// `/image…` handlers: the document lists them with the same operations, so a client
/// generated from it knows every route.
struct CompatAliases;

/// (documented route, alias, whether the alias takes GET/HEAD, whether it takes POST)
const ALIASES: [(&str, &str, bool, bool); 3] = [
    ("/image", "/images", false, true),
    ("/image/{id}", "/images/{id}", true, false),
    ("/image/{id}.{ext}", "/images/{id}.{ext}", true, false),
];

impl Modify for CompatAliases {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        for (route, alias, reads, writes) in ALIASES {
            let Some(item) = api.paths.paths.get(route) else {
                continue;
            };
            let mut item = item.clone();
            if !reads {
                (item.get, item.head) = (None, None);
            }
            if !writes {
                item.post = None;
            }
            (item.put, item.delete, item.patch) = (None, None, None);
            let ops = [&mut item.get, &mut item.head, &mut item.post];
            for op in ops.into_iter().flatten() {
                op.operation_id = op.operation_id.take().map(|id| format!("{id}_images"));
                op.tags = Some(vec!["compatibility".into()]);
            }
            api.paths.paths.insert(alias.into(), item);
        }
    }
}

/// Adds, in one place, what every handler's annotation would otherwise repeat: the `id`
/// path parameter's shape (64 hex digits, either case) and the error statuses each kind
/// of route can answer, all with the `ErrorBody` schema. A status a handler documents
/// itself is kept as it is.
struct ErrorResponses;

const ID_PATTERN: &str = "^[0-9a-fA-F]{64}$";
const OPERATIONS_ROUTES: &[&str] = &["/health", "/ready", "/status", "/metrics", "/openapi.json"];

impl Modify for ErrorResponses {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        for (path, item) in api.paths.paths.iter_mut() {
            if OPERATIONS_ROUTES.contains(&path.as_str()) {
                continue;
            }
            let reads = [&mut item.get, &mut item.head].into_iter().flatten();
            for op in reads {
                document_id(op, path);
                add_errors(op, path, &READ_ERRORS);
            }
            let writes = [&mut item.post, &mut item.put, &mut item.delete]
                .into_iter()
                .flatten();
            for op in writes {
                document_id(op, path);
                add_errors(op, path, &WRITE_ERRORS);
            }
        }
    }
}

const READ_ERRORS: [(u16, &str); 7] = [
    (
        400,
        "`bad_id`, `bad_format`, `bad_transform` or `bad_request`",
    ),
    (
        403,
        "`bad_signature` (signing key set) or `forbidden_url` (remote fetch)",
    ),
    (404, "`not_found`"),
    (422, "`corrupt_image` or `too_many_pixels`"),
    (429, "`rate_limited`, with `Retry-After`"),
    (502, "`fetch_failed` (remote fetch)"),
    (
        503,
        "`overloaded` or `storage_unavailable`, with `Retry-After`",
    ),
];

const WRITE_ERRORS: [(u16, &str); 11] = [
    (
        400,
        "`empty_upload`, `bad_id`, `bad_transform` or `bad_request`",
    ),
    (401, "`unauthorized` (API keys set)"),
    (403, "`forbidden_url` (a JSON `url` upload)"),
    (408, "`request_timeout`: the body stalled"),
    (413, "`too_large`"),
    (415, "`unsupported_format`"),
    (422, "`corrupt_image` or `too_many_pixels`"),
    (429, "`rate_limited`, with `Retry-After`"),
    (502, "`fetch_failed` (a JSON `url` upload)"),
    (
        503,
        "`overloaded` or `storage_unavailable`, with `Retry-After`",
    ),
    (507, "`insufficient_storage`"),
];

fn document_id(op: &mut Operation, path: &str) {
    for param in op.parameters.iter_mut().flatten() {
        if param.name == "ext" && matches!(param.parameter_in, ParameterIn::Path) {
            // `auto` (content negotiation) exists for stored images only.
            let auto = path.starts_with("/image").then_some("auto");
            let exts = crate::imaging::OUTPUT_EXTS.split(", ").chain(auto);
            let schema = ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(exts));
            param.schema = Some(schema.into());
        }
        if param.name == "id" && matches!(param.parameter_in, ParameterIn::Path) {
            let schema = ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(ID_PATTERN))
                .description(Some(
                    "Lowercase hex SHA-256 of the original (upper case is accepted)",
                ));
            param.schema = Some(schema.into());
        }
    }
}

fn add_errors(op: &mut Operation, path: &str, errors: &[(u16, &str)]) {
    let fetches = path.starts_with("/fetch") || path == "/{spec}";
    for &(status, description) in errors {
        // A route without a path parameter and without fetch has no 404 or 502 of its own.
        if (status == 404 && !path.contains('{'))
            || (status == 502 && !fetches && op.request_body.is_none())
        {
            continue;
        }
        let body = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build();
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| {
                ResponseBuilder::new()
                    .description(description)
                    .content("application/json", body)
                    .build()
                    .into()
            });
    }
}
