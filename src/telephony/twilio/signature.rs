//! `X-Twilio-Signature`: Twilio signs each webhook with HMAC-SHA1 (key: the account's auth
//! token) over the full URL it requested followed by every POST parameter, sorted by name
//! (then value), as `name` + `value` with no separators; the result is base64. See
//! <https://www.twilio.com/docs/usage/security#validating-requests>.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> HmacSha1 {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = HmacSha1::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// The signature Twilio would send for this request (used by tests and the simulator).
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    BASE64.encode(mac(auth_token, url, params).finalize().into_bytes())
}

/// Constant-time check of `signature` for the request. Twilio's own validators also accept the
/// URL with the default port added or removed (a proxy may change it), so both are tried.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(signature) = BASE64.decode(signature.trim()) else {
        return false;
    };
    url_variants(url).iter().any(|candidate| mac(auth_token, candidate, params).verify_slice(&signature).is_ok())
}

fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return variants;
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    // Text-based on purpose: a URL parser would normalise the default port away, and the
    // signature is over the exact text.
    let other = match authority.rsplit_once(':') {
        // "[::1]" has colons but no port: its last part, "1]", is not all digits.
        Some((host, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => Some(host.to_owned()),
        _ => match scheme {
            "https" | "wss" => Some(format!("{authority}:443")),
            "http" | "ws" => Some(format!("{authority}:80")),
            _ => None,
        },
    };
    if let Some(authority) = other {
        variants.push(format!("{scheme}://{authority}{tail}"));
    }
    variants
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    /// Twilio's published example (its helper libraries' RequestValidator tests).
    fn documented() -> Vec<(String, String)> {
        params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ])
    }

    #[test]
    fn matches_twilios_published_vectors() {
        assert_eq!(sign("12345", URL, &documented()), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert!(verify("12345", URL, &documented(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        // Parameter order on the wire does not matter.
        let mut shuffled = documented();
        shuffled.reverse();
        assert!(verify("12345", URL, &shuffled, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
    }

    #[test]
    fn accepts_the_url_with_or_without_the_default_port() {
        assert!(verify(
            "12345",
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            &documented(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        let signed_with_port = sign("12345", "https://mycompany.com:443/myapp.php?foo=1&bar=2", &documented());
        assert!(verify("12345", URL, &documented(), &signed_with_port));
    }

    #[test]
    fn rejects_any_change() {
        let good = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert!(!verify("54321", URL, &documented(), good));
        assert!(!verify("12345", &format!("{URL}&x=1"), &documented(), good));
        let mut tampered = documented();
        tampered[2].1 = "9999".into();
        assert!(!verify("12345", URL, &tampered, good));
        for bad in ["", "FAIL", "not base64 !!", "invalid 王"] {
            assert!(!verify("12345", URL, &documented(), bad));
        }
    }
}
