//! Tamper-evident tokens: shard iterators and pagination tokens.
//!
//! A token is `base64(kind ‖ issued_ms ‖ payload ‖ mac)` where `mac` is the
//! first 16 bytes of HMAC-SHA256 over everything before it, keyed with a
//! secret kept in the catalog (so tokens survive restarts). Clients cannot
//! forge a position or extend an iterator's life.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const MAC_BYTES: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TokenKind {
    ShardIterator = 1,
    ListShards = 2,
    ListStreams = 3,
}

#[derive(Clone)]
pub struct Sealer {
    key: [u8; 32],
}

#[derive(Debug, PartialEq, Eq)]
pub struct Opened {
    pub issued_ms: u64,
    pub payload: Vec<u8>,
}

impl Sealer {
    pub fn new(key: [u8; 32]) -> Self {
        Sealer { key }
    }

    fn mac(&self, bytes: &[u8]) -> [u8; MAC_BYTES] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(bytes);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; MAC_BYTES];
        out.copy_from_slice(&full[..MAC_BYTES]);
        out
    }

    pub fn seal(&self, kind: TokenKind, issued_ms: u64, payload: &[u8]) -> String {
        let mut bytes = Vec::with_capacity(1 + 8 + payload.len() + MAC_BYTES);
        bytes.push(kind as u8);
        bytes.extend_from_slice(&issued_ms.to_be_bytes());
        bytes.extend_from_slice(payload);
        let mac = self.mac(&bytes);
        bytes.extend_from_slice(&mac);
        STANDARD.encode(bytes)
    }

    /// `None` for anything that is not a token of `kind` that we issued.
    pub fn open(&self, kind: TokenKind, token: &str) -> Option<Opened> {
        let bytes = STANDARD.decode(token.trim()).ok()?;
        if bytes.len() < 1 + 8 + MAC_BYTES || bytes[0] != kind as u8 {
            return None;
        }
        let (body, mac) = bytes.split_at(bytes.len() - MAC_BYTES);
        let expected = self.mac(body);
        // Constant-time comparison.
        let diff = expected
            .iter()
            .zip(mac)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return None;
        }
        let issued_ms = u64::from_be_bytes(body[1..9].try_into().ok()?);
        Some(Opened {
            issued_ms,
            payload: body[9..].to_vec(),
        })
    }
}

/// Where a shard iterator points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IteratorPos {
    pub stream_uid: u64,
    pub shard_index: u32,
    pub position: u64,
}

impl IteratorPos {
    pub fn encode(&self, sealer: &Sealer, issued_ms: u64) -> String {
        let mut p = [0u8; 20];
        p[..8].copy_from_slice(&self.stream_uid.to_be_bytes());
        p[8..12].copy_from_slice(&self.shard_index.to_be_bytes());
        p[12..].copy_from_slice(&self.position.to_be_bytes());
        sealer.seal(TokenKind::ShardIterator, issued_ms, &p)
    }

    pub fn decode(sealer: &Sealer, token: &str) -> Option<(IteratorPos, u64)> {
        let opened = sealer.open(TokenKind::ShardIterator, token)?;
        let p = opened.payload;
        if p.len() != 20 {
            return None;
        }
        Some((
            IteratorPos {
                stream_uid: u64::from_be_bytes(p[..8].try_into().ok()?),
                shard_index: u32::from_be_bytes(p[8..12].try_into().ok()?),
                position: u64::from_be_bytes(p[12..].try_into().ok()?),
            },
            opened.issued_ms,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn roundtrip_and_tamper() {
        let s = Sealer::new([7; 32]);
        let pos = IteratorPos {
            stream_uid: 3,
            shard_index: 2,
            position: 99,
        };
        let t = pos.encode(&s, 1234);
        assert_eq!(IteratorPos::decode(&s, &t), Some((pos, 1234)));
        // Any flipped bit is detected.
        let mut raw = STANDARD.decode(&t).unwrap();
        for i in 0..raw.len() {
            raw[i] ^= 1;
            assert_eq!(
                IteratorPos::decode(&s, &STANDARD.encode(&raw)),
                None,
                "byte {i}"
            );
            raw[i] ^= 1;
        }
        // Another server's key does not open it, nor does another kind.
        assert_eq!(IteratorPos::decode(&Sealer::new([8; 32]), &t), None);
        assert_eq!(s.open(TokenKind::ListShards, &t), None);
        assert_eq!(IteratorPos::decode(&s, "not base64!"), None);
        assert_eq!(IteratorPos::decode(&s, ""), None);
    }

    proptest! {
        #[test]
        fn garbage_never_opens(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let s = Sealer::new([1; 32]);
            prop_assert_eq!(IteratorPos::decode(&s, &STANDARD.encode(&bytes)), None);
        }
    }
}
