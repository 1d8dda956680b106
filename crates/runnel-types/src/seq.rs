//! Sequence numbers.
//!
//! AWS hands out sequence numbers as decimal strings that grow within a shard.
//! runnel's are 128-bit integers printed in decimal, always 38 digits:
//!
//! ```text
//!  127..124  version (2)        — keeps the decimal length fixed at 38 digits
//!  123..96   stream epoch (28b) — derived from the stream's unique id, so a
//!                                 number from another stream is rejected
//!   95..64   shard index (32b)  — `shardId-000000000007` → 7
//!   63..0    position (64b)     — dense per-shard record counter from 0
//! ```
//!
//! Ordering the integers orders records within a shard, and the position is
//! a direct key into the shard's log.

use std::fmt;
use std::str::FromStr;

const VERSION: u128 = 2;
pub const STREAM_EPOCH_BITS: u32 = 28;
const EPOCH_MASK: u128 = (1 << STREAM_EPOCH_BITS) - 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SequenceNumber(u128);

impl SequenceNumber {
    pub fn new(stream_epoch: u32, shard_index: u32, position: u64) -> Self {
        let epoch = u128::from(stream_epoch) & EPOCH_MASK;
        SequenceNumber(
            (VERSION << 124)
                | (epoch << 96)
                | (u128::from(shard_index) << 64)
                | u128::from(position),
        )
    }

    /// Reduces a unique 64-bit stream id to the epoch stored in sequence numbers.
    pub fn epoch_of(stream_uid: u64) -> u32 {
        let mixed = stream_uid.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> (64 - STREAM_EPOCH_BITS)) as u32
    }

    pub fn stream_epoch(self) -> u32 {
        ((self.0 >> 96) & EPOCH_MASK) as u32
    }

    pub fn shard_index(self) -> u32 {
        (self.0 >> 64) as u32
    }

    pub fn position(self) -> u64 {
        self.0 as u64
    }

    pub fn as_u128(self) -> u128 {
        self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceNumberError {
    /// Not a decimal integer at all (the model's pattern rejects it).
    Malformed,
    /// A decimal integer that runnel never issued (wrong version or size).
    Foreign,
}

impl FromStr for SequenceNumber {
    type Err = SequenceNumberError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SequenceNumberError::Malformed);
        }
        let value: u128 = s.parse().map_err(|_| SequenceNumberError::Foreign)?;
        if value >> 124 != VERSION {
            return Err(SequenceNumberError::Foreign);
        }
        Ok(SequenceNumber(value))
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fixed_width_decimal() {
        let lo = SequenceNumber::new(0, 0, 0).to_string();
        let hi = SequenceNumber::new(u32::MAX, u32::MAX, u64::MAX).to_string();
        assert_eq!(lo.len(), 38);
        assert_eq!(hi.len(), 38);
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(
            "".parse::<SequenceNumber>(),
            Err(SequenceNumberError::Malformed)
        );
        assert_eq!(
            "12a".parse::<SequenceNumber>(),
            Err(SequenceNumberError::Malformed)
        );
        assert_eq!(
            "-1".parse::<SequenceNumber>(),
            Err(SequenceNumberError::Malformed)
        );
        assert_eq!(
            "1".parse::<SequenceNumber>(),
            Err(SequenceNumberError::Foreign)
        );
        let too_big = "9".repeat(60);
        assert_eq!(
            too_big.parse::<SequenceNumber>(),
            Err(SequenceNumberError::Foreign)
        );
    }

    proptest! {
        #[test]
        fn roundtrip(epoch in 0u32..(1 << STREAM_EPOCH_BITS), shard: u32, pos: u64) {
            let s = SequenceNumber::new(epoch, shard, pos);
            let parsed: SequenceNumber = s.to_string().parse().unwrap();
            prop_assert_eq!(parsed, s);
            prop_assert_eq!(parsed.stream_epoch(), epoch);
            prop_assert_eq!(parsed.shard_index(), shard);
            prop_assert_eq!(parsed.position(), pos);
        }

        #[test]
        fn increasing_within_shard(epoch in 0u32..(1 << STREAM_EPOCH_BITS), shard: u32, a: u64, b: u64) {
            let (x, y) = (SequenceNumber::new(epoch, shard, a), SequenceNumber::new(epoch, shard, b));
            prop_assert_eq!(a.cmp(&b), x.cmp(&y));
            // Decimal strings of equal length compare like the numbers.
            prop_assert_eq!(a.cmp(&b), x.to_string().cmp(&y.to_string()));
        }
    }
}
