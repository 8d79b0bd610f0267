//! The OpenAPI 3.1 document served at `/openapi.json`: operations from the handlers'
//! annotations, then, in one place, what every operation of a kind can answer (the error
//! table's 401/403 on `/api`, 503 `database_unavailable` with `Retry-After` wherever the database
//! is read or written, the tracking API's 400/401/408/413/415/429), and the links between
//! operations. Schemathesis checks the server against it in CI (`tests/openapi/`).

use utoipa::OpenApi;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::openapi::{ContentBuilder, Object, Ref, RefOr, Response, ResponseBuilder, Type};

use crate::routes::{self, accounts, backtest, events, health, hooks, leads, models, syncs, webhooks};
use leadscore_service::leads::{LeadPage, LeadSummary, LeadView};
use leadscore_service::models::{ModelList, ModelSummary};

#[derive(OpenApi)]
#[openapi(
    info(title = "Leadscore", description = "Lead scoring: Segment-compatible ingest, scores, models, webhooks (SPEC §6)."),
    paths(
        docs::batch, docs::single, docs::settings, docs::source_config, docs::beacon,
        leads::list_leads, leads::get_lead, leads::post_outcome, leads::post_contacted, leads::delete_lead, accounts::get_account,
        models::list_models, models::get_model, models::post_model, models::activate_model, models::preview_model,
        models::start_shadow, models::stop_shadow, models::compare_model, backtest::backtest,
        webhooks::list_deliveries, webhooks::resend_delivery, syncs::list_syncs, syncs::list_sync_records,
        syncs::resend_sync_record, hooks::hubspot, hooks::outcomes, events::list_unreadable,
        health::healthz, health::readyz, docs::metrics, docs::openapi_json
    ),
    components(schemas(
        LeadSummary, LeadPage, LeadView, routes::ErrorBody, ModelSummary, ModelList,
        leads::OutcomeBody, routes::Accepted
    )),
    modifiers(&Security, &CommonResponses, &Links)
)]
struct ApiDoc;

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.servers = Some(vec![Server::new("/")]);
    doc
}

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("an API key: `admin` (everything) or `read` (leads, accounts, models, outcomes)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "write_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("the write key as the user name, empty password (or `writeKey` in the body)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "hubspot_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-HubSpot-Signature-v3",
                "HubSpot's v3 signature: base64 HMAC-SHA256(client secret, method + URL + body + timestamp)",
            ))),
        );
        components.add_security_scheme(
            "leadscore_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Leadscore-Signature",
                "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.<body>\")>",
            ))),
        );
    }
}

fn error(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
        .build()
}

fn retry_later(description: &str) -> Response {
    let mut response = error(description);
    response.headers.insert(
        "Retry-After".to_owned(),
        HeaderBuilder::new()
            .schema(Object::with_type(Type::Integer))
            .description(Some("seconds to wait before retrying"))
            .build(),
    );
    response
}

fn add(operation: &mut Operation, status: &str, response: Response) {
    operation.responses.responses.entry(status.to_owned()).or_insert(RefOr::T(response));
}

/// What every operation of a kind can answer, added where an annotation did not say it already.
struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            let api = path.starts_with("/api/");
            let ingest = path.starts_with("/v1/") && !path.starts_with("/v1/projects") || path == "/beacon/v1/batch";
            let methods = [
                (&mut item.get, false),
                (&mut item.post, true),
                (&mut item.put, true),
                (&mut item.delete, false),
                (&mut item.patch, true),
            ];
            for (operation, has_body) in methods {
                let Some(operation) = operation.as_mut() else { continue };
                if api {
                    add(operation, "400", error("a parameter or the body is not valid (`invalid_parameter`, …)"));
                    add(
                        operation,
                        "401",
                        error("no API key, or not a valid one (`missing_api_key`, `invalid_api_key`)"),
                    );
                    add(
                        operation,
                        "403",
                        error(
                            "a write key, or a `read` key on an admin endpoint (`write_key_not_allowed`, `insufficient_role`)",
                        ),
                    );
                }
                if ingest {
                    add(operation, "400", error("the body or a message is not valid; SDKs do not retry"));
                    add(operation, "401", error("no write key, or not a valid one"));
                    add(operation, "413", error("a message over 32 KB or a request over 500 KB"));
                    add(operation, "415", error("a `Content-Encoding` other than gzip"));
                    add(operation, "429", retry_later("busy (`overloaded`); retry after `Retry-After` seconds"));
                }
                if api || ingest {
                    add(
                        operation,
                        "503",
                        retry_later(
                            "the database is unavailable (`database_unavailable`); retry after `Retry-After` seconds",
                        ),
                    );
                    add(operation, "500", error("our fault (`internal_error`); details are in the server log"));
                }
                if (api || ingest) && has_body {
                    add(operation, "408", error("the body did not arrive in time (`request_timeout`)"));
                    add(operation, "413", error("the body is over 500 KB"));
                }
            }
        }
    }
}

/// Links between operations (schemathesis follows them in its stateful tests). Written as raw
/// JSON through the response's extensions: utoipa 5.5 serialises its `Link` type with snake_case
/// keys (`operation_id`), which is not OpenAPI.
struct Links;

impl utoipa::Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let link = |operation: &str, parameter: &str, expression: &str| serde_json::json!({ "operationId": operation, "parameters": { parameter: expression } });
        let mut add_links = |path: &str, method: &str, status: &str, links: Vec<(&str, serde_json::Value)>| {
            let Some(item) = openapi.paths.paths.get_mut(path) else { return };
            let operation = match method {
                "get" => item.get.as_mut(),
                "post" => item.post.as_mut(),
                _ => None,
            };
            let Some(RefOr::T(response)) = operation.and_then(|o| o.responses.responses.get_mut(status)) else {
                return;
            };
            let map: serde_json::Map<String, serde_json::Value> =
                links.into_iter().map(|(name, l)| (name.to_owned(), l)).collect();
            response.extensions.get_or_insert_with(Default::default).insert("links".to_owned(), map.into());
        };
        add_links(
            "/api/models",
            "post",
            "201",
            vec![
                ("GetModel", link("get_model", "version", "$response.body#/version")),
                ("ActivateModel", link("activate_model", "version", "$response.body#/version")),
            ],
        );
        add_links(
            "/api/leads",
            "get",
            "200",
            vec![
                ("GetLead", link("get_lead", "id", "$response.body#/leads/0/id")),
                ("RecordOutcome", link("post_outcome", "id", "$response.body#/leads/0/id")),
                ("DeleteLead", link("delete_lead", "id", "$response.body#/leads/0/id")),
            ],
        );
        add_links(
            "/api/webhooks/deliveries",
            "get",
            "200",
            vec![("ResendDelivery", link("resend_delivery", "id", "$response.body#/deliveries/0/id"))],
        );
        add_links(
            "/api/syncs",
            "get",
            "200",
            vec![("ListSyncRecords", link("list_sync_records", "name", "$response.body#/syncs/0/name"))],
        );
    }
}

/// Annotations for handlers documented here rather than on the handler (the tracking API takes
/// raw bodies; `/metrics` and `/openapi.json` are plain).
mod docs {
    #![allow(dead_code, reason = "only read by the OpenAPI derive")]

    use crate::routes::ingest::WriteKeyQuery;

    /// Send a batch of Segment messages
    #[utoipa::path(post, path = "/v1/batch", tag = "ingest",
        request_body(content = Object, description = "{\"batch\": [message, …], \"sentAt\"?, \"writeKey\"?}; JSON, \
            possibly gzip; any content type"),
        responses((status = 200, description = "stored durably and scored", body = crate::routes::Accepted)),
        security(("write_key" = [])))]
    fn batch() {}

    /// Send one Segment message (`identify`, `track`, `page`, `screen`, `group`, `alias`, or the
    /// browser's `i t p s g a`; `b` is a batch)
    #[utoipa::path(post, path = "/v1/{type}", tag = "ingest",
        params(("type" = String, Path, description = "message type",
            example = "track", pattern = "^(identify|track|page|screen|group|alias|b|i|t|p|s|g|a)$")),
        request_body(content = Object, description = "one Segment message"),
        responses((status = 200, description = "stored durably and scored", body = crate::routes::Accepted),
            (status = 404, description = "no such message type (`unknown_path`)", body = crate::routes::ErrorBody)),
        security(("write_key" = [])))]
    fn single() {}

    /// The project settings analytics.js loads
    #[utoipa::path(get, path = "/v1/projects/{write_key}/settings", tag = "ingest",
        params(("write_key" = String, Path, description = "write key")),
        responses((status = 200, description = "settings pointing analytics.js at this server (`public_url`, or \
            the request's host with the scheme a trusted proxy reports)", body = Object),
            (status = 404, description = "no such write key", body = crate::routes::ErrorBody)),
        security(()))]
    fn settings() {}

    /// The source configuration RudderStack's JavaScript SDK (v3) loads
    #[utoipa::path(get, path = "/sourceConfig", tag = "ingest", params(WriteKeyQuery),
        responses((status = 200, description = "an enabled source without device-mode destinations", body = Object),
            (status = 400, body = crate::routes::ErrorBody),
            (status = 401, description = "no write key, or not a valid one", body = crate::routes::ErrorBody)),
        security((), ("write_key" = [])))]
    fn source_config() {}

    /// RudderStack's beacon transport: a batch with the write key in the query
    #[utoipa::path(post, path = "/beacon/v1/batch", tag = "ingest", params(WriteKeyQuery),
        request_body(content = Object, description = "{\"batch\": [message, …], \"sentAt\"?}; sent as text/plain"),
        responses((status = 200, description = "stored durably and scored", body = crate::routes::Accepted)),
        security(()))]
    fn beacon() {}

    /// Prometheus metrics
    #[utoipa::path(get, path = "/metrics", tag = "operations",
        responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)),
        security(()))]
    fn metrics() {}

    /// This document
    #[utoipa::path(get, path = "/openapi.json", tag = "operations",
        responses((status = 200, description = "OpenAPI 3.1", body = Object)), security(()))]
    fn openapi_json() {}
}
