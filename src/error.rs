//! The one error type of the API layer and its mapping to HTTP (no I/O).
//!
//! `ApiError::status` is the only place where an HTTP status number is chosen
//! for an error; `Display` is the message; [`ApiError::body`] builds the
//! `{"status", "message"}` JSON that every 4xx/5xx answer carries.

use std::fmt;

/// Everything that can go wrong while answering a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// Malformed JSON, bad field, bad id: the message says which and why.
    BadRequest(String),
    /// Authentication required and missing or wrong.
    Unauthorized,
    /// Operation reserved to a `--local` server.
    Forbidden(String),
    /// Unknown route or object; the message names it.
    NotFound(String),
    /// Known route, unsupported method.
    MethodNotAllowed {
        /// The method that was used.
        method: String,
        /// The route template.
        route: &'static str,
        /// The methods the route serves, as the `Allow` header lists them.
        allowed: String,
    },
    /// Request took too long to arrive.
    Timeout,
    /// Conflict: port in use, exhausted pool, program missing, version mismatch.
    Conflict(String),
    /// Body larger than the limit.
    PayloadTooLarge {
        /// The limit in bytes.
        limit: u64,
        /// The announced or received size.
        size: u64,
    },
    /// A node names an image the compute does not have (GNS3 2.2's
    /// `ImageMissingError`: its controller then uploads the image and
    /// creates the node again).
    ImageMissing(String),
    /// Header block too large.
    HeadersTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A bug or an operating-system failure; the server carries on.
    Internal(String),
    /// A websocket handshake of a version other than RFC 6455's (13).
    UpgradeRequired(String),
    /// The server is at a limit (connections): try again later.
    Unavailable(String),
}

impl ApiError {
    /// The HTTP status for this error. The only status table of the crate.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::Timeout => 408,
            ApiError::Conflict(_) | ApiError::ImageMissing(_) => 409,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::HeadersTooLarge { .. } => 431,
            ApiError::Internal(_) => 500,
            ApiError::UpgradeRequired(_) => 426,
            ApiError::Unavailable(_) => 503,
        }
    }

    /// The JSON error body, keys sorted.
    pub fn body(&self) -> serde_json::Value {
        if let ApiError::ImageMissing(image) = self {
            // What a GNS3 controller looks for to upload the image.
            return serde_json::json!({"status": self.status(), "message": self.to_string(),
                "image": image, "exception": "ImageMissingError"});
        }
        serde_json::json!({"status": self.status(), "message": self.to_string()})
    }

    /// Shorthand for a bad request.
    pub fn bad(msg: impl Into<String>) -> Self {
        ApiError::BadRequest(msg.into())
    }

    /// Shorthand for a conflict.
    pub fn conflict(msg: impl Into<String>) -> Self {
        ApiError::Conflict(msg.into())
    }

    /// An I/O failure while doing `what`.
    pub fn io(what: &str, err: &std::io::Error) -> Self {
        ApiError::Internal(format!("{what}: {err}"))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::BadRequest(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::Internal(m)
            | ApiError::UpgradeRequired(m)
            | ApiError::Unavailable(m) => f.write_str(m),
            ApiError::Unauthorized => f.write_str("Authentication required"),
            ApiError::ImageMissing(image) => write!(f, "The image {image} is missing"),
            ApiError::MethodNotAllowed {
                method,
                route,
                allowed,
            } => write!(
                f,
                "Method {method} is not allowed on {route}; it accepts {allowed}"
            ),
            ApiError::Timeout => f.write_str("Request not received in time"),
            ApiError::PayloadTooLarge { limit, size } => {
                write!(
                    f,
                    "Request body of {size} bytes exceeds the limit of {limit} bytes"
                )
            }
            ApiError::HeadersTooLarge { limit } => {
                write!(f, "Request header block exceeds the limit of {limit} bytes")
            }
        }
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_status_and_message_in_sorted_order() {
        let e = ApiError::NotFound("Project abc doesn't exist".into());
        let s = serde_json::to_string(&e.body()).unwrap();
        assert_eq!(s, r#"{"message":"Project abc doesn't exist","status":404}"#);
    }

    #[test]
    fn size_errors_carry_limit_and_size() {
        let e = ApiError::PayloadTooLarge {
            limit: 10,
            size: 20,
        };
        assert_eq!(e.status(), 413);
        assert!(e.to_string().contains("20") && e.to_string().contains("10"));
    }
}
