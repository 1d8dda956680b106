//! The web console at `/console`: plain HTML, CSS and JavaScript modules
//! embedded in the binary (no build step, no third-party code).
//!
//! The console is only a client. The browser talks to this same origin
//! through the public APIs — Kinesis JSON 1.1 (`POST /`, `X-Amz-Target:
//! Kinesis_20131202.<Op>`) and CloudWatch JSON 1.0 (`X-Amz-Target:
//! GraniteServiceVersion20100801.<Op>`) — so this module serves files and
//! nothing else; it never reaches into the services. See `docs/console.md`.

use http::{header, HeaderValue, Response, StatusCode};

use crate::http::{full, HttpResponse};

/// The URL prefix the console lives under.
pub const PATH_PREFIX: &str = "/console";

struct Asset {
    /// Path below `/console/`.
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!("../console/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("ui.js", JS),
    asset!("charts.js", JS),
    asset!("shardmap.js", JS),
    asset!("streams.js", JS),
    asset!("stream.js", JS),
    asset!("viewer.js", JS),
];

/// Same-origin only: the console loads nothing from elsewhere and may only
/// `fetch` this server.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// `/console` itself or anything below `/console/` (not `/consoles`).
pub fn is_console_path(path: &str) -> bool {
    path.strip_prefix(PATH_PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// `GET /console`, `/console/` and `/console/<asset>`.
pub fn serve(path: &str) -> HttpResponse {
    let rel = path
        .strip_prefix(PATH_PREFIX)
        .unwrap_or_default()
        .trim_start_matches('/');
    let rel = if rel.is_empty() { "index.html" } else { rel };
    let Some(asset) = ASSETS.iter().find(|a| a.path == rel) else {
        let mut r = Response::new(full("not found\n"));
        *r.status_mut() = StatusCode::NOT_FOUND;
        return r;
    };
    let mut r = Response::new(full(asset.body));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // The assets change with the binary; revalidating is cheap on loopback.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(path: &str) -> &'static str {
        let a = ASSETS.iter().find(|a| a.path == path).expect("asset");
        std::str::from_utf8(a.body).expect("utf-8")
    }

    #[test]
    fn index_is_served_with_and_without_slash() {
        for p in ["/console", "/console/", "/console/index.html"] {
            let r = serve(p);
            assert_eq!(r.status(), StatusCode::OK, "{p}");
            assert_eq!(
                r.headers()[header::CONTENT_TYPE],
                "text/html; charset=utf-8"
            );
        }
        assert!(is_console_path("/console") && is_console_path("/console/app.js"));
        assert!(!is_console_path("/consoles") && !is_console_path("/"));
        assert_eq!(serve("/console/nope.js").status(), StatusCode::NOT_FOUND);
        assert_eq!(
            serve("/console/../Cargo.toml").status(),
            StatusCode::NOT_FOUND
        );
    }

    /// Every module a script imports and every file the page links is embedded.
    #[test]
    fn every_referenced_asset_is_embedded() {
        let mut referenced = Vec::new();
        for a in ASSETS {
            let Ok(src) = std::str::from_utf8(a.body) else {
                continue;
            };
            for marker in ["from './", "href=\"/console/", "src=\"/console/"] {
                for (i, _) in src.match_indices(marker) {
                    let rest = &src[i + marker.len()..];
                    let end = rest.find(['\'', '"']).unwrap_or(rest.len());
                    referenced.push((a.path, rest[..end].to_owned()));
                }
            }
        }
        assert!(referenced.len() > 5, "{referenced:?}");
        for (from, to) in referenced {
            assert!(
                ASSETS.iter().any(|a| a.path == to),
                "{from} references {to}, which is not embedded"
            );
        }
    }

    /// No third-party code and nothing loaded from another origin.
    #[test]
    fn nothing_is_loaded_from_elsewhere() {
        for a in ASSETS.iter().filter(|a| a.path != "favicon.svg") {
            // The SVG namespace is a name, not a fetch.
            let src = text(a.path).replace("http://www.w3.org/2000/svg", "");
            for bad in ["https://", "http://", "//cdn", "@import"] {
                assert!(!src.contains(bad), "{} contains {bad}", a.path);
            }
        }
    }
}
