//! Static files for browser tests and demos, from `ChaosConfig::static_dir`.

use std::path::{Component, Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use crate::state::Shared;
use crate::util::{ApiError, ApiResult};

fn content_type(path: &FsPath) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "ts" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `root` joined with `rel`, refusing anything that could leave `root`.
fn resolve(root: &FsPath, rel: &str) -> Option<PathBuf> {
    let rel = FsPath::new(rel);
    let mut path = root.to_path_buf();
    for component in rel.components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(path)
}

async fn serve_file(shared: &Shared, rel: &str) -> ApiResult {
    let Some(root) = &shared.config.static_dir else {
        return Err(ApiError::not_found(
            "no static directory is configured (--www DIR)",
        ));
    };
    let missing = || ApiError::not_found(format!("no file `{rel}`"));
    let mut path = resolve(root, rel).ok_or_else(|| ApiError::bad_request("invalid path"))?;
    if tokio::fs::metadata(&path)
        .await
        .map(|m| m.is_dir())
        .unwrap_or(false)
    {
        path.push("index.html");
    }
    // Symlinks may point anywhere: serve only what really lies under the root.
    let (canonical, canonical_root) = match (
        tokio::fs::canonicalize(&path).await,
        tokio::fs::canonicalize(root).await,
    ) {
        (Ok(p), Ok(r)) => (p, r),
        _ => return Err(missing()),
    };
    if !canonical.starts_with(&canonical_root) {
        return Err(missing());
    }
    let bytes = tokio::fs::read(&canonical).await.map_err(|_| missing())?;
    let mut resp = (StatusCode::OK, bytes).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&canonical)),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

pub(crate) async fn www(State(shared): State<Arc<Shared>>, Path(rel): Path<String>) -> ApiResult {
    serve_file(&shared, &rel).await
}

pub(crate) async fn www_root(State(shared): State<Arc<Shared>>) -> ApiResult {
    serve_file(&shared, "index.html").await
}

pub(crate) async fn index(State(shared): State<Arc<Shared>>) -> Response {
    if shared.config.static_dir.is_some() {
        Redirect::to("/www/index.html").into_response()
    } else {
        let text = "resile-chaos: a misbehaving HTTP server. Routes: /status/{code} /flaky /slow /replica /stall \
/reset /truncate /ratelimited /quota /echo /signed /upload /bytes/{n} /endless /download/{n} /upload-retry /transfers/{key} /redirect/{n} /items/{link,cursor,offset,page} /orders /oauth/token /protected/{path} \
/s/{id} /script/{id} /admin/outage /admin/expire-tokens /admin/config /stats\n";
        ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_refuses_escapes() {
        let root = FsPath::new("/srv/www");
        assert_eq!(
            resolve(root, "a/b.js"),
            Some(PathBuf::from("/srv/www/a/b.js"))
        );
        assert_eq!(resolve(root, "../etc/passwd"), None);
        assert_eq!(resolve(root, "/etc/passwd"), None);
        assert_eq!(resolve(root, "a/../../x"), None);
        assert_eq!(content_type(FsPath::new("x.wasm")), "application/wasm");
        assert_eq!(
            content_type(FsPath::new("x.JS")),
            "text/javascript; charset=utf-8"
        );
    }
}
