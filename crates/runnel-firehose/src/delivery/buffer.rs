//! One buffer of records on their way into an object.

use std::io::Write;

use runnel_runtime::{Checkpoint, ReadRecord};

use crate::model::CompressionFormat;

#[derive(Default)]
pub(crate) struct Buffer {
    data: Vec<u8>,
    records: usize,
    /// `shard/sequence` of the first and last record.
    first: Option<String>,
    last: Option<String>,
    first_arrival_ms: u64,
    /// When the first record entered the buffer (the task's clock).
    opened_ms: u64,
}

impl Buffer {
    pub fn push(&mut self, r: &ReadRecord, now_ms: u64) {
        let at = format!("{}/{}", r.shard_id, r.sequence_number);
        if self.first.is_none() {
            self.first = Some(at.clone());
            self.first_arrival_ms = r.approximate_arrival_ms;
            self.opened_ms = now_ms;
        }
        self.last = Some(at);
        self.data.extend_from_slice(&r.data);
        self.records += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    pub fn records(&self) -> usize {
        self.records
    }

    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    pub fn first_arrival_ms(&self) -> u64 {
        self.first_arrival_ms
    }

    pub fn range(&self) -> (&str, &str) {
        (
            self.first.as_deref().unwrap_or(""),
            self.last.as_deref().unwrap_or(""),
        )
    }

    /// Full by size, or open for the whole interval (0: deliver at once).
    pub fn due(&self, size_bytes: usize, interval_ms: u64, now_ms: u64) -> bool {
        !self.is_empty()
            && (self.data.len() >= size_bytes
                || now_ms.saturating_sub(self.opened_ms) >= interval_ms)
    }

    /// Milliseconds until the interval ends (None when empty).
    pub fn remaining_ms(&self, interval_ms: u64, now_ms: u64) -> Option<u64> {
        (!self.is_empty()).then(|| {
            self.opened_ms
                .saturating_add(interval_ms)
                .saturating_sub(now_ms)
        })
    }

    /// The object body: the records' bytes concatenated, compressed.
    pub fn body(&self, format: CompressionFormat) -> std::io::Result<Vec<u8>> {
        match format {
            CompressionFormat::Gzip => {
                let mut e = flate2::write::GzEncoder::new(
                    Vec::with_capacity(self.data.len() / 2),
                    flate2::Compression::default(),
                );
                e.write_all(&self.data)?;
                e.finish()
            }
            // Other formats are refused when the delivery stream is configured.
            _ => Ok(self.data.clone()),
        }
    }
}

/// Whether a record is inside the range that ends at `end`.
pub(crate) fn covered(end: &Checkpoint, r: &ReadRecord) -> bool {
    end.finished.contains(&r.shard_id)
        || end
            .shards
            .get(&r.shard_id)
            .is_some_and(|s| seq_le(&r.sequence_number, s))
}

/// Whether `now` has read everything up to `end`.
pub(crate) fn reached(now: &Checkpoint, end: &Checkpoint) -> bool {
    end.finished.iter().all(|s| now.finished.contains(s))
        && end.shards.iter().all(|(shard, seq)| {
            now.finished.contains(shard) || now.shards.get(shard).is_some_and(|at| seq_le(seq, at))
        })
}

/// Sequence numbers are decimal integers of up to 128 bits.
fn seq_le(a: &str, b: &str) -> bool {
    match (a.parse::<u128>(), b.parse::<u128>()) {
        (Ok(a), Ok(b)) => a <= b,
        _ => (a.len(), a) <= (b.len(), b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn rec(shard: &str, seq: &str, data: &'static [u8]) -> ReadRecord {
        ReadRecord {
            shard_id: shard.into(),
            sequence_number: seq.into(),
            partition_key: "k".into(),
            data: Bytes::from_static(data),
            approximate_arrival_ms: 7,
        }
    }

    #[test]
    fn ranges() {
        let mut end = Checkpoint::default();
        end.advance("s0", "20");
        assert!(covered(&end, &rec("s0", "9", b"")));
        assert!(covered(&end, &rec("s0", "20", b"")));
        assert!(!covered(&end, &rec("s0", "100", b"")));
        assert!(!covered(&end, &rec("s1", "1", b"")));
        let mut now = Checkpoint::default();
        assert!(!reached(&now, &end));
        now.advance("s0", "19");
        assert!(!reached(&now, &end));
        now.advance("s0", "100");
        assert!(reached(&now, &end));
    }

    #[test]
    fn due_and_body() {
        let mut b = Buffer::default();
        assert!(!b.due(1, 0, 0));
        b.push(&rec("s", "1", b"ab"), 1000);
        b.push(&rec("s", "2", b"cd"), 1500);
        assert_eq!(b.range(), ("s/1", "s/2"));
        assert_eq!((b.records(), b.bytes(), b.first_arrival_ms()), (2, 4, 7));
        assert!(b.due(1000, 0, 1000));
        assert!(!b.due(1000, 500, 1499));
        assert!(b.due(1000, 500, 1500));
        assert!(b.due(4, 500, 1000));
        assert_eq!(b.remaining_ms(500, 1200), Some(300));
        assert_eq!(b.body(CompressionFormat::Uncompressed).unwrap(), b"abcd");
        let gz = b.body(CompressionFormat::Gzip).unwrap();
        let mut out = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out)
            .unwrap();
        assert_eq!(out, "abcd");
    }
}
