use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::ProtocolError;

/// The body encodings AWS's JSON-protocol services accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-amz-json-1.1` (and 1.0, and plain `application/json`).
    Json,
    /// `application/x-amz-cbor-1.1`, the Java SDK v2 and KPL default.
    Cbor,
}

impl Encoding {
    /// Picks the encoding from a `Content-Type` header. `None` for types AWS
    /// would not accept on this protocol.
    pub fn from_content_type(content_type: Option<&str>) -> Option<Encoding> {
        let Some(ct) = content_type else {
            return Some(Encoding::Json);
        };
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/x-amz-json-1.1" | "application/x-amz-json-1.0" | "application/json" => {
                Some(Encoding::Json)
            }
            "application/x-amz-cbor-1.1" => Some(Encoding::Cbor),
            "" => Some(Encoding::Json),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => "application/x-amz-json-1.1",
            Encoding::Cbor => "application/x-amz-cbor-1.1",
        }
    }
}

/// Decodes a request body. An empty body is an empty structure, as AWS
/// treats it. Errors name the offending field where they can.
pub fn decode<T: DeserializeOwned>(encoding: Encoding, body: &[u8]) -> Result<T, ProtocolError> {
    match encoding {
        Encoding::Json => {
            let body: &[u8] = if body.iter().all(|b| b.is_ascii_whitespace()) {
                b"{}"
            } else {
                body
            };
            let mut de = serde_json::Deserializer::from_slice(body);
            let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| json_error(&e))?;
            de.end()
                .map_err(|e| ProtocolError::Serialization(e.to_string()))?;
            Ok(value)
        }
        Encoding::Cbor => {
            if body.is_empty() {
                return decode(Encoding::Json, b"{}");
            }
            let value: ciborium::Value = ciborium::from_reader(body).map_err(|e| cbor_error(&e))?;
            let value = strip_tags(value);
            value.deserialized().map_err(|e| {
                let ciborium::value::Error::Custom(text) = e;
                ProtocolError::Serialization(base64_message(&text).unwrap_or(text))
            })
        }
    }
}

fn json_error(e: &serde_path_to_error::Error<serde_json::Error>) -> ProtocolError {
    let inner = e.inner();
    let path = e.path().to_string();
    if inner.is_syntax() || inner.is_eof() {
        return ProtocolError::Serialization(format!("malformed JSON: {inner}"));
    }
    let text = inner.to_string();
    if let Some(m) = base64_message(&text) {
        return ProtocolError::Serialization(m);
    }
    if path.is_empty() || path == "." {
        ProtocolError::Serialization(text)
    } else {
        ProtocolError::Serialization(format!("{text} (at '{path}')"))
    }
}

/// The AWS message of an undecodable base64 blob (`Blob`'s serde error),
/// without the position serde_json appends.
fn base64_message(text: &str) -> Option<String> {
    let rest = text.strip_prefix(runnel_types::wire::BASE64_ERROR)?;
    let rest = rest.strip_prefix(": ").unwrap_or(rest);
    let rest = rest.rsplit_once(" at line ").map_or(rest, |(m, _)| m);
    Some(rest.to_string())
}

/// A CBOR body that is not well-formed, in words rather than the decoder's
/// `Debug` text.
fn cbor_error<T>(e: &ciborium::de::Error<T>) -> ProtocolError {
    use ciborium::de::Error;
    let why = match e {
        // Reading from a byte slice fails only when the bytes run out.
        Error::Io(_) => "the body ends before the CBOR value is complete".to_string(),
        Error::Syntax(at) => format!("invalid CBOR syntax at byte {at}"),
        Error::Semantic(Some(at), m) => format!("{m} (at byte {at})"),
        Error::Semantic(None, m) => m.clone(),
        Error::RecursionLimitExceeded => "the CBOR value is nested too deeply".to_string(),
    };
    ProtocolError::Serialization(format!("Malformed CBOR body: {why}."))
}

/// Tags carry no meaning for the shapes we decode (tag 1 timestamps are plain
/// numbers to us), so they are removed before typed decoding.
fn strip_tags(value: ciborium::Value) -> ciborium::Value {
    use ciborium::Value;
    match value {
        Value::Tag(_, inner) => strip_tags(*inner),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_tags).collect()),
        Value::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (strip_tags(k), strip_tags(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Encodes a response body.
pub fn encode<T: Serialize>(encoding: Encoding, value: &T) -> Vec<u8> {
    match encoding {
        // Serializing our own response types cannot fail: they hold no maps
        // with non-string keys and no failing Serialize impls.
        Encoding::Json => serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec()),
        Encoding::Cbor => {
            let mut out = Vec::new();
            if ciborium::into_writer(value, &mut out).is_err() {
                out.clear();
                out.push(0xa0); // empty map
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel_types::{Blob, Timestamp};
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    #[serde(rename_all = "PascalCase")]
    struct Shape {
        stream_name: Option<String>,
        shard_count: Option<u32>,
        data: Option<Blob>,
        timestamp: Option<Timestamp>,
    }

    #[test]
    fn json_roundtrip_and_errors() {
        let s: Shape = decode(
            Encoding::Json,
            br#"{"StreamName":"a","Data":"aGk=","Timestamp":1.5}"#,
        )
        .unwrap();
        assert_eq!(s.data, Some(Blob(b"hi".to_vec())));
        assert_eq!(s.timestamp, Some(Timestamp { ms: 1500 }));
        let empty: Shape = decode(Encoding::Json, b"").unwrap();
        assert_eq!(empty.stream_name, None);
        let err = decode::<Shape>(Encoding::Json, br#"{"ShardCount":"abc"}"#).unwrap_err();
        assert!(err.to_string().contains("ShardCount"), "{err}");
        assert!(decode::<Shape>(Encoding::Json, b"{").is_err());
        assert!(decode::<Shape>(Encoding::Json, b"[]").is_err());
        let err = decode::<Shape>(Encoding::Json, br#"{"Data":"%%%%"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'%%%%' can not be converted to a Blob: Invalid Base64 character: '%'"
        );
    }

    #[test]
    fn cbor_with_tagged_timestamp() {
        use ciborium::Value;
        let v = Value::Map(vec![
            (Value::Text("StreamName".into()), Value::Text("s".into())),
            (Value::Text("Data".into()), Value::Bytes(vec![1, 2, 3])),
            (
                Value::Text("Timestamp".into()),
                Value::Tag(1, Box::new(Value::Integer(1_700_000_000_250i64.into()))),
            ),
        ]);
        let mut body = Vec::new();
        ciborium::into_writer(&v, &mut body).unwrap();
        let s: Shape = decode(Encoding::Cbor, &body).unwrap();
        assert_eq!(s.data, Some(Blob(vec![1, 2, 3])));
        assert_eq!(
            s.timestamp,
            Some(Timestamp {
                ms: 1_700_000_000_250
            })
        );
        let out = encode(Encoding::Cbor, &s);
        let back: Shape = decode(Encoding::Cbor, &out).unwrap();
        assert_eq!(back, s);
        assert!(decode::<Shape>(Encoding::Cbor, &[0xff, 0x00]).is_err());
        // Truncated: a map of three entries with one key and half a value.
        let err = decode::<Shape>(Encoding::Cbor, b"\xa3\x6aStreamName\x62s").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Malformed CBOR body: the body ends before the CBOR value is complete."
        );
        // A value of the wrong type reads as serde's words, not Debug text.
        let v = ciborium::Value::Map(vec![(
            ciborium::Value::Text("ShardCount".into()),
            ciborium::Value::Text("x".into()),
        )]);
        let mut body = Vec::new();
        ciborium::into_writer(&v, &mut body).unwrap();
        let err = decode::<Shape>(Encoding::Cbor, &body)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("Custom("), "{err}");
    }

    #[test]
    fn content_types() {
        assert_eq!(
            Encoding::from_content_type(Some("application/x-amz-json-1.1")),
            Some(Encoding::Json)
        );
        assert_eq!(
            Encoding::from_content_type(Some("application/x-amz-cbor-1.1; charset=utf-8")),
            Some(Encoding::Cbor)
        );
        assert_eq!(Encoding::from_content_type(Some("text/plain")), None);
    }
}
