//! A tiny HTTP/1.1 client over a plain TCP stream: enough for the server's JSON API and
//! `/metrics`, without pulling an HTTP stack into the load tool.

use anyhow::{Context, bail};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// No request of ours should take long; a server that stalls this much is reported, not waited on.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Responses we read are small JSON bodies or a metrics page; anything bigger is a mistake.
const MAX_RESPONSE: u64 = 4 << 20;

/// A response: status and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// `host:port` of an `http://` base URL.
pub fn authority(base: &str) -> anyhow::Result<&str> {
    let rest = base
        .strip_prefix("http://")
        .context("the server URL must start with http://")?;
    Ok(rest.trim_end_matches('/'))
}

/// The port of an `http://host:port` base URL (80 if none).
pub fn port(base: &str) -> anyhow::Result<u16> {
    let auth = authority(base)?;
    match auth.rsplit_once(':') {
        Some((_, p)) => p.parse().context("bad port in server URL"),
        None => Ok(80),
    }
}

/// One request; `bearer` adds `Authorization: Bearer`.
pub async fn request(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    bearer: Option<&str>,
) -> anyhow::Result<Response> {
    let host = authority(base)?;
    tokio::time::timeout(TIMEOUT, async {
        let mut stream = TcpStream::connect(host)
            .await
            .with_context(|| format!("connecting to {host}"))?;
        let body = body.unwrap_or("");
        let auth = bearer
            .map(|k| format!("Authorization: Bearer {k}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.take(MAX_RESPONSE).read_to_end(&mut raw).await?;
        parse(&raw)
    })
    .await
    .with_context(|| format!("{method} {path}: no answer within {TIMEOUT:?}"))?
}

/// Parses a whole `Connection: close` response, undoing chunked transfer encoding.
fn parse(raw: &[u8]) -> anyhow::Result<Response> {
    let text = String::from_utf8_lossy(raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("truncated HTTP response");
    };
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("bad HTTP status line")?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_owned()
    };
    Ok(Response { status, body })
}

fn dechunk(mut rest: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    // Each round consumes one chunk, so the loop is bounded by the body's length.
    loop {
        let (size_line, after) = rest.split_once("\r\n").context("bad chunk header")?;
        let size_hex = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).context("bad chunk size")?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = after.get(..size).context("truncated chunk")?;
        out.push_str(chunk);
        rest = after.get(size + 2..).context("truncated chunk")?;
    }
}

/// A session's id and link keys, from `POST /api/sessions`.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub host_key: String,
    pub invite_key: String,
}

/// Creates a session of `shape` (`room` or `stage`) for up to `max_participants`.
pub async fn create_session(
    base: &str,
    title: &str,
    shape: &str,
    max_participants: usize,
    api_key: Option<&str>,
) -> anyhow::Result<Session> {
    let body = serde_json::json!({
        "title": title,
        "shape": shape,
        "max_participants": max_participants,
    })
    .to_string();
    let r = request(base, "POST", "/api/sessions", Some(&body), api_key).await?;
    match r.status {
        201 => {}
        400 if r.body.contains("max_participants") => bail!(
            "the server refused a session of {max_participants}: {}\n\
             hint: start the server with a higher limit, e.g. `--max-participants 1000`",
            r.body
        ),
        401 => bail!("the server wants an API key: pass --api-key"),
        _ => bail!("POST /api/sessions: {} {}", r.status, r.body),
    }
    let v: serde_json::Value = serde_json::from_str(&r.body).context("session JSON")?;
    let key = |field: &str, marker: &str| -> anyhow::Result<String> {
        let url = v[field].as_str().with_context(|| format!("no {field}"))?;
        let (_, key) = url
            .split_once(marker)
            .with_context(|| format!("no {marker} in {field}"))?;
        Ok(key.to_owned())
    };
    Ok(Session {
        id: v["id"].as_str().context("no id")?.to_owned(),
        host_key: key("host_url", "?k=")?,
        invite_key: key("invite_url", "?i=")?,
    })
}

/// Mints an invite of `role` (e.g. `speaker`) with the host key; returns its key.
pub async fn mint_invite(base: &str, session: &Session, role: &str) -> anyhow::Result<String> {
    let body = serde_json::json!({ "role": role }).to_string();
    let path = format!("/api/sessions/{}/invites", session.id);
    let r = request(base, "POST", &path, Some(&body), Some(&session.host_key)).await?;
    if r.status != 201 {
        bail!("minting a {role} invite: {} {}", r.status, r.body);
    }
    let v: serde_json::Value = serde_json::from_str(&r.body).context("invite JSON")?;
    let url = v["invite_url"].as_str().context("no invite_url")?;
    let (_, key) = url.split_once("?i=").context("no ?i= in invite_url")?;
    Ok(key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_chunked_responses_parse() {
        let plain = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}";
        let r = parse(plain).expect("parses");
        assert_eq!((r.status, r.body.as_str()), (201, "{}"));
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        let r = parse(chunked).expect("parses");
        assert_eq!((r.status, r.body.as_str()), (200, "hello world"));
        assert!(parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err());
    }

    #[test]
    fn ports_come_from_the_base_url() {
        assert_eq!(port("http://127.0.0.1:8080").ok(), Some(8080));
        assert_eq!(port("http://localhost/").ok(), Some(80));
        assert!(port("https://x").is_err());
    }
}
