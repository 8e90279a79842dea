//! The web client, embedded at build time so the binary runs from any directory.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../../web"]
struct Web;

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// The embedded file at `path` (no leading slash), if any. Paths are looked up in the embedded
/// table only; nothing from the request reaches the file system.
pub fn file(path: &str) -> Option<Response> {
    let asset = Web::get(path)?;
    let mut response = (StatusCode::OK, asset.data.into_owned()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    // The client is small and versioned with the binary; revalidate so an upgrade shows at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(response)
}

/// The HTML page `name`, with `status`.
pub fn page(name: &str, status: StatusCode) -> Response {
    match file(name) {
        Some(mut response) => {
            *response.status_mut() = status;
            response
        }
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "web client missing from build",
        )
            .into_response(),
    }
}

/// The single page, with `status` (a join link for a session that does not exist still gets
/// the page, so it can explain, but with 404).
pub fn index(status: StatusCode) -> Response {
    match file("index.html") {
        Some(mut response) => {
            *response.status_mut() = status;
            response
        }
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "web client missing from build",
        )
            .into_response(),
    }
}
