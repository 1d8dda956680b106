//! The one registry of Lambda functions, shared by Firehose record
//! transformation, Analytics outputs and event-source mappings.
//!
//! runnel runs no function code: each function ARN maps to an HTTP(S) URL
//! that stands in for it (`[functions]` in runnel.toml, or
//! `runnel serve --function ARN=URL`). Invoking a function POSTs the event
//! JSON to the URL and returns the response body, like a synchronous
//! (`RequestResponse`) Lambda Invoke.
//!
//! Lookup follows AWS: a function may be named by full ARN, partial ARN or
//! bare name (the server's region and account), with or without a
//! qualifier. A qualified name uses an entry for exactly that qualifier if
//! one is registered, else the function's unqualified entry; `$LATEST` and
//! no qualifier are the same version.
//!
//! Both `http://` and `https://` URLs are accepted, to any host: plain HTTP
//! sends event payloads (record data) unencrypted, so use it only for a
//! function on the same host or a trusted network. HTTPS verifies the
//! server against the system's trusted roots (plus any given to
//! [`FunctionRegistry::with_extra_roots`]).
//!
//! The response contract, as Lambda's Invoke API: a 2xx status with the
//! function's result as the body; a header `X-Amz-Function-Error` (any
//! value, Lambda uses `Unhandled`) marks the body as the function's error
//! document; any other status is an invocation failure.

mod invoke;
mod names;

use std::collections::BTreeMap;

use bytes::Bytes;

pub use invoke::{INVOKE_REQUEST_BYTES_MAX, INVOKE_RESPONSE_BYTES_MAX};
pub use names::{FunctionName, FUNCTION_NAME_CHARS_MAX, QUALIFIER_CHARS_MAX};

/// Problems with the registry's configuration; reported at start-up.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error("function '{entry}': {reason}")]
    InvalidFunctionName { entry: String, reason: String },
    #[error("function '{function}': URL '{url}' {reason}")]
    InvalidUrl {
        function: String,
        url: String,
        reason: String,
    },
    #[error("function {0} is named more than once")]
    Duplicate(String),
    #[error("--function '{0}' must be ARN=URL")]
    InvalidFlag(String),
    #[error("cannot set up HTTPS for functions: {0}")]
    Tls(String),
}

/// Why an invocation failed. Callers map these to their own API's errors
/// (Firehose: `NotFound` is an InvalidArgumentException at configuration
/// time and a `Lambda.FunctionNotFound`-style processing failure later).
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    #[error("Invalid function name {value}: {reason}")]
    InvalidName { value: String, reason: String },
    /// Lambda's ResourceNotFoundException wording.
    #[error("Function not found: {arn}")]
    NotFound { arn: String },
    #[error("Request payload of {bytes} bytes exceeds the {max} bytes limit for function {arn}")]
    RequestTooLarge {
        arn: String,
        bytes: usize,
        max: usize,
    },
    #[error("Function {arn} did not respond within {timeout_ms} ms")]
    Timeout { arn: String, timeout_ms: u64 },
    /// Connecting, TLS, or the HTTP exchange failed.
    #[error("Cannot invoke function {arn}: {message}")]
    Transport { arn: String, message: String },
    /// The endpoint answered with a status other than 2xx.
    #[error("Function {arn} invocation failed with HTTP status {status}: {body}")]
    Status {
        arn: String,
        status: u16,
        body: String,
    },
    /// The function ran and reported an error (`X-Amz-Function-Error`);
    /// `payload` is its error document.
    #[error("Function {arn} returned an error ({kind})")]
    Function {
        arn: String,
        kind: String,
        payload: Bytes,
    },
    #[error("Response from function {arn} exceeds the {max} bytes limit")]
    ResponseTooLarge { arn: String, max: usize },
}

impl FunctionError {
    /// Worth retrying the same request: timeouts, transport failures,
    /// throttling (429) and server errors (5xx). Everything else fails the
    /// same way again.
    pub fn is_retryable(&self) -> bool {
        match self {
            FunctionError::Timeout { .. } | FunctionError::Transport { .. } => true,
            FunctionError::Status { status, .. } => *status == 429 || *status >= 500,
            FunctionError::InvalidName { .. }
            | FunctionError::NotFound { .. }
            | FunctionError::RequestTooLarge { .. }
            | FunctionError::Function { .. }
            | FunctionError::ResponseTooLarge { .. } => false,
        }
    }
}

/// Function ARN (qualified or not) → URL, plus the HTTP client that
/// invokes them. Cheap to share behind an `Arc`.
pub struct FunctionRegistry {
    region: String,
    account: String,
    urls: BTreeMap<FunctionName, http::Uri>,
    extra_roots_der: Vec<Vec<u8>>,
    /// Made on the first invocation, on a blocking thread: it reads the
    /// system's root certificates.
    client: tokio::sync::OnceCell<Result<invoke::Client, RegistryError>>,
}

impl FunctionRegistry {
    /// An empty registry; bare names resolve in `region` and `account`.
    pub fn new(region: &str, account: &str) -> Self {
        Self::with_extra_roots(region, account, Vec::new())
    }

    /// Also trusts these DER certificates for HTTPS (a private CA); a bad
    /// one fails every invocation with a Transport error naming it.
    pub fn with_extra_roots(region: &str, account: &str, extra_roots_der: Vec<Vec<u8>>) -> Self {
        FunctionRegistry {
            region: region.into(),
            account: account.into(),
            urls: BTreeMap::new(),
            extra_roots_der,
            client: tokio::sync::OnceCell::new(),
        }
    }

    /// Builds a registry from `(function, url)` entries (the `[functions]`
    /// table, then `--function` flags), checking every one.
    pub fn from_entries<'a>(
        region: &str,
        account: &str,
        entries: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, RegistryError> {
        let mut r = Self::new(region, account);
        r.extend(entries)?;
        Ok(r)
    }

    /// Adds `function` (any accepted form) → `url`.
    pub fn insert(&mut self, function: &str, url: &str) -> Result<(), RegistryError> {
        let name =
            FunctionName::parse(function, &self.region, &self.account).map_err(|reason| {
                RegistryError::InvalidFunctionName {
                    entry: function.into(),
                    reason,
                }
            })?;
        let uri = parse_url(url).map_err(|reason| RegistryError::InvalidUrl {
            function: function.into(),
            url: url.into(),
            reason,
        })?;
        let key = normalise(name);
        if self.urls.contains_key(&key) {
            return Err(RegistryError::Duplicate(key.to_string()));
        }
        self.urls.insert(key, uri);
        Ok(())
    }

    /// Adds every `(function, url)` pair (config table entries, then flags).
    pub fn extend<'a>(
        &mut self,
        entries: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), RegistryError> {
        for (f, u) in entries {
            self.insert(f, u)?;
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.urls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// The registered function a name refers to, and its URL. Callers that
    /// validate configuration (Firehose's CreateDeliveryStream) use this.
    pub fn resolve(&self, function: &str) -> Result<(FunctionName, &http::Uri), FunctionError> {
        let name =
            FunctionName::parse(function, &self.region, &self.account).map_err(|reason| {
                FunctionError::InvalidName {
                    value: function.into(),
                    reason,
                }
            })?;
        let key = normalise(name.clone());
        let found = self
            .urls
            .get(&key)
            .or_else(|| self.urls.get(&key.unqualified()));
        match found {
            Some(uri) => Ok((name, uri)),
            None => Err(FunctionError::NotFound {
                arn: name.to_string(),
            }),
        }
    }

    /// Invokes `function` with `payload` (the event JSON), waiting at most
    /// `timeout` for the whole exchange; returns the response body.
    pub async fn invoke(
        &self,
        function: &str,
        payload: Bytes,
        timeout: std::time::Duration,
    ) -> Result<Bytes, FunctionError> {
        let (name, uri) = self.resolve(function)?;
        let arn = name.to_string();
        let client = self
            .client
            .get_or_init(|| async {
                let roots = self.extra_roots_der.clone();
                tokio::task::spawn_blocking(move || invoke::Client::new(&roots))
                    .await
                    .unwrap_or_else(|e| Err(RegistryError::Tls(e.to_string())))
            })
            .await
            .as_ref()
            .map_err(|e| FunctionError::Transport {
                arn: arn.clone(),
                message: e.to_string(),
            })?;
        client.invoke(&arn, uri.clone(), payload, timeout).await
    }
}

/// `$LATEST` is the unqualified version.
fn normalise(mut name: FunctionName) -> FunctionName {
    if name.qualifier.as_deref() == Some("$LATEST") {
        name.qualifier = None;
    }
    name
}

fn parse_url(url: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => return Err(format!("has scheme '{other}'; use http or https")),
        None => return Err("has no scheme; use http:// or https://".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    Ok(uri)
}

/// Splits a `--function ARN=URL` flag at its first `=` (function names
/// cannot hold one; URLs may).
pub fn parse_flag(flag: &str) -> Result<(String, String), RegistryError> {
    match flag.split_once('=') {
        Some((f, u)) if !f.is_empty() && !u.is_empty() => Ok((f.into(), u.into())),
        _ => Err(RegistryError::InvalidFlag(flag.into())),
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
