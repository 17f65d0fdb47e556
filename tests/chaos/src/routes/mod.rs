//! The route table.

mod admin;
mod basic;
pub(crate) mod body;
mod files;
mod items;
mod oauth;
mod orders;
mod quota;
mod ratelimit;
mod redirect;
mod replica;
pub(crate) mod transfer;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::routing::{any, get, post};
use axum::Router;

use crate::script;
use crate::state::Shared;
use crate::util::ApiError;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let limit = shared.config.max_body_bytes;
    Router::new()
        .route("/", get(files::index))
        .route("/www", get(files::www_root))
        .route("/www/", get(files::www_root))
        .route("/www/{*path}", get(files::www))
        .route("/status/{code}", any(basic::status))
        .route("/flaky", any(basic::flaky))
        .route("/slow", any(basic::slow))
        .route("/stall", any(basic::stall))
        .route("/replica", get(replica::replica))
        .route("/reset", any(basic::reset))
        .route("/truncate", any(basic::truncate))
        .route("/ratelimited", any(ratelimit::ratelimited))
        .route("/quota", any(quota::quota))
        .route("/quota/log", get(quota::log))
        .route("/echo", any(body::echo))
        .route("/signed", any(body::signed))
        .route("/upload", post(body::upload))
        .route("/bytes/{n}", get(body::bytes))
        .route("/gzip", get(body::gzipped))
        .route("/endless", get(body::endless))
        .route("/redirect/{hops}", any(redirect::redirect))
        .route("/download/{n}", get(transfer::download))
        .route(
            "/upload-retry",
            post(transfer::upload_retry).put(transfer::upload_retry),
        )
        .route("/transfers/{key}", get(transfer::log))
        .route("/items/link", get(items::link))
        .route("/items/cursor", get(items::cursor))
        .route("/items/offset", get(items::offset))
        .route("/items/page", get(items::page))
        .route("/orders", post(orders::create).get(orders::list))
        .route("/orders/{id}", get(orders::get_one))
        .route("/oauth/token", post(oauth::token))
        .route("/protected", any(oauth::protected))
        .route("/protected/{*path}", any(oauth::protected))
        .route(
            "/script/{id}",
            post(script::put_script)
                .put(script::put_script)
                .delete(script::delete_script),
        )
        .route("/script/{id}/log", get(script::get_log))
        .route("/s/{id}", any(script::serve_root))
        .route("/s/{id}/{*rest}", any(script::serve_nested))
        .route(
            "/admin/outage",
            post(admin::set_outage)
                .delete(admin::clear_outage)
                .get(admin::get_outage),
        )
        .route("/admin/expire-tokens", post(admin::expire_tokens))
        .route("/admin/config", post(admin::config).get(admin::config))
        .route("/stats", get(admin::stats).delete(admin::reset_stats))
        .route("/stats/reset", post(admin::reset_stats))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {method} {}", uri.path()))
}

/// The route pattern a path belongs to, for the per-route counters. The set of labels is
/// fixed, so clients cannot grow the counter map.
pub(crate) fn route_label(path: &str) -> &'static str {
    let mut segments = path.trim_start_matches('/').split('/');
    let first = segments.next().unwrap_or("");
    let second = segments.next();
    match (first, second) {
        ("", None) => "/",
        ("www", _) => "/www/{path}",
        ("status", Some(_)) => "/status/{code}",
        ("flaky", None) => "/flaky",
        ("slow", None) => "/slow",
        ("stall", None) => "/stall",
        ("replica", None) => "/replica",
        ("reset", None) => "/reset",
        ("truncate", None) => "/truncate",
        ("ratelimited", None) => "/ratelimited",
        ("quota", None) => "/quota",
        ("quota", Some("log")) => "/quota/log",
        ("echo", None) => "/echo",
        ("signed", None) => "/signed",
        ("upload", None) => "/upload",
        ("bytes", Some(_)) => "/bytes/{n}",
        ("gzip", None) => "/gzip",
        ("endless", None) => "/endless",
        ("redirect", Some(_)) => "/redirect/{hops}",
        ("download", Some(_)) => "/download/{n}",
        ("upload-retry", None) => "/upload-retry",
        ("transfers", Some(_)) => "/transfers/{key}",
        ("items", Some("link")) => "/items/link",
        ("items", Some("cursor")) => "/items/cursor",
        ("items", Some("offset")) => "/items/offset",
        ("items", Some("page")) => "/items/page",
        ("orders", None) => "/orders",
        ("orders", Some(_)) => "/orders/{id}",
        ("oauth", Some("token")) => "/oauth/token",
        ("protected", _) => "/protected/{path}",
        ("s", Some(_)) => "/s/{id}",
        ("script", Some(_)) => "/script/{id}",
        ("admin", Some("outage")) => "/admin/outage",
        ("admin", Some("expire-tokens")) => "/admin/expire-tokens",
        ("admin", Some("config")) => "/admin/config",
        ("stats", _) => "/stats",
        _ => "(unmatched)",
    }
}

/// Routes an outage does not touch: the control plane and the static files.
pub(crate) fn outage_exempt(label: &str) -> bool {
    matches!(
        label,
        "/" | "/www/{path}" | "/script/{id}" | "/stats" | "/transfers/{key}" | "/quota/log"
    ) || label.starts_with("/admin/")
}
