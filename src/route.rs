//! `Route`: what a request asks for, parsed once from its method and path, and the largest
//! body each route may send (decided from the head, before a byte of the body is read).

use crate::error::{Error, Result};
use crate::key::Key;
use crate::routes::uploads::local_grant;
use crate::state::AppState;
use http::{Method, Request};

/// Request bodies of the image API and `POST /_/uploads` are small; anything larger is
/// refused unread. Local uploads (`PUT /_/uploads/<key>`) may carry up to the upload limit.
pub const MAX_REQUEST_BODY: u64 = 1 << 20;

/// The routes. Keys under `_/` are reserved for the built-in ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET|HEAD /<key>?<transformation>`: an original or a rendition of it.
    Image { key: Key },
    /// `POST /_/uploads`: an upload URL for a new original.
    CreateUpload,
    /// `PUT /_/uploads/<key>?<grant>`: the local folder's stand-in for a presigned S3 PUT.
    /// The key stays percent-encoded until the grant is checked, so that a server without
    /// local uploads refuses before judging it.
    LocalUpload { raw_key: String },
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
            "uploads" => Err(Error::MethodNotAllowed("POST")),
            p if p.starts_with("uploads/") => {
                if method != Method::PUT {
                    return Err(Error::MethodNotAllowed("PUT"));
                }
                Ok(Route::LocalUpload {
                    raw_key: builtin["uploads".len()..].to_string(),
                })
            }
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
                Ok(state.config.max_upload_bytes)
            }
            _ => Ok(MAX_REQUEST_BODY),
        }
    }
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
            (Method::GET, "/_/uploads", 405, Some("POST")),
            (Method::POST, "/_/uploads/a.jpg", 405, Some("PUT")),
            (Method::POST, "/_/gallery", 405, Some("GET, HEAD")),
            (Method::GET, "/_/nothing", 404, None),
            (Method::GET, "/.env", 404, None),
        ];
        for (m, p, status, allow) in refused {
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
