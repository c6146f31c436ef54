//! Webhook signatures.
//!
//! Two headers sign every delivery:
//! - `X-Signature: sha256=<hex HMAC-SHA256(raw body)>`, as the API spec says, keyed with the
//!   endpoint secret exactly as shown to the user (the whole `whsec_...` string, UTF-8);
//! - Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature:
//!   v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>`), keyed with the base64-decoded
//!   part of the secret after `whsec_`, as that standard specifies. The timestamp lets
//!   receivers reject replays.
//!
//! During a secret rotation both secrets sign: `webhook-signature` then carries two
//! space-separated signatures and `X-Signature` stays with the newest secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

pub const SECRET_PREFIX: &str = "whsec_";

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the secret is empty or not of the form whsec_<base64>")]
    BadSecret,
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the signature does not match")]
    Mismatch,
}

/// A new endpoint secret: `whsec_` + 32 random bytes in base64.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", BASE64.encode(bytes))
}

fn mac(key: &[u8]) -> Result<HmacSha256, SignatureError> {
    // An empty key would make every signature forgeable by anyone; refuse it.
    if key.is_empty() {
        return Err(SignatureError::BadSecret);
    }
    HmacSha256::new_from_slice(key).map_err(|_| SignatureError::BadSecret)
}

fn standard_key(secret: &str) -> Result<Vec<u8>, SignatureError> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).ok_or(SignatureError::BadSecret)?;
    let key = BASE64.decode(encoded).map_err(|_| SignatureError::BadSecret)?;
    if key.is_empty() { Err(SignatureError::BadSecret) } else { Ok(key) }
}

/// The `X-Signature` header value for a body.
pub fn x_signature(secret: &str, body: &[u8]) -> Result<String, SignatureError> {
    let mut m = mac(secret.as_bytes())?;
    m.update(body);
    Ok(format!("sha256={}", hex::encode(m.finalize().into_bytes())))
}

/// Checks an `X-Signature` header in constant time.
pub fn verify_x_signature(secret: &str, body: &[u8], header: &str) -> Result<(), SignatureError> {
    let hex_sig = header.trim().strip_prefix("sha256=").ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(hex_sig).map_err(|_| SignatureError::Malformed)?;
    let mut m = mac(secret.as_bytes())?;
    m.update(body);
    m.verify_slice(&expected).map_err(|_| SignatureError::Mismatch)
}

/// One `v1,<base64>` Standard Webhooks signature.
pub fn standard_signature(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignatureError> {
    let mut m = mac(&standard_key(secret)?)?;
    m.update(format!("{msg_id}.{timestamp}.").as_bytes());
    m.update(body);
    Ok(format!("v1,{}", BASE64.encode(m.finalize().into_bytes())))
}

/// Checks a `webhook-signature` header (any of its space-separated `v1,` entries may match).
pub fn verify_standard(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
) -> Result<(), SignatureError> {
    let key = standard_key(secret)?;
    let mut saw_v1 = false;
    for entry in header.split_whitespace() {
        let Some(encoded) = entry.strip_prefix("v1,") else { continue };
        saw_v1 = true;
        let Ok(sig) = BASE64.decode(encoded) else { continue };
        let mut m = mac(&key)?;
        m.update(format!("{msg_id}.{timestamp}.").as_bytes());
        m.update(body);
        if m.verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    Err(if saw_v1 { SignatureError::Mismatch } else { SignatureError::Malformed })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;

    #[test]
    fn standard_webhooks_reference_vector() {
        // The example of the Standard Webhooks specification.
        let sig = standard_signature(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, BODY).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        verify_standard(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, BODY, &format!("v1,bm9wZQ== {sig}"))
            .unwrap();
        assert_eq!(
            verify_standard(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, BODY, &sig),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn x_signature_is_hex_hmac_of_the_body_keyed_with_the_secret() {
        // Reference computed with: printf '%s' BODY | openssl dgst -sha256 -hmac SECRET
        let sig = x_signature(SECRET, BODY).unwrap();
        assert_eq!(sig, "sha256=80ec8a89ce3cd22133a1066caecb4d04fea7467657c8514d717ec42c38a5c94c");
        verify_x_signature(SECRET, BODY, &sig).unwrap();
        assert_eq!(verify_x_signature(SECRET, b"other", &sig), Err(SignatureError::Mismatch));
        assert_eq!(verify_x_signature(SECRET, BODY, "md5=00"), Err(SignatureError::Malformed));
    }

    #[test]
    fn empty_and_malformed_secrets_are_refused() {
        assert_eq!(x_signature("", BODY), Err(SignatureError::BadSecret));
        assert_eq!(standard_signature("whsec_", "m", 1, BODY), Err(SignatureError::BadSecret));
        assert_eq!(standard_signature("nope", "m", 1, BODY), Err(SignatureError::BadSecret));
        let s = generate_secret();
        assert!(s.starts_with(SECRET_PREFIX) && standard_key(&s).unwrap().len() == 32);
    }
}
