//! `Route`: what a request asks for, parsed once from its method and path, and the largest
//! body each route may send (decided from the head, before a byte of the body is read).

use crate::error::{Error, Result};
use crate::key::Key;
use crate::routes::multipart::local_part_grant;
use crate::routes::uploads::local_grant;
use crate::state::AppState;
use http::{Method, Request};

/// Request bodies of the image API and `POST /_/uploads` are small; anything larger is
/// refused unread. Local uploads (`PUT /_/uploads/<key>`) may carry up to the upload limit
/// (at most the multipart threshold), local parts exactly their signed length. 1 MiB also
/// holds a completion body naming 10,000 parts.
pub const MAX_REQUEST_BODY: u64 = 1 << 20;

/// The routes. Keys under `_/` are reserved for the built-in ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET|HEAD /<key>?<transformation>`: an original or a rendition of it.
    Image { key: Key },
    /// `POST /_/uploads`: an upload URL for a new original.
    CreateUpload,
    /// `GET /_/uploads`: whether the bearer may upload (the page shows its form only then).
    UploadCheck,
    /// `PUT /_/uploads/<key>?<grant>`: the local folder's stand-in for a presigned S3 PUT.
    /// The key stays percent-encoded until the grant is checked, so that a server without
    /// local uploads refuses before judging it.
    LocalUpload { raw_key: String },
    /// `POST /_/uploads/<id>/parts/<n>`: the URL of part `n` of an upload in parts.
    PartUrl { id: String, n: u32 },
    /// `PUT /_/uploads/<id>/parts/<n>?<grant>`: the local folder's stand-in for a presigned
    /// S3 `UploadPart`. (Upload keys never have this shape: `<prefix>YYYY/MM/<uuid>.<ext>`.)
    LocalPart { id: String, n: u32 },
    /// `GET /_/uploads/<id>`: the parts received so far (to resume).
    UploadStatus { id: String },
    /// `POST /_/uploads/<id>/complete`: assemble the parts into the original.
    CompleteUpload { id: String },
    /// `DELETE /_/uploads/<id>`: abort, leaving nothing behind.
    AbortUpload { id: String },
    /// `GET|HEAD /_/gallery`: the gallery page.
    GalleryPage,
    /// `GET|HEAD /_/gallery.js`: its script.
    GalleryScript,
    /// `GET|HEAD /_/gallery.json`: one page of the listing.
    GalleryListing,
}

impl Route {
    /// The route of `method` and `path` (the raw, percent-encoded URI path): 405 with the
    /// methods the path allows, 404 for no route (or the gallery when it is not served).
    pub fn parse(method: &Method, path: &str, gallery_enabled: bool) -> Result<Route> {
        let read = method == Method::GET || method == Method::HEAD;
        let Some(builtin) = path.strip_prefix("/_/") else {
            if !read {
                return Err(Error::MethodNotAllowed("GET, HEAD"));
            }
            return Ok(Route::Image {
                key: Key::from_uri_path(path)?,
            });
        };
        match builtin {
            "uploads" if method == Method::POST => Ok(Route::CreateUpload),
            "uploads" if method == Method::GET => Ok(Route::UploadCheck),
            "uploads" => Err(Error::MethodNotAllowed("GET, POST")),
            p if p.starts_with("uploads/") => upload_route(method, &builtin["uploads".len()..]),
            "gallery" | "gallery.js" | "gallery.json" if !gallery_enabled => Err(Error::NotFound),
            "gallery" | "gallery.js" | "gallery.json" if !read => {
                Err(Error::MethodNotAllowed("GET, HEAD"))
            }
            "gallery" => Ok(Route::GalleryPage),
            "gallery.js" => Ok(Route::GalleryScript),
            "gallery.json" => Ok(Route::GalleryListing),
            _ => Err(Error::NotFound),
        }
    }

    /// The route of a request to `state`.
    pub fn of<B>(state: &AppState, req: &Request<B>) -> Result<Route> {
        Route::parse(
            req.method(),
            req.uri().path(),
            state.config.gallery_enabled(),
        )
    }

    /// The largest body an edge may read for this route. A local upload's URL is checked
    /// here, so a forged or expired one is refused before a byte of its body is read.
    pub fn body_limit<B>(&self, state: &AppState, req: &Request<B>) -> Result<u64> {
        match self {
            Route::LocalUpload { raw_key } => {
                local_grant(state, req, raw_key)?;
                // Larger uploads go in parts.
                Ok(state
                    .config
                    .max_upload_bytes
                    .min(state.config.multipart_threshold_bytes))
            }
            // Exactly the part's signed length, checked on the head.
            Route::LocalPart { id, n } => local_part_grant(state, req, id, *n),
            Route::UploadCheck => Ok(0),
            _ => Ok(MAX_REQUEST_BODY),
        }
    }
}

/// The routes under `/_/uploads/`; `rest` starts with the `/`.
fn upload_route(method: &Method, rest: &str) -> Result<Route> {
    let segments: Vec<&str> = rest[1..].split('/').collect();
    let id = || segments[0].to_string();
    match (method, segments.as_slice()) {
        (&Method::POST, [_, "parts", n]) => Ok(Route::PartUrl {
            id: id(),
            n: part_number(n)?,
        }),
        (&Method::PUT, [_, "parts", n]) => Ok(Route::LocalPart {
            id: id(),
            n: part_number(n)?,
        }),
        (&Method::PUT, _) => Ok(Route::LocalUpload {
            raw_key: rest.to_string(),
        }),
        (&Method::POST, [_, "complete"]) => Ok(Route::CompleteUpload { id: id() }),
        (&Method::GET | &Method::HEAD, [_]) => Ok(Route::UploadStatus { id: id() }),
        (&Method::DELETE, [_]) => Ok(Route::AbortUpload { id: id() }),
        (_, [_]) => Err(Error::MethodNotAllowed("GET, HEAD, PUT, DELETE")),
        (_, [_, "parts", _]) => Err(Error::MethodNotAllowed("POST, PUT")),
        (_, [_, "complete"]) => Err(Error::MethodNotAllowed("POST")),
        _ => Err(Error::MethodNotAllowed("PUT")),
    }
}

/// A part number in a path: 1 to 10,000 (S3's range; the upload's own is checked later).
fn part_number(n: &str) -> Result<u32> {
    Some(n)
        .filter(|n| (1..=5).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| {
            Error::invalid_param("part", format!("`{n}` is not a part number (1 to 10000)"))
        })
}

/// The body limit of a request whose route may not parse: a refused request may still send
/// a small body (it is read, then answered with the route's error).
pub fn body_limit<B>(route: &Result<Route>, state: &AppState, req: &Request<B>) -> Result<u64> {
    match route {
        Ok(route) => route.body_limit(state, req),
        Err(_) => Ok(MAX_REQUEST_BODY),
    }
}

/// The 413 for a body over `limit`.
pub fn too_large(limit: u64) -> Error {
    Error::PayloadTooLarge(format!("request bodies are limited to {limit} bytes here"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_refusals() {
        let parse = |m: Method, p: &str| Route::parse(&m, p, true);
        assert_eq!(
            parse(Method::HEAD, "/a%20b.jpg").unwrap(),
            Route::Image {
                key: Key::parse("a b.jpg").unwrap()
            }
        );
        assert_eq!(
            parse(Method::POST, "/_/uploads").unwrap(),
            Route::CreateUpload
        );
        assert_eq!(
            parse(Method::PUT, "/_/uploads/x%20y.jpg").unwrap(),
            Route::LocalUpload {
                raw_key: "/x%20y.jpg".into()
            }
        );
        for (m, p, route) in [
            (
                Method::POST,
                "/_/uploads/ab.cd/parts/7",
                Route::PartUrl {
                    id: "ab.cd".into(),
                    n: 7,
                },
            ),
            (
                Method::PUT,
                "/_/uploads/ab.cd/parts/10000",
                Route::LocalPart {
                    id: "ab.cd".into(),
                    n: 10_000,
                },
            ),
            (
                Method::GET,
                "/_/uploads/ab.cd",
                Route::UploadStatus { id: "ab.cd".into() },
            ),
            (
                Method::DELETE,
                "/_/uploads/ab.cd",
                Route::AbortUpload { id: "ab.cd".into() },
            ),
            (
                Method::POST,
                "/_/uploads/ab.cd/complete",
                Route::CompleteUpload { id: "ab.cd".into() },
            ),
        ] {
            assert_eq!(parse(m, p).unwrap(), route, "{p}");
        }
        assert_eq!(
            parse(Method::GET, "/_/gallery").unwrap(),
            Route::GalleryPage
        );
        assert_eq!(
            parse(Method::GET, "/_/gallery.js").unwrap(),
            Route::GalleryScript
        );
        assert_eq!(
            parse(Method::HEAD, "/_/gallery.json").unwrap(),
            Route::GalleryListing
        );
        let refused = [
            (Method::POST, "/a.jpg", 405, Some("GET, HEAD")),
            (Method::DELETE, "/_/uploads", 405, Some("GET, POST")),
            (
                Method::POST,
                "/_/uploads/a.jpg",
                405,
                Some("GET, HEAD, PUT, DELETE"),
            ),
            (Method::GET, "/_/uploads/id/parts/1", 405, Some("POST, PUT")),
            (Method::PUT, "/_/uploads/id/complete", 200, None),
            (Method::GET, "/_/uploads/id/complete", 405, Some("POST")),
            (Method::POST, "/_/uploads/a/b.jpg", 405, Some("PUT")),
            (Method::POST, "/_/uploads/id/parts/0", 400, None),
            (Method::POST, "/_/uploads/id/parts/10001", 400, None),
            (Method::POST, "/_/uploads/id/parts/+1", 400, None),
            (Method::POST, "/_/uploads/id/parts/x", 400, None),
            (Method::POST, "/_/gallery", 405, Some("GET, HEAD")),
            (Method::GET, "/_/nothing", 404, None),
            (Method::GET, "/.env", 404, None),
        ];
        for (m, p, status, allow) in refused {
            if status == 200 {
                // Not a route of uploads in parts: a key (refused later, by its grant).
                assert!(matches!(parse(m, p), Ok(Route::LocalUpload { .. })), "{p}");
                continue;
            }
            let e = parse(m.clone(), p).unwrap_err();
            assert_eq!(e.status(), status, "{m} {p}");
            match e {
                Error::MethodNotAllowed(a) => assert_eq!(Some(a), allow, "{m} {p}"),
                _ => assert_eq!(allow, None, "{m} {p}"),
            }
        }
        // A gallery that is not served is not found, whatever the method.
        for m in [Method::GET, Method::POST] {
            let e = Route::parse(&m, "/_/gallery.json", false).unwrap_err();
            assert_eq!(e.status(), 404);
        }
    }
}
