//! `Key`: the validated name of an original, and its two outward forms: percent-encoded in
//! a URL path, and as a download's `Content-Disposition`. A leaf: it knows no backend.

use crate::error::{Error, Result};

/// The name of an original: the percent-decoded request path without its leading `/`.
///
/// Only keys that are safe on every backend exist: no `..` or `.` segments, no empty
/// segments, no NUL or backslash, not absolute. Anything else is reported as not found, so
/// probing for files outside the root learns nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key(String);

impl Key {
    /// Parse the raw (percent-encoded) path of a request URI.
    pub fn from_uri_path(path: &str) -> Result<Key> {
        let raw = path.strip_prefix('/').unwrap_or(path);
        let decoded = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| Error::NotFound)?;
        Key::parse(&decoded)
    }

    /// Validate an already-decoded key.
    pub fn parse(key: &str) -> Result<Key> {
        let unsafe_key = key.is_empty()
            || key.len() > 1024
            || key.starts_with('/')
            || key.contains(['\0', '\\'])
            || key.chars().any(char::is_control)
            // Dot-segments and dot-files (`.env`, `.git/...`, `.hidden.jpg`): never served.
            || key
                .split('/')
                .any(|seg| seg.is_empty() || seg.starts_with('.'));
        if unsafe_key {
            return Err(Error::NotFound);
        }
        Ok(Key(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Percent-encode a key for a URL path: everything but unreserved characters and `/`.
pub fn encode_key(key: &Key) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(key.as_str(), KEEP).to_string()
}

/// How a download is named, in a presigned S3 GET's override or in imgfn's own response:
/// `attachment; filename="..."` with a safe ASCII fallback and the UTF-8 form (RFC 6266).
pub fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_is_safe() {
        assert_eq!(
            content_disposition("cat.jpg"),
            "attachment; filename=\"cat.jpg\"; filename*=UTF-8''cat%2Ejpg"
        );
        let d = content_disposition("a\"b\r\nc ü.jpg");
        assert!(
            d.starts_with("attachment; filename=\"a_b__c _.jpg\""),
            "{d}"
        );
        assert!(!d.contains('\n'));
    }

    #[test]
    fn keys() {
        let ok = [
            "cat.jpg",
            "photos/cat.jpg",
            "a b/ü.png",
            "x..y/z",
            "a.b/c.d.jpg",
        ];
        for k in ok {
            assert_eq!(Key::parse(k).unwrap().as_str(), k);
        }
        let bad = [
            "",
            "..foo.jpg",
            ".hidden.jpg",
            "photos/.git/config",
            "/etc/passwd",
            "..",
            "../x",
            "a/../b",
            "a/./b",
            "a//b",
            "a/",
            "a\0b",
            "a\\..\\b",
            "a\nb",
        ];
        for k in bad {
            assert_eq!(Key::parse(k).unwrap_err().status(), 404, "{k:?}");
        }
    }

    #[test]
    fn key_length_and_display() {
        let longest = "a".repeat(1024);
        assert_eq!(Key::parse(&longest).unwrap().as_str(), longest);
        assert_eq!(Key::parse(&"a".repeat(1025)).unwrap_err().status(), 404);
        // Each condition alone refuses a key that passes all the others.
        for k in ["a\u{7f}b", "a\u{85}b", "/a", "a\\b"] {
            assert_eq!(Key::parse(k).unwrap_err().status(), 404, "{k:?}");
        }
        let k = Key::parse("photos/my cat.jpg").unwrap();
        assert_eq!(k.to_string(), "photos/my cat.jpg");
        assert_eq!(format!("<{k}>"), "<photos/my cat.jpg>");
    }

    #[test]
    fn uri_paths_are_decoded_before_checking() {
        assert_eq!(
            Key::from_uri_path("/photos/my%20cat.jpg").unwrap().as_str(),
            "photos/my cat.jpg"
        );
        for p in [
            "/%2e%2e/secret",
            "/a/%2E%2E/b",
            "/%2Fetc%2Fpasswd",
            "/a%00b",
            "/%ff",
            "/",
        ] {
            assert!(Key::from_uri_path(p).is_err(), "{p}");
        }
    }

    #[test]
    fn encoded_keys_keep_slashes_and_unreserved_characters() {
        let k = Key::parse("photos/my cat~1_(2).jpg").unwrap();
        assert_eq!(encode_key(&k), "photos/my%20cat~1_%282%29.jpg");
        let k = Key::parse("ü/a?b#c%d.png").unwrap();
        assert_eq!(encode_key(&k), "%C3%BC/a%3Fb%23c%25d.png");
        assert_eq!(
            Key::from_uri_path(&format!("/{}", encode_key(&k))).unwrap(),
            k
        );
    }
}
