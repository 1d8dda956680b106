//! Parsing (not yet verifying) SigV4 credentials.
//!
//! `Authorization: AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/kinesis/aws4_request,
//! SignedHeaders=host;x-amz-date, Signature=abcd…`

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigV4Header {
    pub access_key: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4ParseError {
    #[error("Authorization header requires the AWS4-HMAC-SHA256 algorithm")]
    UnsupportedAlgorithm,
    #[error("Authorization header requires '{0}' parameter")]
    MissingParameter(&'static str),
    #[error("Credential should be scoped to a valid region, a date, a service and aws4_request")]
    BadCredentialScope,
}

pub fn parse_authorization(header: &str) -> Result<SigV4Header, SigV4ParseError> {
    let rest = header
        .trim()
        .strip_prefix("AWS4-HMAC-SHA256")
        .ok_or(SigV4ParseError::UnsupportedAlgorithm)?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            continue;
        };
        match k.trim() {
            "Credential" => credential = Some(v.trim()),
            "SignedHeaders" => signed_headers = Some(v.trim()),
            "Signature" => signature = Some(v.trim()),
            _ => {}
        }
    }
    let credential = credential.ok_or(SigV4ParseError::MissingParameter("Credential"))?;
    let signed_headers =
        signed_headers.ok_or(SigV4ParseError::MissingParameter("SignedHeaders"))?;
    let signature = signature.ok_or(SigV4ParseError::MissingParameter("Signature"))?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, terminator] = scope.as_slice() else {
        return Err(SigV4ParseError::BadCredentialScope);
    };
    if *terminator != "aws4_request" || access_key.is_empty() || region.is_empty() {
        return Err(SigV4ParseError::BadCredentialScope);
    }
    Ok(SigV4Header {
        access_key: access_key.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers: signed_headers.split(';').map(str::to_string).collect(),
        signature: signature.to_string(),
    })
}

/// How a request claims to be signed, before any signature is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureKind {
    /// An `Authorization` header.
    Header,
    /// A presigned query string (`X-Amz-Algorithm=...`).
    Query,
}

/// Why a request's signature is absent or incomplete, worded as AWS words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresenceError {
    #[error("Missing Authentication Token")]
    Missing,
    #[error(
        "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
    )]
    Both,
    #[error("{0}")]
    Incomplete(String),
}

/// The query parameters a presigned request must carry, in AWS's order.
const QUERY_PARAMS: [&str; 5] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-SignedHeaders",
    "X-Amz-Date",
];

/// The `Authorization` header parameters, in AWS's order.
const HEADER_PARAMS: [&str; 3] = ["Credential", "Signature", "SignedHeaders"];

fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// Checks that a request carries exactly one signature with every part
/// present (not that it verifies): the front door's first question, asked
/// even when credentials are not enforced. `has_date` is whether an
/// `X-Amz-Date` or `Date` header is present.
pub fn check_presence(
    authorization: Option<&str>,
    has_date: bool,
    query: Option<&str>,
) -> Result<SignatureKind, PresenceError> {
    let query = query.unwrap_or("");
    let in_query = query_pairs(query).any(|(k, _)| k == "X-Amz-Algorithm");
    match (authorization, in_query) {
        (Some(_), true) => Err(PresenceError::Both),
        (None, false) => Err(PresenceError::Missing),
        (Some(header), false) => {
            // Parameters follow the algorithm, separated by commas or spaces.
            let params = || {
                header
                    .split([',', ' '])
                    .filter(|t| !t.is_empty())
                    .skip(1)
                    .map(|t| t.split_once('=').unwrap_or((t, "")))
            };
            let mut msg = String::new();
            for want in HEADER_PARAMS {
                if !params().any(|(k, v)| k == want && !v.is_empty()) {
                    msg.push_str(&format!(
                        "Authorization header requires '{want}' parameter. "
                    ));
                }
            }
            if !has_date {
                msg.push_str("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ");
            }
            if msg.is_empty() {
                Ok(SignatureKind::Header)
            } else {
                msg.push_str("Authorization=");
                msg.push_str(header);
                Err(PresenceError::Incomplete(msg))
            }
        }
        (None, true) => {
            let mut msg = String::new();
            for want in QUERY_PARAMS {
                if !query_pairs(query).any(|(k, v)| k == want && !v.is_empty()) {
                    msg.push_str(&format!(
                        "AWS query-string parameters must include '{want}'. "
                    ));
                }
            }
            if msg.is_empty() {
                Ok(SignatureKind::Query)
            } else {
                msg.push_str("Re-examine the query-string parameters.");
                Err(PresenceError::Incomplete(msg))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_boto_header() {
        let h = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kinesis/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
        let p = parse_authorization(h).unwrap();
        assert_eq!(p.access_key, "AKIDEXAMPLE");
        assert_eq!(p.region, "us-east-1");
        assert_eq!(p.service, "kinesis");
        assert_eq!(p.signed_headers.len(), 4);
    }

    #[test]
    fn rejects_bad() {
        assert_eq!(
            parse_authorization("Basic abc"),
            Err(SigV4ParseError::UnsupportedAlgorithm)
        );
        assert_eq!(
            parse_authorization(
                "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=x"
            ),
            Err(SigV4ParseError::BadCredentialScope)
        );
        assert_eq!(
            parse_authorization("AWS4-HMAC-SHA256 SignedHeaders=host, Signature=x"),
            Err(SigV4ParseError::MissingParameter("Credential"))
        );
    }

    #[test]
    fn presence() {
        assert_eq!(
            check_presence(None, true, None),
            Err(PresenceError::Missing)
        );
        // A query parameter that only looks like the algorithm is no signature.
        assert_eq!(
            check_presence(None, true, Some("X-Amz-Algorith&X-Amz-Credential=a")),
            Err(PresenceError::Missing)
        );
        assert_eq!(
            check_presence(Some("X"), false, Some("X-Amz-Algorithm")),
            Err(PresenceError::Both)
        );
        assert_eq!(
            check_presence(Some("X"), false, None).unwrap_err().to_string(),
            "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. \
             Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either \
             a 'X-Amz-Date' or a 'Date' header. Authorization=X"
        );
        assert_eq!(
            check_presence(Some("AWS4- Signature=b, Credential=a"), true, None)
                .unwrap_err()
                .to_string(),
            "Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4- Signature=b, Credential=a"
        );
        assert_eq!(
            check_presence(None, false, Some("X-Amz-Algorithm=a&X-Amz-Credential=b&X-Amz-Signature=c&X-Amz-Date=d"))
                .unwrap_err()
                .to_string(),
            "AWS query-string parameters must include 'X-Amz-SignedHeaders'. Re-examine the query-string parameters."
        );
        let h = "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=ab";
        assert_eq!(
            check_presence(Some(h), true, None),
            Ok(SignatureKind::Header)
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in ".*") {
            let _ = parse_authorization(&s);
            let _ = check_presence(Some(&s), false, Some(&s));
        }
    }
}
