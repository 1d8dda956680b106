//! AWS Signature Version 4 verification.
//!
//! The server rebuilds the canonical request from what it received, derives
//! the signing key from the caller's secret, and compares signatures in
//! constant time. Checked: algorithm, credential scope (date, region,
//! service, `aws4_request`), that `host` and `x-amz-date` are signed, the
//! request time within 15 minutes of the server's clock, that
//! `x-amz-target` (the operation) is signed when sent, and the payload hash,
//! always computed from the body received: `UNSIGNED-PAYLOAD` is an S3
//! option that the JSON protocols do not have, so it is refused, except in
//! a presigned request without a body.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::AuthError;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a request's time may be from the server's: Kinesis allows 5
/// minutes ("Signature expired: … (… - 5 min.)" in its answers); the
/// other services signed for here (CloudWatch) 15.
pub const CLOCK_SKEW_MAX_MS: u64 = 15 * 60 * 1000;
pub const KINESIS_CLOCK_SKEW_MAX_MS: u64 = 5 * 60 * 1000;

/// What verification needs from an HTTP request.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// Path exactly as received (already percent-encoded by the client).
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// Header names lower-case.
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

/// Finds a caller's secret (and required session token) by access key.
pub type SecretLookup<'a> = &'a dyn Fn(&str) -> Option<(String, Option<String>)>;

/// Identity proven by a valid signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub access_key: String,
    pub region: String,
    pub session_token: Option<String>,
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("any key length"));
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    hmac(&k, b"aws4_request")
}

fn header<'a>(req: &'a SignedRequest<'_>, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `20150830T123600Z` → epoch ms.
pub fn parse_amz_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = runnel_types::civil::days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se;
    u64::try_from(secs).ok().map(|s| s * 1000)
}

fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/');
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_query(query: Option<&str>, skip_signature: bool) -> String {
    let mut pairs: Vec<(String, String)> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .filter(|(k, _)| !(skip_signature && k == "X-Amz-Signature"))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

/// The parts of a signature, from the header or a presigned query.
struct Parts {
    access_key: String,
    date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
    amz_date: String,
    presigned_expires_s: Option<u64>,
    session_token: Option<String>,
}

fn parts(req: &SignedRequest<'_>) -> Result<Parts, AuthError> {
    if let Some(auth) = header(req, "authorization") {
        let h = runnel_protocol::sigv4::parse_authorization(auth)
            .map_err(|e| AuthError::IncompleteSignature(e.to_string()))?;
        let amz_date = header(req, "x-amz-date").or_else(|| header(req, "date")).ok_or_else(|| {
            AuthError::IncompleteSignature("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into())
        })?;
        return Ok(Parts {
            access_key: h.access_key,
            date: h.date,
            region: h.region,
            service: h.service,
            signed_headers: h.signed_headers,
            signature: h.signature,
            amz_date: amz_date.to_string(),
            presigned_expires_s: None,
            session_token: header(req, "x-amz-security-token").map(str::to_string),
        });
    }
    let q = req.query;
    if query_param(q, "X-Amz-Algorithm").is_none() {
        return Err(AuthError::MissingAuthenticationToken);
    }
    if query_param(q, "X-Amz-Algorithm").as_deref() != Some(ALGORITHM) {
        return Err(AuthError::IncompleteSignature(
            "X-Amz-Algorithm must be AWS4-HMAC-SHA256".into(),
        ));
    }
    let need = |n: &str| {
        query_param(q, n).ok_or_else(|| {
            AuthError::IncompleteSignature(format!(
                "AWS query-string parameters must include '{n}'."
            ))
        })
    };
    let credential = need("X-Amz-Credential")?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [ak, date, region, service, "aws4_request"] = scope.as_slice() else {
        return Err(AuthError::IncompleteSignature(
            "Credential should be scoped to a valid region.".into(),
        ));
    };
    Ok(Parts {
        access_key: ak.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers: need("X-Amz-SignedHeaders")?
            .split(';')
            .map(str::to_string)
            .collect(),
        signature: need("X-Amz-Signature")?,
        amz_date: need("X-Amz-Date")?,
        presigned_expires_s: Some(need("X-Amz-Expires")?.parse().map_err(|_| {
            AuthError::IncompleteSignature("X-Amz-Expires must be a number of seconds.".into())
        })?),
        session_token: query_param(q, "X-Amz-Security-Token"),
    })
}

/// Verifies a request. `secret_of(access_key)` returns the caller's secret
/// (and the session token it must present, for temporary credentials).
pub fn verify(
    req: &SignedRequest<'_>,
    now_ms: u64,
    expect_region: &str,
    expect_services: &[&str],
    secret_of: SecretLookup<'_>,
) -> Result<Verified, AuthError> {
    let p = parts(req)?;
    let (secret, token) = secret_of(&p.access_key).ok_or(AuthError::UnrecognizedClient)?;
    if token.is_some() && token != p.session_token {
        return Err(AuthError::UnrecognizedClient);
    }
    if p.region != expect_region {
        return Err(AuthError::InvalidSignature(format!(
            "Credential should be scoped to a valid region, not '{}'. Expected '{expect_region}'.",
            p.region
        )));
    }
    if !expect_services.contains(&p.service.as_str()) {
        return Err(AuthError::InvalidSignature(format!(
            "Credential should be scoped to correct service: '{}'.",
            expect_services.first().copied().unwrap_or("")
        )));
    }
    if !p.signed_headers.iter().any(|h| h == "host") {
        return Err(AuthError::InvalidSignature(
            "'Host' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    let when = parse_amz_date(&p.amz_date).ok_or_else(|| {
        AuthError::IncompleteSignature(format!(
            "Date must be in ISO-8601 'basic format'. Got '{}'.",
            p.amz_date
        ))
    })?;
    if !p.amz_date.starts_with(&p.date) {
        return Err(AuthError::InvalidSignature("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.".into()));
    }
    match p.presigned_expires_s {
        None => {
            let skew_ms = if p.service == "kinesis" {
                KINESIS_CLOCK_SKEW_MAX_MS
            } else {
                CLOCK_SKEW_MAX_MS
            };
            let minutes = skew_ms / 60_000;
            if when + skew_ms < now_ms {
                return Err(AuthError::InvalidSignature(format!(
                    "Signature expired: {} is now earlier than {} ({} - {minutes} min.)",
                    p.amz_date,
                    fmt_amz(now_ms - skew_ms),
                    fmt_amz(now_ms)
                )));
            }
            if when > now_ms + skew_ms {
                return Err(AuthError::InvalidSignature(format!(
                    "Signature not yet current: {} is still later than {} ({} + {minutes} min.)",
                    p.amz_date,
                    fmt_amz(now_ms + skew_ms),
                    fmt_amz(now_ms)
                )));
            }
        }
        Some(expires) => {
            if now_ms > when + expires.min(604_800) * 1000 || when > now_ms + CLOCK_SKEW_MAX_MS {
                return Err(AuthError::AccessDenied("Request has expired".into()));
            }
        }
    }
    // The operation is named by a header; unsigned, the holder of a
    // signature could turn it into any other operation.
    if header(req, "x-amz-target").is_some()
        && !p.signed_headers.iter().any(|h| h == "x-amz-target")
    {
        return Err(AuthError::InvalidSignature(
            "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    // The JSON protocols sign the payload: the canonical request always
    // carries the hash of the body received, whatever `x-amz-content-sha256`
    // claims (so `UNSIGNED-PAYLOAD` cannot stand in for a body). Only a
    // presigned request without a body may have signed `UNSIGNED-PAYLOAD`.
    let payload_hash = hex::encode(Sha256::digest(req.body));
    match header(req, "x-amz-content-sha256") {
        Some(h) if h == payload_hash => {}
        None => {}
        Some(h) if is_unsigned_payload(h) => {}
        Some(_) => {
            return Err(AuthError::InvalidSignature(
                "The provided 'x-amz-content-sha256' header does not match what was computed."
                    .into(),
            ))
        }
    }
    let mut canonical_headers = String::new();
    for name in &p.signed_headers {
        let values: Vec<String> = req
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let scope = format!("{}/{}/{}/aws4_request", p.date, p.region, p.service);
    let key = signing_key(&secret, &p.date, &p.region, &p.service);
    let signature_for = |payload_hash: &str| {
        let canonical_request = format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            req.method,
            canonical_path(req.path),
            canonical_query(req.query, p.presigned_expires_s.is_some()),
            canonical_headers,
            p.signed_headers.join(";"),
            payload_hash
        );
        let string_to_sign = format!(
            "{ALGORITHM}\n{}\n{scope}\n{}",
            p.amz_date,
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        hex::encode(hmac(&key, string_to_sign.as_bytes()))
    };
    let matches = |expected: String| {
        expected.len() == p.signature.len()
            && expected
                .bytes()
                .zip(p.signature.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    };
    let unsigned_presign = p.presigned_expires_s.is_some() && req.body.is_empty();
    let same = matches(signature_for(&payload_hash))
        || (unsigned_presign && matches(signature_for("UNSIGNED-PAYLOAD")));
    if !same {
        return Err(AuthError::InvalidSignature(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
        ));
    }
    Ok(Verified {
        access_key: p.access_key,
        region: p.region,
        session_token: p.session_token,
    })
}

/// `UNSIGNED-PAYLOAD` and the streaming forms S3 accepts in its place.
fn is_unsigned_payload(h: &str) -> bool {
    h == "UNSIGNED-PAYLOAD" || h.starts_with("STREAMING-")
}

/// The path as SigV4 canonicalises it for non-S3 services: each segment
/// URI-encoded (after decoding what the client sent), slashes kept.
fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.split('/')
        .map(|seg| uri_encode(&percent_decode(seg), false))
        .collect::<Vec<_>>()
        .join("/")
}

fn fmt_amz(ms: u64) -> String {
    let (y, mo, d, h, m, s) = runnel_types::civil::utc(ms / 1000);
    format!("{y:04}{mo:02}{d:02}T{h:02}{m:02}{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published SigV4 example (the `get-vanilla` test of the suite):
    /// GET / with Host example.amazonaws.com, X-Amz-Date 20150830T123600Z,
    /// secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, region us-east-1, service "service".
    #[test]
    fn aws_get_vanilla_vector() {
        let req = SignedRequest {
            method: "GET",
            path: "/",
            query: None,
            headers: vec![
                ("host".into(), "example.amazonaws.com".into()),
                ("x-amz-date".into(), "20150830T123600Z".into()),
                ("authorization".into(), "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31".into()),
            ],
            body: b"",
        };
        let now = parse_amz_date("20150830T123600Z").unwrap();
        let secret = |ak: &str| {
            (ak == "AKIDEXAMPLE")
                .then(|| ("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_string(), None))
        };
        let v = verify(&req, now, "us-east-1", &["service"], &secret).unwrap();
        assert_eq!(v.access_key, "AKIDEXAMPLE");
        // Wrong secret, wrong region, skewed clock, unknown key.
        let wrong = |_: &str| Some(("nope".to_string(), None));
        assert!(matches!(
            verify(&req, now, "us-east-1", &["service"], &wrong),
            Err(AuthError::InvalidSignature(_))
        ));
        assert!(matches!(
            verify(&req, now, "eu-west-1", &["service"], &secret),
            Err(AuthError::InvalidSignature(_))
        ));
        let later = now + 16 * 60 * 1000;
        let err = verify(&req, later, "us-east-1", &["service"], &secret).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z (20150830T125200Z - 15 min.)"
        );
        let earlier = now - 16 * 60 * 1000;
        let err = verify(&req, earlier, "us-east-1", &["service"], &secret).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Signature not yet current: 20150830T123600Z is still later than 20150830T123500Z (20150830T122000Z + 15 min.)"
        );
        assert_eq!(
            verify(&req, now, "us-east-1", &["service"], &|_| None),
            Err(AuthError::UnrecognizedClient)
        );
    }

    #[test]
    fn missing_and_malformed() {
        let req = SignedRequest {
            method: "POST",
            path: "/",
            query: None,
            headers: vec![],
            body: b"",
        };
        assert_eq!(
            verify(&req, 0, "us-east-1", &["kinesis"], &|_| None),
            Err(AuthError::MissingAuthenticationToken)
        );
        let req = SignedRequest {
            method: "POST",
            path: "/",
            query: None,
            headers: vec![(
                "authorization".into(),
                "AWS4-HMAC-SHA256 Credential=x".into(),
            )],
            body: b"",
        };
        assert!(matches!(
            verify(&req, 0, "us-east-1", &["kinesis"], &|_| None),
            Err(AuthError::IncompleteSignature(_))
        ));
    }

    /// Signs `req` (header form) as a client would, over `payload_hash`.
    fn sign(req: &mut SignedRequest<'_>, signed: &str, payload_hash: &str) {
        let date = "20150830T123600Z";
        req.headers.push(("x-amz-date".into(), date.into()));
        let mut canonical_headers = String::new();
        for name in signed.split(';') {
            let v = header(req, name).unwrap_or_default().to_string();
            canonical_headers.push_str(&format!("{name}:{v}\n"));
        }
        let canonical_request = format!(
            "{}\n{}\n{}\n{canonical_headers}\n{signed}\n{payload_hash}",
            req.method,
            canonical_path(req.path),
            canonical_query(req.query, false),
        );
        let scope = "20150830/us-east-1/kinesis/aws4_request";
        let sts = format!(
            "{ALGORITHM}\n{date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let key = signing_key("secret", "20150830", "us-east-1", "kinesis");
        let sig = hex::encode(hmac(&key, sts.as_bytes()));
        req.headers.push((
            "authorization".into(),
            format!("{ALGORITHM} Credential=AK/{scope}, SignedHeaders={signed}, Signature={sig}"),
        ));
    }

    fn json_request(body: &[u8]) -> SignedRequest<'_> {
        SignedRequest {
            method: "POST",
            path: "/",
            query: None,
            headers: vec![
                ("host".into(), "localhost".into()),
                ("x-amz-target".into(), "Kinesis_20131202.ListStreams".into()),
            ],
            body,
        }
    }

    #[test]
    fn payload_must_be_signed() {
        let now = parse_amz_date("20150830T123600Z").unwrap();
        let secret = |_: &str| Some(("secret".to_string(), None));
        let check = |req: &SignedRequest<'_>| verify(req, now, "us-east-1", &["kinesis"], &secret);
        // The body's own hash: accepted.
        let mut ok = json_request(b"{}");
        sign(
            &mut ok,
            "host;x-amz-date;x-amz-target",
            &hex::encode(Sha256::digest(b"{}")),
        );
        assert!(check(&ok).is_ok());
        // UNSIGNED-PAYLOAD, declared and signed: refused, whatever the body.
        for body in [&b"{}"[..], b"{\"Limit\": 1}"] {
            let mut req = json_request(body);
            req.headers
                .push(("x-amz-content-sha256".into(), "UNSIGNED-PAYLOAD".into()));
            sign(
                &mut req,
                "host;x-amz-content-sha256;x-amz-date;x-amz-target",
                "UNSIGNED-PAYLOAD",
            );
            assert!(
                matches!(check(&req), Err(AuthError::InvalidSignature(m)) if m.starts_with("The request signature we calculated"))
            );
        }
        // The operation header left out of the signature: refused.
        let mut req = json_request(b"{}");
        sign(
            &mut req,
            "host;x-amz-date",
            &hex::encode(Sha256::digest(b"{}")),
        );
        assert_eq!(
            check(&req),
            Err(AuthError::InvalidSignature(
                "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization.".into()
            ))
        );
    }

    #[test]
    fn dates() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(
            fmt_amz(parse_amz_date("20240229T235959Z").unwrap()),
            "20240229T235959Z"
        );
        assert_eq!(parse_amz_date("2024-02-29"), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(auth in ".*", date in ".*", query in ".*", body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let req = SignedRequest {
                method: "POST",
                path: "/",
                query: Some(&query),
                headers: vec![("authorization".into(), auth), ("x-amz-date".into(), date), ("host".into(), "h".into())],
                body: &body,
            };
            let _ = verify(&req, 1_700_000_000_000, "us-east-1", &["kinesis"], &|_| Some(("s".into(), None)));
        }
    }
}
