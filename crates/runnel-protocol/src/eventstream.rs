//! The `application/vnd.amazon.eventstream` framing that SubscribeToShard
//! answers with. Each message:
//!
//! ```text
//! total_len u32 BE | headers_len u32 BE | prelude_crc u32 BE (CRC32 of the 8 bytes before)
//! headers: name_len u8 | name | value_type u8 (7 = string) | value_len u16 BE | value
//! payload
//! message_crc u32 BE (CRC32 of everything before it)
//! ```

const PRELUDE_BYTES: usize = 12;
const CRC_BYTES: usize = 4;
const HEADER_VALUE_STRING: u8 = 7;

fn crc32(bytes: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(bytes);
    h.finalize()
}

/// Encodes one message with string-valued headers.
pub fn encode_message(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut head = Vec::new();
    for (name, value) in headers {
        // Header names are ours and short; values are bounded by u16 by construction.
        head.push(name.len().min(255) as u8);
        head.extend_from_slice(&name.as_bytes()[..name.len().min(255)]);
        head.push(HEADER_VALUE_STRING);
        let v = &value.as_bytes()[..value.len().min(u16::MAX as usize)];
        head.extend_from_slice(&(v.len() as u16).to_be_bytes());
        head.extend_from_slice(v);
    }
    let total = PRELUDE_BYTES + head.len() + payload.len() + CRC_BYTES;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(head.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(payload);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// An event message (`:message-type: event`).
pub fn event(event_type: &str, content_type: &str, payload: &[u8]) -> Vec<u8> {
    encode_message(
        &[
            (":message-type", "event"),
            (":event-type", event_type),
            (":content-type", content_type),
        ],
        payload,
    )
}

/// An exception message (`:message-type: exception`), as AWS sends errors
/// that happen after the stream started.
pub fn exception(exception_type: &str, content_type: &str, payload: &[u8]) -> Vec<u8> {
    encode_message(
        &[
            (":message-type", "exception"),
            (":exception-type", exception_type),
            (":content-type", content_type),
        ],
        payload,
    )
}

/// A decoded message (for tests and clients).
#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("incomplete message")]
    Incomplete,
    #[error("checksum mismatch")]
    Checksum,
    #[error("malformed message: {0}")]
    Malformed(&'static str),
}

/// Decodes the message at the start of `buf`; returns it and its length.
pub fn decode_message(buf: &[u8]) -> Result<(Message, usize), DecodeError> {
    if buf.len() < PRELUDE_BYTES {
        return Err(DecodeError::Incomplete);
    }
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let total = be32(&buf[0..4]) as usize;
    let headers_len = be32(&buf[4..8]) as usize;
    if be32(&buf[8..12]) != crc32(&buf[..8]) {
        return Err(DecodeError::Checksum);
    }
    if total < PRELUDE_BYTES + headers_len + CRC_BYTES {
        return Err(DecodeError::Malformed("lengths"));
    }
    if buf.len() < total {
        return Err(DecodeError::Incomplete);
    }
    if be32(&buf[total - CRC_BYTES..total]) != crc32(&buf[..total - CRC_BYTES]) {
        return Err(DecodeError::Checksum);
    }
    let mut headers = Vec::new();
    let mut h = &buf[PRELUDE_BYTES..PRELUDE_BYTES + headers_len];
    while !h.is_empty() {
        let name_len = h[0] as usize;
        if h.len() < 1 + name_len + 3 {
            return Err(DecodeError::Malformed("header"));
        }
        let name = String::from_utf8_lossy(&h[1..1 + name_len]).into_owned();
        if h[1 + name_len] != HEADER_VALUE_STRING {
            return Err(DecodeError::Malformed("header type"));
        }
        let vlen = u16::from_be_bytes([h[2 + name_len], h[3 + name_len]]) as usize;
        let start = 4 + name_len;
        if h.len() < start + vlen {
            return Err(DecodeError::Malformed("header value"));
        }
        headers.push((
            name,
            String::from_utf8_lossy(&h[start..start + vlen]).into_owned(),
        ));
        h = &h[start + vlen..];
    }
    let payload = buf[PRELUDE_BYTES + headers_len..total - CRC_BYTES].to_vec();
    Ok((Message { headers, payload }, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let m = event(
            "SubscribeToShardEvent",
            "application/x-amz-json-1.1",
            b"{\"a\":1}",
        );
        let (decoded, len) = decode_message(&m).unwrap();
        assert_eq!(len, m.len());
        assert_eq!(decoded.payload, b"{\"a\":1}");
        assert_eq!(
            decoded.headers[1],
            (":event-type".into(), "SubscribeToShardEvent".into())
        );
        let mut bad = m.clone();
        let last = bad.len() - 6;
        bad[last] ^= 1;
        assert_eq!(decode_message(&bad).unwrap_err(), DecodeError::Checksum);
        assert_eq!(
            decode_message(&m[..10]).unwrap_err(),
            DecodeError::Incomplete
        );
    }

    #[test]
    fn known_vector() {
        // An empty message with no headers: total 16 bytes, CRCs per the spec.
        let m = encode_message(&[], b"");
        assert_eq!(&m[..8], &[0, 0, 0, 16, 0, 0, 0, 0]);
        assert_eq!(u32::from_be_bytes([m[8], m[9], m[10], m[11]]), 0x05c2_48eb);
        assert_eq!(
            u32::from_be_bytes([m[12], m[13], m[14], m[15]]),
            0x7d98_c8ff
        );
    }
}
