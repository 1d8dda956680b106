//! Hash-key routing. A partition key maps to the 128-bit big-endian integer of
//! its MD5 digest; the record goes to the shard whose range contains it.

use md5::{Digest, Md5};

pub const HASH_KEY_MAX: u128 = u128::MAX;

/// An inclusive range of the 128-bit hash-key space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HashKeyRange {
    pub start: u128,
    pub end: u128,
}

impl HashKeyRange {
    pub fn contains(&self, key: u128) -> bool {
        self.start <= key && key <= self.end
    }

    /// Splits the whole key space into `count` contiguous ranges the way AWS
    /// does for a new stream: each `floor(2^128 / count)` wide, the last one
    /// taking the remainder.
    pub fn split_even(count: u32) -> Vec<HashKeyRange> {
        assert!(count > 0, "a stream has at least one shard");
        if count == 1 {
            return vec![HashKeyRange {
                start: 0,
                end: HASH_KEY_MAX,
            }];
        }
        let n = u128::from(count);
        // floor(2^128 / n) without overflowing: 2^128 = MAX + 1.
        let step = HASH_KEY_MAX / n + u128::from(HASH_KEY_MAX % n == n - 1);
        (0..n)
            .map(|i| HashKeyRange {
                start: i * step,
                end: if i + 1 == n {
                    HASH_KEY_MAX
                } else {
                    (i + 1) * step - 1
                },
            })
            .collect()
    }
}

/// The hash key of a partition key: MD5 as a big-endian 128-bit integer.
pub fn partition_hash(partition_key: &str) -> u128 {
    let digest = Md5::digest(partition_key.as_bytes());
    u128::from_be_bytes(digest.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn two_shards_split_at_half() {
        let r = HashKeyRange::split_even(2);
        assert_eq!(r[0].end, (1u128 << 127) - 1);
        assert_eq!(r[1].start, 1u128 << 127);
        assert_eq!(r[1].end, HASH_KEY_MAX);
    }

    #[test]
    fn three_shards_match_aws() {
        // Values AWS reports for a new 3-shard stream.
        let r = HashKeyRange::split_even(3);
        assert_eq!(
            r[0].end.to_string(),
            "113427455640312821154458202477256070484"
        );
        assert_eq!(
            r[1].start.to_string(),
            "113427455640312821154458202477256070485"
        );
        assert_eq!(
            r[2].end.to_string(),
            "340282366920938463463374607431768211455"
        );
    }

    #[test]
    fn md5_big_endian() {
        // md5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(partition_hash("a"), 0x0cc175b9c0f1b6a831c399e269772661);
    }

    proptest! {
        #[test]
        fn even_split_covers_space(count in 1u32..5000) {
            let r = HashKeyRange::split_even(count);
            prop_assert_eq!(r.len(), count as usize);
            prop_assert_eq!(r[0].start, 0);
            prop_assert_eq!(r[r.len() - 1].end, HASH_KEY_MAX);
            for w in r.windows(2) {
                prop_assert_eq!(w[0].end + 1, w[1].start);
            }
        }

        #[test]
        fn every_key_in_exactly_one(count in 1u32..64, key: String) {
            let h = partition_hash(&key);
            let r = HashKeyRange::split_even(count);
            prop_assert_eq!(r.iter().filter(|x| x.contains(h)).count(), 1);
        }
    }
}
