//! Value types whose wire form depends on the encoding.
//!
//! AWS JSON 1.1 carries blobs as base64 strings and timestamps as epoch
//! seconds (a number, possibly fractional). AWS CBOR 1.1 (Java SDK v2, KPL)
//! carries blobs as byte strings and timestamps as epoch milliseconds (an
//! integer, usually under tag 1). serde tells the two apart through
//! `is_human_readable`: `serde_json` says yes, `ciborium` says no.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Opaque bytes (`Data` in PutRecord, GetRecords …).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Blob(pub Vec<u8>);

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&STANDARD.encode(&self.0))
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

struct BlobVisitor;

impl<'de> Visitor<'de> for BlobVisitor {
    type Value = Blob;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a base64 string or a byte string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Blob, E> {
        decode_base64(v).map(Blob).map_err(|why| {
            E::custom(format!(
                "{BASE64_ERROR}: '{v}' can not be converted to a Blob: {why}"
            ))
        })
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Blob, E> {
        Ok(Blob(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
        Ok(Blob(v))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Blob, A::Error> {
        // CBOR indefinite-length byte strings reach us as a sequence of chunks.
        let mut out = Vec::new();
        while let Some(chunk) = seq.next_element::<serde_bytes_like::Chunk>()? {
            out.extend_from_slice(&chunk.0);
        }
        Ok(Blob(out))
    }
}

/// The prefix of the serde error for undecodable base64; the front door
/// recognises it and answers with the AWS message that follows it.
pub const BASE64_ERROR: &str = "invalid base64";

mod serde_bytes_like {
    use super::*;

    pub struct Chunk(pub Vec<u8>);

    impl<'de> Deserialize<'de> for Chunk {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_byte_buf(BlobVisitor).map(|b| Chunk(b.0))
        }
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            d.deserialize_str(BlobVisitor)
        } else {
            d.deserialize_byte_buf(BlobVisitor)
        }
    }
}

/// Decodes standard base64 as strictly as AWS: padded to a multiple of four
/// characters, at most two `=` and only at the end, unused bits zero. The
/// error is AWS's reason (its JSON protocol answers `SerializationException`).
fn decode_base64(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(4) {
        return Err(format!(
            "Base64 encoded length is expected a multiple of 4 bytes but found: {}",
            s.len()
        ));
    }
    let body = s.trim_end_matches('=');
    if let Some(c) = body
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '+' || *c == '/'))
    {
        return Err(format!("Invalid Base64 character: '{c}'"));
    }
    if s.len() - body.len() > 2 {
        return Err("Invalid Base64 padding".into());
    }
    STANDARD
        .decode(s)
        .map_err(|_| "Invalid last non-pad Base64 character dectected".into())
}

/// A point in time with millisecond precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub ms: i64,
}

impl Timestamp {
    pub fn from_ms(ms: u64) -> Self {
        Timestamp { ms: ms as i64 }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            // Epoch seconds with millisecond precision, as AWS sends them.
            if self.ms % 1000 == 0 {
                s.serialize_i64(self.ms / 1000)
            } else {
                s.serialize_f64(self.ms as f64 / 1000.0)
            }
        } else {
            s.serialize_i64(self.ms)
        }
    }
}

struct TimestampVisitor {
    millis: bool,
}

impl TimestampVisitor {
    fn seconds_or_millis<E: de::Error>(&self, v: f64) -> Result<Timestamp, E> {
        if !v.is_finite() {
            return Err(E::custom("timestamp is not a finite number"));
        }
        let ms = if self.millis { v } else { v * 1000.0 };
        Ok(Timestamp {
            ms: ms.round() as i64,
        })
    }
}

impl<'de> Visitor<'de> for TimestampVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a timestamp as epoch seconds")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
        let ms = if self.millis {
            Some(v)
        } else {
            v.checked_mul(1000)
        };
        ms.map(|ms| Timestamp { ms })
            .ok_or_else(|| E::custom("timestamp out of range"))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
        let v = i64::try_from(v).map_err(|_| E::custom("timestamp out of range"))?;
        self.visit_i64(v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
        self.seconds_or_millis(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
        // Some clients send the number as a string.
        v.trim()
            .parse::<f64>()
            .map_err(|_| E::custom("timestamp is not a number"))
            .and_then(|f| self.seconds_or_millis(f))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let millis = !d.is_human_readable();
        d.deserialize_any(TimestampVisitor { millis })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cbor<T: Serialize>(v: &T) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).unwrap();
        out
    }

    #[test]
    fn blob_json_is_base64() {
        let b = Blob(b"hello".to_vec());
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"aGVsbG8=\"");
        let back: Blob = serde_json::from_str("\"aGVsbG8=\"").unwrap();
        assert_eq!(back, b);
        let empty: Blob = serde_json::from_str("\"\"").unwrap();
        assert_eq!(empty, Blob(Vec::new()));
        assert!(serde_json::from_str::<Blob>("\"!!!\"").is_err());
        assert!(serde_json::from_str::<Blob>("12").is_err());
    }

    #[test]
    fn base64_is_strict() {
        let why = |s: &str| decode_base64(s).unwrap_err();
        assert_eq!(
            why("aGVsbG8"),
            "Base64 encoded length is expected a multiple of 4 bytes but found: 7"
        );
        assert_eq!(
            why("AAA"),
            "Base64 encoded length is expected a multiple of 4 bytes but found: 3"
        );
        assert_eq!(why("aG!s"), "Invalid Base64 character: '!'");
        assert_eq!(why("a=bc"), "Invalid Base64 character: '='");
        assert_eq!(why("===="), "Invalid Base64 padding");
        assert_eq!(why("A==="), "Invalid Base64 padding");
        // "AB==" leaves non-zero bits after the one byte it encodes.
        assert_eq!(
            why("AB=="),
            "Invalid last non-pad Base64 character dectected"
        );
        assert_eq!(decode_base64("AA==").unwrap(), vec![0]);
        assert_eq!(decode_base64("").unwrap(), Vec::<u8>::new());
        let err = serde_json::from_str::<Blob>("\"AAA\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "{BASE64_ERROR}: 'AAA' can not be converted to a Blob: "
            )),
            "{err}"
        );
    }

    #[test]
    fn blob_cbor_is_bytes() {
        let b = Blob(vec![0, 1, 2, 255]);
        let enc = cbor(&b);
        assert_eq!(enc[0] >> 5, 2, "major type 2 = byte string");
        let back: Blob = ciborium::from_reader(&enc[..]).unwrap();
        assert_eq!(back, b);
    }

    #[test]
    fn timestamps() {
        let t: Timestamp = serde_json::from_str("1700000000.5").unwrap();
        assert_eq!(t.ms, 1_700_000_000_500);
        let t: Timestamp = serde_json::from_str("1700000000").unwrap();
        assert_eq!(t.ms, 1_700_000_000_000);
        assert_eq!(
            serde_json::to_string(&Timestamp {
                ms: 1_700_000_000_250
            })
            .unwrap(),
            "1700000000.25"
        );
        let enc = cbor(&Timestamp {
            ms: 1_700_000_000_250,
        });
        let back: Timestamp = ciborium::from_reader(&enc[..]).unwrap();
        assert_eq!(back.ms, 1_700_000_000_250);
    }
}
