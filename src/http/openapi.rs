//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::OpenApi;

use super::{ascii, batch, compat, fetch, image, ops, placeholder, transform};

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
    ),
    components(schemas(
        crate::store::ImageMeta,
        crate::error::ErrorBody,
        image::ImageList,
        ops::Status
    ))
)]
pub struct ApiDoc;
