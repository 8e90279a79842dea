//! Files served with HTTP ranges (RFC 9110, single `bytes=` ranges), streamed from disk in
//! chunks: recorded streams and exports can be large, and a `<video>` element seeks by asking
//! for the part it needs.

use crate::error::ApiError;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::path::PathBuf;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Bytes read from a file per chunk of a download.
const CHUNK: usize = 64 * 1024;

/// Serves `path` whole or, for a `Range: bytes=` request, the part asked for.
pub(crate) async fn serve_file(
    path: PathBuf,
    content_type: &str,
    headers: &HeaderMap,
    attachment: Option<String>,
) -> Result<Response, ApiError> {
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| ApiError::not_found())?;
    let size = file
        .metadata()
        .await
        .map_err(|e| ApiError::internal(format!("stat {}: {e}", path.display())))?
        .len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, size));
    let (status, start, len) = match range {
        None | Some(Range::Ignored) => (StatusCode::OK, 0, size),
        Some(Range::Part(start, end)) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        Some(Range::Unsatisfiable) => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
    };
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|e| ApiError::internal(format!("seek: {e}")))?;
    let body = Body::from_stream(futures_util::stream::unfold(
        (file.take(len), vec![0u8; CHUNK]),
        |(mut reader, mut buf)| async move {
            match reader.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => Some((Ok(bytes::Bytes::copy_from_slice(&buf[..n])), (reader, buf))),
                Err(e) => Some((Err(e), (reader, buf))),
            }
        },
    ));
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", start + len - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    if let Some(name) = attachment
        && let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Range {
    /// Bytes `start..=end`.
    Part(u64, u64),
    /// Nothing in the file (416).
    Unsatisfiable,
    /// Not a form served partially (several ranges, another unit): the whole file.
    Ignored,
}

fn parse_range(value: &str, size: u64) -> Range {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Range::Ignored;
    };
    if spec.contains(',') {
        return Range::Ignored;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Range::Ignored;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => b
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(|n| (size.saturating_sub(n), size.saturating_sub(1))),
        (false, true) => a.parse::<u64>().ok().map(|s| (s, size.saturating_sub(1))),
        (false, false) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(s), Ok(e)) if s <= e => Some((s, e.min(size.saturating_sub(1)))),
            _ => return Range::Unsatisfiable,
        },
        (true, true) => None,
    };
    match parsed {
        Some((start, end)) if size > 0 && start < size && start <= end => Range::Part(start, end),
        Some(_) => Range::Unsatisfiable,
        None => Range::Ignored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_browsers_send_them() {
        assert_eq!(parse_range("bytes=0-", 100), Range::Part(0, 99));
        assert_eq!(parse_range("bytes=10-19", 100), Range::Part(10, 19));
        assert_eq!(parse_range("bytes=90-500", 100), Range::Part(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), Range::Part(90, 99));
        assert_eq!(parse_range("bytes=100-", 100), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-2", 100), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Range::Ignored);
        assert_eq!(parse_range("items=0-1", 100), Range::Ignored);
        assert_eq!(parse_range("bytes=x-", 100), Range::Ignored);
        assert_eq!(parse_range("bytes=0-", 0), Range::Unsatisfiable);
    }
}
