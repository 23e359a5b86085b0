//! The one error type of imgfn, and its one mapping to HTTP.
//!
//! Variants are grouped by who is at fault: the caller (4xx), the storage behind us (502/504),
//! or imgfn itself (500). Each carries a short public message written where the error is
//! created; the detailed cause (`detail`) goes to the logs only, never to the response body.

use http::StatusCode;

/// Everything that can go wrong while answering a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A query parameter is unknown, repeated or out of range.
    #[error("invalid parameter `{param}`: {message}")]
    InvalidParam { param: String, message: String },
    /// The request itself is malformed (body, headers) in a way that is not a query parameter.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A bearer token is missing or wrong (uploads, the gallery listing).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// A signature is missing, wrong or expired; or access is denied by the store.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// No such original (also: keys that are unsafe, so their existence is never revealed).
    #[error("not found")]
    NotFound,
    /// The method is not served on this path; carries the `Allow` header value.
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    /// The target already exists and is never overwritten (a replayed upload URL).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The client did not send its request in time (local server).
    #[error("request timeout: {0}")]
    RequestTimeout(String),
    /// The request body is over a configured limit.
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    /// The source bytes are not an image format imgfn decodes.
    #[error("unsupported media type: {0}")]
    UnsupportedFormat(String),
    /// The source claims a supported format but cannot be decoded (truncated, corrupt).
    #[error("corrupt image: {public}")]
    CorruptImage { public: String, detail: String },
    /// A configured limit would be exceeded; `limit` names it (e.g. `max_source_pixels`).
    #[error("limit `{limit}` exceeded: {message}")]
    LimitExceeded {
        limit: &'static str,
        message: String,
    },
    /// Too many expensive requests at once; the caller should retry shortly.
    #[error("overloaded: {0}")]
    Overloaded(String),
    /// The storage backend failed (5xx, throttling, connection error).
    #[error("upstream error: {0}")]
    Upstream(String),
    /// The storage backend did not answer in time.
    #[error("upstream timeout: {0}")]
    UpstreamTimeout(String),
    /// A bug or an environment failure in imgfn itself.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid_param(param: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidParam {
            param: param.into(),
            message: message.into(),
        }
    }

    pub fn corrupt(detail: impl std::fmt::Display) -> Self {
        Error::CorruptImage {
            public: "the image is corrupt or truncated".into(),
            detail: detail.to_string(),
        }
    }

    pub fn limit(limit: &'static str, message: impl Into<String>) -> Self {
        Error::LimitExceeded {
            limit,
            message: message.into(),
        }
    }

    /// HTTP status for this error. The only place statuses are chosen.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::InvalidParam { .. } | Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Error::UnsupportedFormat(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::CorruptImage { .. } | Error::LimitExceeded { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Error::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Upstream(_) => StatusCode::BAD_GATEWAY,
            Error::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code for the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidParam { .. } => "invalid_parameter",
            Error::BadRequest(_) => "bad_request",
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::Conflict(_) => "conflict",
            Error::NotFound => "not_found",
            Error::MethodNotAllowed(_) => "method_not_allowed",
            Error::PayloadTooLarge(_) => "payload_too_large",
            Error::RequestTimeout(_) => "request_timeout",
            Error::UnsupportedFormat(_) => "unsupported_format",
            Error::CorruptImage { .. } => "corrupt_image",
            Error::LimitExceeded { .. } => "limit_exceeded",
            Error::Overloaded(_) => "overloaded",
            Error::Upstream(_) => "upstream_error",
            Error::UpstreamTimeout(_) => "upstream_timeout",
            Error::Internal(_) => "internal_error",
        }
    }

    /// The message a client sees: short, and free of internal detail.
    pub fn public_message(&self) -> String {
        match self {
            Error::CorruptImage { public, .. } => public.clone(),
            Error::InvalidParam { message, .. } => message.clone(),
            Error::Upstream(_) => "the image store failed; try again".into(),
            Error::UpstreamTimeout(_) => "the image store did not answer in time".into(),
            Error::Internal(_) => "internal error".into(),
            Error::NotFound => "no such image".into(),
            Error::MethodNotAllowed(allow) => format!("allowed methods here: {allow}"),
            other => other.to_string(),
        }
    }

    /// `{"error": {"code", "message"}}`, plus `param` / `limit` when they apply.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "code": self.code(),
            "message": self.public_message(),
        });
        match self {
            Error::InvalidParam { param, .. } => body["param"] = param.clone().into(),
            Error::LimitExceeded { limit, .. } => body["limit"] = (*limit).into(),
            _ => {}
        }
        serde_json::json!({ "error": body })
    }

    /// Whether the cause lies with the server side (logged at error level).
    pub fn is_server_fault(&self) -> bool {
        self.status().is_server_error()
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
        let cases: Vec<(Error, u16, &str)> = vec![
            (Error::invalid_param("w", "x"), 400, "invalid_parameter"),
            (Error::Unauthorized("x".into()), 401, "unauthorized"),
            (Error::Forbidden("x".into()), 403, "forbidden"),
            (Error::NotFound, 404, "not_found"),
            (Error::Conflict("x".into()), 409, "conflict"),
            (
                Error::MethodNotAllowed("GET, HEAD"),
                405,
                "method_not_allowed",
            ),
            (
                Error::UnsupportedFormat("x".into()),
                415,
                "unsupported_format",
            ),
            (Error::corrupt("eof"), 422, "corrupt_image"),
            (
                Error::limit("max_source_pixels", "x"),
                422,
                "limit_exceeded",
            ),
            (Error::Overloaded("x".into()), 503, "overloaded"),
            (Error::Upstream("x".into()), 502, "upstream_error"),
            (Error::UpstreamTimeout("x".into()), 504, "upstream_timeout"),
            (Error::Internal("x".into()), 500, "internal_error"),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status().as_u16(), status, "{err}");
            assert_eq!(err.code(), code);
            assert_eq!(err.to_json()["error"]["code"], code);
        }
    }

    #[test]
    fn internal_detail_never_reaches_the_body() {
        let err = Error::corrupt("libjpeg: bogus Huffman table 0x1f at /tmp/secret");
        let body = err.to_json().to_string();
        assert!(!body.contains("secret"), "{body}");
        let err = Error::Upstream("dispatch failure: tcp 10.0.0.1".into());
        assert!(!err.to_json().to_string().contains("10.0.0.1"));
    }
}
