//! Authentication and authorization at the front door.
//!
//! `auth = "open"` (the default, loopback only): any credentials are
//! accepted. `auth = "enforced"`: every API request must carry a valid SigV4
//! signature from a principal in the principals file, and that principal's
//! policies must allow the action (`kinesis:<Operation>`,
//! `cloudwatch:<Operation>`) on the resource (the stream or consumer ARN the
//! request names). The principals file is re-read when it changes.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::SystemTime;

use parking_lot::Mutex;
use runnel_auth::policy::{evaluate, Context, Decision};
use runnel_auth::principals::PrincipalsFile;
use runnel_auth::sigv4::{verify, SignedRequest};
use runnel_auth::AuthError;

pub struct AuthState {
    path: PathBuf,
    master: [u8; 32],
    region: String,
    account_id: String,
    cache: Mutex<(Option<SystemTime>, PrincipalsFile)>,
}

/// Who made a request (for logs and the audit trail).
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub arn: String,
    pub access_key: String,
}

impl AuthState {
    pub fn load(
        path: PathBuf,
        region: &str,
        account_id: &str,
        master: [u8; 32],
    ) -> anyhow::Result<Self> {
        let mut file = PrincipalsFile::load(&path)?;
        file.decrypt_secrets(&master)?;
        if file
            .principals
            .iter()
            .any(|p| p.secret_enc.is_none() && !p.secret.is_empty())
        {
            tracing::warn!(path = %path.display(), "principals file holds plaintext secrets; `runnel auth` stores them encrypted");
        }
        let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        if file.principals.is_empty() {
            tracing::warn!(path = %path.display(), "auth is enforced but no principals exist: add one with `runnel auth add NAME`");
        }
        Ok(AuthState {
            path,
            master,
            region: region.to_string(),
            account_id: account_id.to_string(),
            cache: Mutex::new((mtime, file)),
        })
    }

    fn principals(&self) -> PrincipalsFile {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let mut cache = self.cache.lock();
        if mtime != cache.0 {
            match PrincipalsFile::load(&self.path) {
                Ok(mut f) => match f.decrypt_secrets(&self.master) {
                    Ok(()) => *cache = (mtime, f),
                    Err(e) => {
                        tracing::warn!(error = %e, "keeping the previous principals: secrets do not decrypt")
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "keeping the previous principals: the file does not load")
                }
            }
        }
        cache.1.clone()
    }

    pub fn principal_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:user/{name}", self.account_id)
    }

    /// [`AuthState::check_on`] for a request that did not come over TLS.
    #[allow(clippy::too_many_arguments)]
    pub fn check(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        peer: IpAddr,
        services: &[&str],
        action: &str,
        resource: &str,
        now_ms: u64,
    ) -> Result<Caller, AuthError> {
        self.check_on(
            parts, body, peer, false, services, action, resource, None, now_ms,
        )
    }

    /// Verifies the signature and evaluates the caller's policies;
    /// `secure` is whether the request came over TLS (`aws:SecureTransport`).
    #[allow(clippy::too_many_arguments)]
    pub fn check_on(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        peer: IpAddr,
        secure: bool,
        services: &[&str],
        action: &str,
        resource: &str,
        resource_policy: Option<&serde_json::Value>,
        now_ms: u64,
    ) -> Result<Caller, AuthError> {
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().ok()?.to_string(),
                ))
            })
            .chain(
                // HTTP/2 carries Host as :authority.
                parts
                    .uri
                    .authority()
                    .filter(|_| !parts.headers.contains_key(http::header::HOST))
                    .map(|a| ("host".to_string(), a.to_string())),
            )
            .collect();
        let req = SignedRequest {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            headers,
            body,
        };
        let principals = self.principals();
        let secret_of = |ak: &str| {
            principals
                .find(ak)
                .map(|p| (p.secret.clone(), p.session_token.clone()))
        };
        let verified = verify(&req, now_ms, &self.region, services, &secret_of)?;
        let principal = principals
            .find(&verified.access_key)
            .ok_or(AuthError::UnrecognizedClient)?;
        let arn = self.principal_arn(&principal.name);
        let ctx = Context {
            source_ip: Some(peer),
            secure_transport: secure,
        };
        match evaluate(&principal.policies, resource_policy, &arn, action, resource, &ctx) {
            Decision::Allow => Ok(Caller { name: principal.name.clone(), arn, access_key: verified.access_key }),
            Decision::ExplicitDeny => {
                let identity_denies =
                    evaluate(&principal.policies, None, &arn, action, resource, &ctx) == Decision::ExplicitDeny;
                let kind = if identity_denies { "an identity-based" } else { "a resource-based" };
                Err(AuthError::AccessDenied(format!(
                    "User: {arn} is not authorized to perform: {action} on resource: {resource} with an explicit deny in {kind} policy"
                )))
            }
            Decision::ImplicitDeny => Err(AuthError::AccessDenied(format!(
                "User: {arn} is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action"
            ))),
        }
    }
}
