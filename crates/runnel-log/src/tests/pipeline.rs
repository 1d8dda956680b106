//! The two-stage commit pipeline under concurrency: many producers, segment
//! rolls, and failed syncs in the middle. Every acknowledged record must be
//! read back at the position it was acknowledged with, positions stay dense,
//! and no failed record ever shows up (before or after a reopen).

use super::faults::{Fault, FaultyFs};
use super::*;
use crate::LogError;
use std::collections::BTreeMap;

const PRODUCERS: usize = 24;
const APPENDS_PER_PRODUCER: usize = 60;

type Acked = BTreeMap<(ShardKey, u64), String>;

fn run(segment_bytes_max: u64, inject: bool) {
    run_with(segment_bytes_max, inject, false);
    run_with(segment_bytes_max, inject, true);
}

fn run_with(segment_bytes_max: u64, inject: bool, sync_thread: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = clock(5_000);
    let fs = Arc::new(FaultyFs::default());
    let mut config = cfg(dir.path());
    config.segment_bytes_max = segment_bytes_max;
    config.preallocate_segments = true;
    config.sync_thread = sync_thread;
    let log = Arc::new(Log::open_with_fs(config.clone(), c.clone(), fs.clone()).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let (acked, failed) = rt.block_on(async {
        let mut tasks = Vec::new();
        for p in 0..PRODUCERS {
            let log = log.clone();
            let fs = fs.clone();
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut failed = 0usize;
                for i in 0..APPENDS_PER_PRODUCER {
                    if inject && p == 0 && i % 7 == 3 {
                        *fs.next.lock() = Some(Fault::SyncFails);
                    }
                    let a = key(9, (p % 3) as u32);
                    let b = key(9, 3);
                    let tag = format!("p{p}-{i}");
                    let groups = vec![
                        (
                            a,
                            vec![rec(&format!("{tag}-a0")), rec(&format!("{tag}-a1"))],
                        ),
                        (b, vec![rec(&format!("{tag}-b"))]),
                    ];
                    match log.append(groups).await {
                        Ok(acks) => {
                            acked.push(((a, acks[0].first_position), format!("{tag}-a0")));
                            acked.push(((a, acks[0].first_position + 1), format!("{tag}-a1")));
                            acked.push(((b, acks[1].first_position), format!("{tag}-b")));
                        }
                        Err(LogError::Io(_)) => failed += 1,
                        Err(e) => panic!("unexpected {e}"),
                    }
                }
                (acked, failed)
            }));
        }
        let mut all = Acked::new();
        let mut failed = 0;
        for t in tasks {
            let (a, f) = t.await.unwrap();
            failed += f;
            for (k, v) in a {
                assert!(
                    all.insert(k, v).is_none(),
                    "position {k:?} acknowledged twice"
                );
            }
        }
        (all, failed)
    });
    if inject {
        assert!(failed > 0, "the injected sync failures must fail appends");
    }
    let verify = |log: &Log| {
        for shard in 0..4 {
            let k = key(9, shard);
            let got = read_all(log, k);
            let want: Vec<(u64, &String)> = acked
                .iter()
                .filter(|((kk, _), _)| *kk == k)
                .map(|((_, p), v)| (*p, v))
                .collect();
            assert_eq!(got.len(), want.len(), "shard {shard}");
            for (r, (p, v)) in got.iter().zip(&want) {
                assert_eq!(r.position, *p, "shard {shard}");
                assert_eq!(r.data.as_ref(), v.as_bytes(), "shard {shard} position {p}");
            }
            // Dense: positions 0..n without gaps.
            for (i, r) in got.iter().enumerate() {
                assert_eq!(r.position, i as u64, "shard {shard}");
            }
        }
    };
    verify(&log);
    drop(rt);
    let log = Arc::try_unwrap(log).ok().expect("sole owner");
    drop(log);
    let log = open(config, &c);
    verify(&log);
}

#[test]
fn concurrent_appends_read_back_exactly() {
    run(crate::SEGMENT_BYTES_MAX_DEFAULT, false);
}

#[test]
fn concurrent_appends_with_rolls_read_back_exactly() {
    run(16 * 1024, false);
}

#[test]
fn failed_syncs_fail_only_unsynced_commits() {
    run(crate::SEGMENT_BYTES_MAX_DEFAULT, true);
}

#[test]
fn failed_syncs_with_rolls() {
    run(16 * 1024, true);
}

/// A preallocated active segment: its zero tail is the clean end, and a torn
/// commit written into it is cut like any torn tail.
#[test]
fn preallocated_segment_recovers_and_cuts_a_torn_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = clock(5_000);
    let mut config = cfg(dir.path());
    config.preallocate_segments = true;
    config.segment_bytes_max = 1 << 20;
    let k = key(4, 0);
    let log = open(config.clone(), &c);
    for i in 0..10 {
        block_on(log.append(vec![(k, vec![rec(&format!("r{i}"))])])).unwrap();
    }
    let seg = crate::segment::segment_path(dir.path(), 0);
    assert_eq!(
        std::fs::metadata(&seg).unwrap().len(),
        1 << 20,
        "preallocated"
    );
    drop(log);
    let log = open(config.clone(), &c);
    assert_eq!(read_all(&log, k).len(), 10);
    let ack = block_on(log.append(vec![(k, vec![rec("r10")])])).unwrap();
    assert_eq!(ack[0].first_position, 10);
    drop(log);
    // Tear the last commit: zero its second half, as a crash mid-write leaves it.
    let mut bytes = std::fs::read(&seg).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    let frame = 56 + 8 + "pk-r10".len() + "r10".len();
    for b in &mut bytes[end - frame / 2..end] {
        *b = 0;
    }
    std::fs::write(&seg, &bytes).unwrap();
    let log = open(config, &c);
    let got: Vec<String> = read_all(&log, k)
        .iter()
        .map(|r| String::from_utf8(r.data.to_vec()).unwrap())
        .collect();
    assert_eq!(got, (0..10).map(|i| format!("r{i}")).collect::<Vec<_>>());
    let ack = block_on(log.append(vec![(k, vec![rec("again")])])).unwrap();
    assert_eq!(ack[0].first_position, 10);
    assert_eq!(read_all(&log, k).len(), 11);
}

/// The last append fails in its sync and nothing follows: its frames are cut
/// off the file at once, so a reopen (or a crash) never finds them.
#[test]
fn failed_last_commit_is_never_recovered() {
    failed_last_commit_is_never_recovered_with(false);
    failed_last_commit_is_never_recovered_with(true);
}

fn failed_last_commit_is_never_recovered_with(sync_thread: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = clock(5_000);
    let fs = Arc::new(FaultyFs::default());
    let mut config = cfg(dir.path());
    config.preallocate_segments = true;
    config.sync_thread = sync_thread;
    let k = key(6, 0);
    let log = Log::open_with_fs(config.clone(), c.clone(), fs.clone()).unwrap();
    block_on(log.append(vec![(k, vec![rec("kept")])])).unwrap();
    *fs.next.lock() = Some(Fault::SyncFails);
    assert!(block_on(log.append(vec![(k, vec![rec("failed")])])).is_err());
    // The writer cuts the failed commit without waiting for another append.
    let seg = crate::segment::segment_path(dir.path(), 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read(&seg)
        .unwrap()
        .windows(6)
        .any(|w| w == b"failed")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "failed commit still on disk"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    drop(log);
    let log = open(config, &c);
    let got: Vec<_> = read_all(&log, k).iter().map(|r| r.data.clone()).collect();
    assert_eq!(got, vec![bytes::Bytes::from_static(b"kept")]);
}
