//! Registry lookups and invocations against a real HTTP(S) server on
//! 127.0.0.1:0 started by each test.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use super::*;

const R: &str = "us-east-1";
const A: &str = "123456789012";
const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:echo";

/// The stand-in function: routes by path.
async fn handle(req: http::Request<Incoming>) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let arn_header = req
        .headers()
        .get("x-runnel-function-arn")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    #[allow(clippy::disallowed_methods)] // test server, small bodies
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let response = match path.as_str() {
        "/echo" => http::Response::new(Full::new(Bytes::from(format!(
            "{content_type} {arn_header} {}",
            String::from_utf8_lossy(&body)
        )))),
        "/v1" => http::Response::new(Full::new(Bytes::from_static(b"version one"))),
        "/fails" => http::Response::builder()
            .header("X-Amz-Function-Error", "Unhandled")
            .body(Full::new(Bytes::from_static(
                br#"{"errorMessage":"bad record","errorType":"Error"}"#,
            )))
            .unwrap(),
        "/500" => http::Response::builder()
            .status(503)
            .body(Full::new(Bytes::from("x".repeat(2_000))))
            .unwrap(),
        "/404" => http::Response::builder()
            .status(404)
            .body(Full::new(Bytes::from_static(b"no such path")))
            .unwrap(),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            http::Response::new(Full::new(Bytes::new()))
        }
        "/big" => http::Response::new(Full::new(Bytes::from(vec![
            b'a';
            INVOKE_RESPONSE_BYTES_MAX + 1
        ]))),
        _ => http::Response::builder()
            .status(400)
            .body(Full::new(Bytes::new()))
            .unwrap(),
    };
    Ok(response)
}

async fn serve_http() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service_fn(handle))
                    .await;
            });
        }
    });
    addr
}

/// An HTTPS server with a certificate for 127.0.0.1 from a fresh CA;
/// returns its address and the CA certificate (DER).
async fn serve_https() -> (SocketAddr, Vec<u8>) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service_fn(handle))
                    .await;
            });
        }
    });
    (addr, ca.der().to_vec())
}

fn registry(entries: &[(&str, String)]) -> FunctionRegistry {
    let mut r = FunctionRegistry::new(R, A);
    r.extend(entries.iter().map(|(f, u)| (*f, u.as_str())))
        .unwrap();
    r
}

/// Generous: the machine running the tests may be busy.
const PATIENT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn invoke_posts_json_and_returns_the_body() {
    let addr = serve_http().await;
    let r = registry(&[(ARN, format!("http://{addr}/echo"))]);
    let out = r
        .invoke(ARN, Bytes::from_static(br#"{"records":[]}"#), PATIENT)
        .await
        .unwrap();
    assert_eq!(
        out,
        format!(r#"application/json {ARN} {{"records":[]}}"#).as_bytes()
    );
    // The same function by bare name, partial ARN and $LATEST.
    for name in [
        "echo",
        "123456789012:function:echo",
        "echo:$LATEST",
        &format!("{ARN}:$LATEST"),
    ] {
        let out = r
            .invoke(name, Bytes::from_static(b"{}"), PATIENT)
            .await
            .unwrap();
        assert!(out.ends_with(b" {}"), "{name}: {out:?}");
    }
}

#[tokio::test]
async fn qualifiers_use_their_own_entry_or_the_function() {
    let addr = serve_http().await;
    let r = registry(&[
        ("echo", format!("http://{addr}/echo")),
        ("echo:1", format!("http://{addr}/v1")),
    ]);
    let one = r
        .invoke(&format!("{ARN}:1"), Bytes::new(), PATIENT)
        .await
        .unwrap();
    assert_eq!(one, "version one");
    // An alias without an entry of its own is served by the function's.
    let live = r.invoke("echo:live", Bytes::new(), PATIENT).await.unwrap();
    assert_eq!(live, format!("application/json {ARN}:live ").as_bytes());
    let (name, uri) = r.resolve("echo:1").unwrap();
    assert_eq!(name.to_string(), format!("{ARN}:1"));
    assert_eq!(uri.path(), "/v1");
}

#[tokio::test]
async fn unknown_and_invalid_functions_are_typed_errors() {
    let r = registry(&[(ARN, "http://127.0.0.1:9/x".into())]);
    let err = r.invoke("other", Bytes::new(), PATIENT).await.unwrap_err();
    assert!(matches!(err, FunctionError::NotFound { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Function not found: arn:aws:lambda:us-east-1:123456789012:function:other"
    );
    assert!(!err.is_retryable());
    // Another account's function of the same name is another function.
    let err = r
        .resolve("arn:aws:lambda:us-east-1:210987654321:function:echo")
        .unwrap_err();
    assert!(matches!(err, FunctionError::NotFound { .. }), "{err:?}");
    let err = r.resolve("bad name").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid function name bad name: function name 'bad name' must be 1 to 64 letters, digits, hyphens or underscores"
    );
}

#[tokio::test]
async fn function_error_header_status_and_size() {
    let addr = serve_http().await;
    let r = registry(&[
        ("fails", format!("http://{addr}/fails")),
        ("down", format!("http://{addr}/500")),
        ("gone", format!("http://{addr}/404")),
        ("big", format!("http://{addr}/big")),
    ]);
    match r.invoke("fails", Bytes::new(), PATIENT).await.unwrap_err() {
        FunctionError::Function { arn, kind, payload } => {
            assert_eq!(arn, "arn:aws:lambda:us-east-1:123456789012:function:fails");
            assert_eq!(kind, "Unhandled");
            assert_eq!(
                payload,
                r#"{"errorMessage":"bad record","errorType":"Error"}"#
            );
        }
        other => panic!("{other:?}"),
    }
    let err = r.invoke("down", Bytes::new(), PATIENT).await.unwrap_err();
    match &err {
        FunctionError::Status { status, body, .. } => {
            assert_eq!(*status, 503);
            assert_eq!(body.len(), 512, "error body is cut");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_retryable());
    let err = r.invoke("gone", Bytes::new(), PATIENT).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Function arn:aws:lambda:us-east-1:123456789012:function:gone invocation failed with HTTP status 404: no such path"
    );
    assert!(!err.is_retryable());
    let err = r.invoke("big", Bytes::new(), PATIENT).await.unwrap_err();
    assert!(
        matches!(err, FunctionError::ResponseTooLarge { max, .. } if max == INVOKE_RESPONSE_BYTES_MAX),
        "{err:?}"
    );
    let err = r
        .invoke(
            "big",
            Bytes::from(vec![0; INVOKE_REQUEST_BYTES_MAX + 1]),
            PATIENT,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, FunctionError::RequestTooLarge { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn timeout_and_refused_connection() {
    let addr = serve_http().await;
    // A port nothing listens on: bind one, then free it.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let r = registry(&[
        ("slow", format!("http://{addr}/slow")),
        ("closed", format!("http://{closed}/x")),
    ]);
    let err = r
        .invoke("slow", Bytes::new(), Duration::from_millis(50))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Function arn:aws:lambda:us-east-1:123456789012:function:slow did not respond within 50 ms"
    );
    assert!(err.is_retryable());
    let err = r.invoke("closed", Bytes::new(), PATIENT).await.unwrap_err();
    assert!(matches!(err, FunctionError::Transport { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn https_with_a_trusted_ca_and_without() {
    let (addr, ca) = serve_https().await;
    let url = format!("https://{addr}/echo");
    let mut trusting = FunctionRegistry::with_extra_roots(R, A, vec![ca]);
    trusting.insert("tls", &url).unwrap();
    let out = trusting
        .invoke("tls", Bytes::from_static(b"{}"), PATIENT)
        .await
        .unwrap();
    assert!(out.ends_with(b"function:tls {}"), "{out:?}");
    // Without the CA the server's certificate is not trusted.
    let untrusting = registry(&[("tls", url)]);
    let err = untrusting
        .invoke("tls", Bytes::new(), PATIENT)
        .await
        .unwrap_err();
    match err {
        FunctionError::Transport { message, .. } => {
            assert!(message.contains("certificate"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_bad_extra_root_fails_invocations_with_its_reason() {
    let addr = serve_http().await;
    let mut r = FunctionRegistry::with_extra_roots(R, A, vec![vec![1, 2, 3]]);
    r.insert("echo", &format!("http://{addr}/echo")).unwrap();
    let err = r.invoke("echo", Bytes::new(), PATIENT).await.unwrap_err();
    assert!(
        err.to_string().starts_with(
            "Cannot invoke function arn:aws:lambda:us-east-1:123456789012:function:echo: cannot set up HTTPS for functions: bad extra root certificate"
        ),
        "{err}"
    );
}

#[test]
fn configuration_errors_name_the_entry() {
    let mut r = FunctionRegistry::new(R, A);
    r.insert(ARN, "http://127.0.0.1:9000/x").unwrap();
    assert_eq!(
        r.insert("echo", "http://127.0.0.1:9000/y"),
        Err(RegistryError::Duplicate(ARN.into()))
    );
    assert_eq!(
        r.insert(&format!("{ARN}:$LATEST"), "http://127.0.0.1:9000/y"),
        Err(RegistryError::Duplicate(ARN.into()))
    );
    assert_eq!(
        r.insert("f", "ftp://host/x").unwrap_err().to_string(),
        "function 'f': URL 'ftp://host/x' has scheme 'ftp'; use http or https"
    );
    assert_eq!(
        r.insert("f", "127.0.0.1:9000").unwrap_err().to_string(),
        "function 'f': URL '127.0.0.1:9000' has no scheme; use http:// or https://"
    );
    assert_eq!(
        r.insert("f g", "http://h/").unwrap_err().to_string(),
        "function 'f g': function name 'f g' must be 1 to 64 letters, digits, hyphens or underscores"
    );
    assert_eq!(r.len(), 1);
}

#[test]
fn flags_split_at_the_first_equals_sign() {
    assert_eq!(
        parse_flag("f=http://h/x?a=b").unwrap(),
        ("f".to_string(), "http://h/x?a=b".to_string())
    );
    for bad in ["f", "=http://h", "f="] {
        assert_eq!(
            parse_flag(bad).unwrap_err().to_string(),
            format!("--function '{bad}' must be ARN=URL")
        );
    }
}
