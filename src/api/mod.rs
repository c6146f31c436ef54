//! The REST API under `/v1`: one module per resource, plus the shared pieces
//! (errors, extractors, middleware, pagination) and the OpenAPI document, which
//! `utoipa-axum` builds from the same route table the server uses.

pub mod analytics;
pub mod api_keys;
pub mod call_media;
pub mod calls;
pub mod campaigns;
pub mod carriers;
pub mod contact_lists;
pub mod contacts;
pub mod error;
pub mod extract;
pub mod health;
pub mod middleware;
pub mod pagination;
pub mod phone_numbers;
pub mod quota;
pub mod templates;
pub mod validate;
pub mod webhooks;

use serde::{Deserialize, Deserializer};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::app::AppState;

/// For PATCH bodies: distinguishes an absent field (`None`) from `null` (`Some(None)`).
pub fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key: `Authorization: Bearer YOUR_API_KEY`"))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "AI Call Center API",
        version = "1.0.0",
        description = "Place and answer AI phone calls, run campaigns, manage contacts and templates, \
and read analytics. Authenticate with `Authorization: Bearer YOUR_API_KEY`. Each key may make 100 \
requests per minute (`X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset`; `Retry-After` \
on 429). Every POST accepts an `Idempotency-Key` header: a repeated key with the same request replays \
the first successful response for 24 hours; with a different request it is a 422. Errors have the shape \
`{\"error\": {\"code\", \"message\", \"details\"}}`."
    ),
    modifiers(&BearerAuth),
    components(schemas(error::ErrorBody, error::ErrorObject)),
    tags(
        (name = "calls", description = "Outbound and inbound calls"),
        (name = "campaigns", description = "Call campaigns over contacts and contact lists"),
        (name = "contacts", description = "People to call"),
        (name = "contact-lists", description = "Named groups of contacts, with CSV import"),
        (name = "templates", description = "Call scripts made of steps"),
        (name = "analytics", description = "Call and campaign statistics"),
        (name = "api-keys", description = "API keys of the account"),
        (name = "webhooks", description = "Webhook endpoints, signed deliveries and their log"),
        (name = "phone-numbers", description = "Inbound numbers: each routes the calls it receives to this account, \
where they run a template (with its variables) on a carrier: `simulator`, `twilio` or `sip`"),
        (name = "carriers", description = "The account's own carrier accounts (Twilio credentials, stored encrypted): \
its calls are placed with them, and its numbers and caller IDs must belong to them"),
    )
)]
struct ApiDoc;

/// Every `/v1` route, with its OpenAPI operation.
pub fn v1_router() -> OpenApiRouter<AppState> {
    let v1 = OpenApiRouter::new()
        .merge(calls::router())
        .merge(call_media::router())
        .merge(campaigns::router())
        .merge(contacts::router())
        .merge(contact_lists::router())
        .merge(templates::router())
        .merge(analytics::router())
        .merge(api_keys::router())
        .merge(webhooks::router())
        .merge(phone_numbers::router())
        .merge(carriers::router());
    OpenApiRouter::with_openapi(ApiDoc::openapi()).nest("/v1", v1)
}
