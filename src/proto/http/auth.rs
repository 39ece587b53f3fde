//! HTTP Basic authentication (sans-IO): decoding the header and comparing
//! credentials in constant time.

/// The `user:password` pair a request must present.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `user:password` as bytes.
    pair: Vec<u8>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(..)")
    }
}

impl Credentials {
    /// Credentials for `user` and `password`.
    pub fn new(user: &str, password: &str) -> Self {
        Credentials {
            pair: format!("{user}:{password}").into_bytes(),
        }
    }

    /// Whether an `Authorization` header value carries these credentials.
    pub fn accepts(&self, header: Option<&str>) -> bool {
        let Some(value) = header else { return false };
        let mut parts = value.trim().splitn(2, ' ');
        let scheme = parts.next().unwrap_or("");
        let token = parts.next().unwrap_or("").trim();
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        match decode_base64(token) {
            Some(given) => constant_time_eq(&given, &self.pair),
            None => false,
        }
    }
}

/// Compare without an early exit, so timing does not tell how much matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | ((a.len() ^ b.len()) >> 8) as u8;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= x ^ y;
    }
    diff == 0 && a.len() == b.len()
}

/// Standard base64 with optional padding; `None` for anything else.
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (bits < 6).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_known_values() {
        assert_eq!(decode_base64("YWRtaW46c2VjcmV0").unwrap(), b"admin:secret");
        assert_eq!(decode_base64("YTpi").unwrap(), b"a:b");
        assert_eq!(decode_base64("YQ==").unwrap(), b"a");
        assert!(decode_base64("Y!Q=").is_none());
        assert!(decode_base64("Y").is_none(), "6 bits cannot make a byte");
    }

    #[test]
    fn accepts_only_the_right_pair() {
        let c = Credentials::new("admin", "secret");
        assert!(c.accepts(Some("Basic YWRtaW46c2VjcmV0")));
        assert!(c.accepts(Some("basic  YWRtaW46c2VjcmV0 ")));
        assert!(!c.accepts(None));
        assert!(!c.accepts(Some("Basic YTpi")));
        assert!(!c.accepts(Some("Bearer YWRtaW46c2VjcmV0")));
        assert!(
            !c.accepts(Some("Basic YWRtaW46c2VjcmV0eA==")),
            "longer password"
        );
        assert!(!c.accepts(Some("Basic !!!")));
    }

    #[test]
    fn constant_time_eq_is_eq() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }
}
