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

    proptest! {
        #[test]
        fn never_panics(s in ".*") {
            let _ = parse_authorization(&s);
        }
    }
}
