//! Signed, expiring URLs.
//!
//! The signature is `HMAC-SHA256(secret, message)` where the message is the request path and
//! query **exactly as they appear in the URL** with the `sig` parameter removed:
//! `/photos/cat.jpg?w=400&fmt=webp&exp=1795000000`. Changing, adding, removing or reordering
//! anything but `sig` changes the message. `sig` is `KEYID.BASE64URL(mac)` (no padding), so
//! keys can be rotated: every configured key verifies, the first one signs. `exp` (Unix
//! seconds) is part of the message and refused once past. Comparison is constant-time.

use crate::error::{Error, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Shortest secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

/// The configured signing keys (`IMGFN_SIGNING_KEYS=id:secret[,id:secret...]`).
#[derive(Clone)]
pub struct SigningKeys {
    keys: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("SigningKeys").field("ids", &ids).finish()
    }
}

impl std::str::FromStr for SigningKeys {
    type Err = String;

    /// `id:secret,id2:secret2`; ids are `[A-Za-z0-9_-]{1,32}`, secrets at least 16 bytes.
    fn from_str(spec: &str) -> std::result::Result<SigningKeys, String> {
        let mut keys = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (id, secret) = part
                .split_once(':')
                .ok_or("each signing key is `id:secret`")?;
            let id_ok = (1..=32).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !id_ok {
                return Err(format!(
                    "signing key id `{id}` must be 1-32 of [A-Za-z0-9_-]"
                ));
            }
            if secret.len() < MIN_SECRET_LEN {
                return Err(format!(
                    "signing key `{id}`: the secret must be at least {MIN_SECRET_LEN} bytes"
                ));
            }
            if keys.iter().any(|(k, _): &(String, Vec<u8>)| k == id) {
                return Err(format!("signing key id `{id}` is given twice"));
            }
            keys.push((id.to_string(), secret.as_bytes().to_vec()));
        }
        if keys.is_empty() {
            return Err("no signing key given".into());
        }
        Ok(SigningKeys { keys })
    }
}

pub(crate) fn mac(secret: &[u8], message: &str) -> HmacSha256 {
    // HMAC accepts keys of any length (longer ones are hashed): this cannot fail.
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    m.update(message.as_bytes());
    m
}

/// Split a raw query into its pairs, as sent (no decoding).
fn pairs(query: &str) -> impl Iterator<Item = &str> {
    query.split('&').filter(|p| !p.is_empty())
}

fn name_of(pair: &str) -> &str {
    pair.split_once('=').map(|(n, _)| n).unwrap_or(pair)
}

fn value_of(pair: &str) -> &str {
    pair.split_once('=').map(|(_, v)| v).unwrap_or("")
}

/// The query without `sig` and `exp`: what the transformation parameters are parsed from.
/// They are not part of the cache key: a rolling `exp` must not defeat the cache.
pub fn transformation_query(query: Option<&str>) -> Option<String> {
    let rest: Vec<&str> = pairs(query?)
        .filter(|p| !matches!(name_of(p), "sig" | "exp"))
        .collect();
    (!rest.is_empty()).then(|| rest.join("&"))
}

fn forbidden(why: &str) -> Error {
    Error::Forbidden(why.to_string())
}

impl SigningKeys {
    /// Append `exp` (when given) and `sig` to `path_and_query` (e.g. `/a.jpg?w=400`).
    pub fn sign(&self, path_and_query: &str, expires_at: Option<u64>) -> String {
        let mut message = path_and_query.to_string();
        if let Some(exp) = expires_at {
            message.push(if message.contains('?') { '&' } else { '?' });
            message.push_str(&format!("exp={exp}"));
        }
        let (id, secret) = &self.keys[0];
        let tag = URL_SAFE_NO_PAD.encode(mac(secret, &message).finalize().into_bytes());
        let sep = if message.contains('?') { '&' } else { '?' };
        format!("{message}{sep}sig={id}.{tag}")
    }

    /// Check the raw path and query of a request at Unix time `now`; the URL's `exp`, when it
    /// has one (responses must not be cached past it).
    pub fn verify(&self, path: &str, query: Option<&str>, now: u64) -> Result<Option<u64>> {
        let query = query.unwrap_or("");
        let mut sigs = pairs(query).filter(|p| name_of(p) == "sig");
        let sig = value_of(
            sigs.next()
                .ok_or_else(|| forbidden("this URL must be signed"))?,
        );
        if sigs.next().is_some() {
            return Err(forbidden("the URL has more than one signature"));
        }
        let rest: Vec<&str> = pairs(query).filter(|p| name_of(p) != "sig").collect();
        let message = if rest.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", rest.join("&"))
        };
        let (id, tag) = sig
            .split_once('.')
            .ok_or_else(|| forbidden("the signature is malformed"))?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| forbidden("the signature is malformed"))?;
        let secret = self
            .keys
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, s)| s)
            .ok_or_else(|| forbidden("the signature is invalid"))?;
        // Constant-time comparison (hmac's verify_slice).
        mac(secret, &message)
            .verify_slice(&tag)
            .map_err(|_| forbidden("the signature is invalid"))?;
        // Checked after the signature, so an expired URL is only reported for real ones.
        let mut exps = rest.iter().filter(|p| name_of(p) == "exp");
        if let Some(exp) = exps.next() {
            if exps.next().is_some() {
                return Err(forbidden("the URL has more than one `exp`"));
            }
            let exp: u64 = value_of(exp)
                .parse()
                .map_err(|_| forbidden("`exp` must be a Unix time in seconds"))?;
            if now > exp {
                return Err(forbidden("the URL has expired"));
            }
            return Ok(Some(exp));
        }
        Ok(None)
    }
}

/// The `Cache-Control` of a response to a URL that expires at `exp`: the configured policy
/// without `immutable`, its lifetimes cut to the time left (a browser or CDN must not serve
/// an expired URL's response from its cache).
pub fn cache_control_until(configured: &str, exp: u64, now: u64) -> String {
    let left = exp.saturating_sub(now);
    let mut out: Vec<String> = Vec::new();
    let mut had_max_age = false;
    for directive in configured
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        let name = directive
            .split_once('=')
            .map_or(directive, |(n, _)| n)
            .trim()
            .to_ascii_lowercase();
        match name.as_str() {
            "immutable" => {}
            "max-age" | "s-maxage" => {
                let configured_age = directive
                    .split_once('=')
                    .and_then(|(_, v)| v.trim().parse::<u64>().ok())
                    .unwrap_or(0);
                had_max_age |= name == "max-age";
                out.push(format!("{name}={}", configured_age.min(left)));
            }
            _ => out.push(directive.to_string()),
        }
    }
    if !had_max_age {
        out.push(format!("max-age={left}"));
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> SigningKeys {
        "k1:0123456789abcdef0123,k0:fedcba9876543210fedc"
            .parse()
            .unwrap()
    }

    #[test]
    fn cache_lifetime_follows_exp() {
        let cc = |c: &str| cache_control_until(c, 1030, 1000);
        assert_eq!(
            cc("public, max-age=31536000, immutable"),
            "public, max-age=30"
        );
        assert_eq!(cc("public, max-age=10"), "public, max-age=10");
        assert_eq!(
            cc("public, s-maxage=600"),
            "public, s-maxage=30, max-age=30"
        );
        assert_eq!(cc("no-store"), "no-store, max-age=30");
        assert_eq!(
            cache_control_until("public, max-age=60", 900, 1000),
            "public, max-age=0"
        );
    }

    #[test]
    fn sign_then_verify() {
        let k = keys();
        let url = k.sign("/photos/cat.jpg?w=400&fmt=webp", Some(2_000_000_000));
        assert!(
            url.starts_with("/photos/cat.jpg?w=400&fmt=webp&exp=2000000000&sig=k1."),
            "{url}"
        );
        let (path, query) = url.split_once('?').unwrap();
        k.verify(path, Some(query), 1_900_000_000).unwrap();
        // No parameters at all.
        let bare = k.sign("/a.jpg", None);
        let (p, q) = bare.split_once('?').unwrap();
        k.verify(p, Some(q), 0).unwrap();
    }

    #[test]
    fn any_change_breaks_it() {
        let k = keys();
        let url = k.sign("/photos/cat.jpg?w=400&fmt=webp", None);
        let (path, query) = url.split_once('?').unwrap();
        let sig = query.rsplit_once("&sig=").unwrap().1;
        let cases = [
            ("/photos/cat.jpg", format!("w=401&fmt=webp&sig={sig}")),
            ("/photos/cat.jpg", format!("fmt=webp&w=400&sig={sig}")), // reordered
            ("/photos/cat.jpg", format!("w=400&sig={sig}")),          // removed
            ("/photos/cat.jpg", format!("w=400&fmt=webp&q=90&sig={sig}")), // added
            ("/photos/dog.jpg", format!("w=400&fmt=webp&sig={sig}")),
            ("/photos/cat.jpg", "w=400&fmt=webp".to_string()), // unsigned
            (
                "/photos/cat.jpg",
                format!("w=400&fmt=webp&sig={sig}&sig={sig}"),
            ),
            (
                "/photos/cat.jpg",
                format!("w=400&fmt=webp&sig=k9.{}", &sig[3..]),
            ), // unknown key
            (
                "/photos/cat.jpg",
                "w=400&fmt=webp&sig=k1.not-base64!".to_string(),
            ),
        ];
        for (p, q) in cases {
            let err = k.verify(p, Some(&q), 0).unwrap_err();
            assert_eq!(err.status(), 403, "{p}?{q}");
        }
        k.verify(path, Some(query), 0).unwrap();
        // The sig may stand anywhere; only the order of the others matters.
        k.verify(path, Some(&format!("sig={sig}&w=400&fmt=webp")), 0)
            .unwrap();
    }

    #[test]
    fn expiry_is_signed_and_enforced() {
        let k = keys();
        let url = k.sign("/a.jpg?w=10", Some(1000));
        let (p, q) = url.split_once('?').unwrap();
        k.verify(p, Some(q), 1000).unwrap();
        assert_eq!(
            k.verify(p, Some(q), 1001).unwrap_err().to_string(),
            "forbidden: the URL has expired"
        );
        // Extending exp without re-signing breaks the signature.
        let forged = q.replace("exp=1000", "exp=9999");
        assert!(k
            .verify(p, Some(&forged), 1001)
            .unwrap_err()
            .to_string()
            .contains("invalid"));
    }

    #[test]
    fn rotated_keys_verify() {
        let old: SigningKeys = "k0:fedcba9876543210fedc".parse().unwrap();
        let url = old.sign("/a.jpg?w=10", None);
        let (p, q) = url.split_once('?').unwrap();
        keys().verify(p, Some(q), 0).unwrap();
    }

    #[test]
    fn bad_key_specs() {
        for spec in [
            "",
            "k1",
            "k1:short",
            "bad id:0123456789abcdef",
            "a:0123456789abcdef,a:0123456789abcdef",
        ] {
            assert!(spec.parse::<SigningKeys>().is_err(), "{spec}");
        }
        let debug = format!("{:?}", keys());
        assert!(!debug.contains("0123456789"), "{debug}");
        assert!(
            debug.contains("\"k1\"") && debug.contains("\"k0\""),
            "{debug}"
        );
        // Ids take letters, digits, `_` and `-`, 1 to 32 of them.
        for id in ["a", "key-1_B", &"x".repeat(32)] {
            let spec = format!("{id}:0123456789abcdef");
            assert!(spec.parse::<SigningKeys>().is_ok(), "{spec}");
        }
        for id in ["", &"x".repeat(33), "k.1", "k/1"] {
            let spec = format!("{id}:0123456789abcdef");
            assert!(spec.parse::<SigningKeys>().is_err(), "{spec}");
        }
    }

    #[test]
    fn transformation_query_drops_auth() {
        assert_eq!(
            transformation_query(Some("w=1&exp=5&sig=a.b&h=2")).as_deref(),
            Some("w=1&h=2")
        );
        assert_eq!(transformation_query(Some("sig=a.b")), None);
        assert_eq!(transformation_query(None), None);
    }
}
