//! Crash recovery: torn tails at every offset, flipped bytes, lost sidecars.

use super::*;
use crate::segment::segment_path;
use crate::{LogError, OnCorruption};
use proptest::test_runner::{Config, TestRunner};

pub(super) struct Base {
    pub dir: tempfile::TempDir,
    /// File length of segment 0 after open (index 0) and after each commit.
    pub boundaries: Vec<u64>,
    pub commits: Vec<Vec<(ShardKey, Vec<String>)>>,
}

pub(super) const SHARDS: [ShardKey; 4] = [
    ShardKey {
        stream_uid: 1,
        shard_index: 0,
    },
    ShardKey {
        stream_uid: 1,
        shard_index: 1,
    },
    ShardKey {
        stream_uid: 1,
        shard_index: 2,
    },
    ShardKey {
        stream_uid: 2,
        shard_index: 0,
    },
];

pub(super) fn build_base() -> Base {
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = clock(1_000);
    let log = open(cfg(dir.path()), &c);
    let seg = segment_path(dir.path(), 0);
    let len = || std::fs::metadata(&seg).unwrap().len();
    let mut boundaries = vec![len()];
    let mut commits = Vec::new();
    for j in 0..25usize {
        let groups: Vec<(ShardKey, Vec<String>)> = vec![
            (
                SHARDS[j % 3],
                (0..j % 4 + 1)
                    .map(|i| format!("c{j}-{i}-{}", "x".repeat(j * 3)))
                    .collect(),
            ),
            (SHARDS[3], vec![format!("c{j}-s2")]),
        ];
        let input = groups
            .iter()
            .map(|(k, v)| (*k, v.iter().map(|s| rec(s)).collect()))
            .collect();
        block_on(log.append(input)).unwrap();
        boundaries.push(len());
        commits.push(groups);
    }
    Base {
        dir,
        boundaries,
        commits,
    }
}

/// Opens a copy of the base whose segment was changed by `damage`.
fn open_damaged(base: &Base, damage: impl FnOnce(&mut Vec<u8>)) -> (tempfile::TempDir, Log) {
    let copy = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(segment_path(base.dir.path(), 0)).unwrap();
    damage(&mut bytes);
    std::fs::write(segment_path(copy.path(), 0), bytes).unwrap();
    let (_, c) = clock(1_000);
    let log = open(cfg(copy.path()), &c);
    (copy, log)
}

/// Like `open_damaged`, with a corruption policy, returning the open result.
pub(super) fn try_open_damaged(
    base: &Base,
    on_corruption: OnCorruption,
    damage: impl FnOnce(&mut Vec<u8>),
) -> (tempfile::TempDir, Result<Log, LogError>) {
    let copy = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(segment_path(base.dir.path(), 0)).unwrap();
    damage(&mut bytes);
    std::fs::write(segment_path(copy.path(), 0), bytes).unwrap();
    let (_, c) = clock(1_000);
    let config = LogConfig {
        on_corruption,
        ..cfg(copy.path())
    };
    let log = Log::open(config, c);
    (copy, log)
}

/// (position, data) of every record of shard `k`, except those of the
/// (commit, group) pairs in `lost`.
pub(super) fn expected(base: &Base, k: ShardKey, lost: &[(usize, usize)]) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    for (ci, c) in base.commits.iter().enumerate() {
        for (gi, (kk, v)) in c.iter().enumerate() {
            if *kk != k {
                continue;
            }
            for d in v {
                if !lost.contains(&(ci, gi)) {
                    out.push((pos, d.clone()));
                }
                pos += 1;
            }
        }
    }
    out
}

pub(super) fn data_of(r: &crate::StoredRecord) -> String {
    String::from_utf8(r.data.to_vec()).unwrap()
}

/// Asserts the log holds exactly the first `n` commits of the base.
fn assert_prefix(base: &Base, log: &Log, n: usize) {
    for k in SHARDS {
        let want: Vec<String> = base.commits[..n]
            .iter()
            .flat_map(|c| {
                c.iter()
                    .filter(|(kk, _)| *kk == k)
                    .flat_map(|(_, v)| v.clone())
            })
            .collect();
        let got: Vec<String> = read_all(log, k)
            .iter()
            .map(|r| String::from_utf8(r.data.to_vec()).unwrap())
            .collect();
        assert_eq!(got, want, "shard {k:?}, expected {n} commits");
        assert_eq!(log.end_position(k), want.len() as u64);
    }
}

fn commits_before(base: &Base, offset: u64) -> usize {
    base.boundaries[1..]
        .iter()
        .filter(|b| **b <= offset)
        .count()
}

#[test]
fn truncated_tail_recovers_a_prefix_of_whole_commits() {
    let base = build_base();
    let total = *base.boundaries.last().unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 96,
        ..Config::default()
    });
    runner
        .run(&(0..=total), |cut| {
            let (_copy, log) = open_damaged(&base, |b| b.truncate(cut as usize));
            assert_prefix(&base, &log, commits_before(&base, cut));
            // The log stays writable after recovery, with dense positions.
            let end = log.end_position(SHARDS[3]);
            let ack = block_on(log.append(vec![(SHARDS[3], vec![rec("after")])])).unwrap();
            assert_eq!(ack[0].first_position, end);
            Ok(())
        })
        .unwrap();
    // Every boundary itself and its neighbours.
    for &b in &base.boundaries {
        for cut in [b.saturating_sub(1), b, b + 1] {
            let (_copy, log) = open_damaged(&base, |bytes| {
                bytes.truncate((cut as usize).min(bytes.len()))
            });
            assert_prefix(&base, &log, commits_before(&base, cut.min(total)));
        }
    }
}

#[test]
fn flipped_byte_is_detected_never_returned() {
    let base = build_base();
    let total = *base.boundaries.last().unwrap();
    let last_commit_start = base.boundaries[base.boundaries.len() - 2];
    let mut runner = TestRunner::new(Config {
        cases: 96,
        ..Config::default()
    });
    runner
        .run(&(0..total, 1u8..=255), |(at, mask)| {
            let (_copy, opened) =
                try_open_damaged(&base, OnCorruption::Refuse, |b| b[at as usize] ^= mask);
            match opened {
                // Only damage in the last commit looks like a torn tail.
                Ok(log) => {
                    assert!(at >= last_commit_start, "flip at {at} accepted");
                    assert_prefix(&base, &log, commits_before(&base, at));
                }
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains("--on-corruption skip"), "{msg}");
                }
            }
            // With skip, whatever is served is original data at its
            // original position, and no position is reissued.
            let (_copy, opened) =
                try_open_damaged(&base, OnCorruption::Skip, |b| b[at as usize] ^= mask);
            let log = opened.unwrap();
            for k in SHARDS {
                let want = expected(&base, k, &[]);
                for r in read_all(&log, k) {
                    assert!(want.contains(&(r.position, data_of(&r))), "{r:?}");
                }
                let old_end = want.len() as u64;
                let ack = block_on(log.append(vec![(k, vec![rec("new")])])).unwrap();
                if at < last_commit_start {
                    assert!(ack[0].first_position >= old_end);
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn corruption_in_a_sealed_segment_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = clock(1_000);
    let config = LogConfig {
        segment_bytes_max: 400,
        ..cfg(dir.path())
    };
    let k = key(1, 0);
    {
        let log = open(config.clone(), &c);
        for i in 0..20 {
            block_on(log.append(vec![(k, vec![rec(&format!("r{i}"))])])).unwrap();
        }
        assert!(log.stats().segments >= 3);
    }
    // Header (32) + empty shard table (56) + 60 bytes into the first frame.
    let seg0 = segment_path(dir.path(), 0);
    let mut bytes = std::fs::read(&seg0).unwrap();
    bytes[32 + 56 + 60] ^= 0xff;
    std::fs::write(&seg0, bytes).unwrap();
    let log = open(config, &c);
    assert!(matches!(
        log.read(k, 0, 10, 1 << 20, 0),
        Err(LogError::Corrupt(_))
    ));
    // Later segments still read fine.
    let end = log.end_position(k);
    assert_eq!(
        log.read(k, end - 1, 10, 1 << 20, 0).unwrap().records.len(),
        1
    );
}

#[test]
fn lost_sidecars_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = clock(1_000);
    let config = LogConfig {
        segment_bytes_max: 400,
        ..cfg(dir.path())
    };
    let k = key(1, 0);
    {
        let log = open(config.clone(), &c);
        for i in 0..30 {
            block_on(log.append(vec![(k, vec![rec(&format!("r{i}"))])])).unwrap();
        }
    }
    let idx: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "idx"))
        .collect();
    assert!(idx.len() >= 2);
    std::fs::remove_file(&idx[0]).unwrap();
    std::fs::write(&idx[1], b"garbage").unwrap();
    let log = open(config, &c);
    let all = read_all(&log, k);
    assert_eq!(all.len(), 30);
    assert!(idx[0].exists());
    assert_eq!(log.position_at_timestamp(k, 1_000).unwrap(), 0);
}
