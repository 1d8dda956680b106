//! A clean stop (SIGTERM) and restart keeps data, streams, tags and settings.

use std::collections::BTreeMap;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    PutRecordsRequestEntry, ShardIteratorType, StreamMode, StreamModeDetails,
};
use aws_sdk_kinesis::Client;

use crate::common::*;

type Snapshot = BTreeMap<String, Vec<(String, Vec<u8>, String)>>;

async fn snapshot(client: &Client, name: &str) -> Snapshot {
    let mut all = BTreeMap::new();
    for shard in list_all_shards(client, name).await.unwrap() {
        let records = read_shard(client, name, shard.shard_id()).await.unwrap();
        all.insert(
            shard.shard_id().to_string(),
            records
                .iter()
                .map(|r| {
                    (
                        r.sequence_number().to_string(),
                        r.data().as_ref().to_vec(),
                        r.partition_key().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
        );
    }
    all
}

async fn tags(client: &Client, name: &str) -> BTreeMap<String, String> {
    let out = client
        .list_tags_for_stream()
        .stream_name(name)
        .send()
        .await
        .unwrap();
    out.tags()
        .iter()
        .map(|t| {
            (
                t.key().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_restart_keeps_everything() {
    let mut server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    let a = unique_name("restart-a");
    let b = unique_name("restart-b");
    let gone = unique_name("restart-gone");
    create_active(&client, &a, 3).await.unwrap();
    client
        .create_stream()
        .stream_name(&b)
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    wait_active(&client, &b).await.unwrap();
    create_active(&client, &gone, 1).await.unwrap();
    client
        .add_tags_to_stream()
        .stream_name(&a)
        .tags("owner", "tests")
        .tags("tier", "gold")
        .send()
        .await
        .unwrap();
    client
        .increase_stream_retention_period()
        .stream_name(&a)
        .retention_period_hours(72)
        .send()
        .await
        .unwrap();
    wait_active(&client, &a).await.unwrap();
    client
        .delete_stream()
        .stream_name(&gone)
        .send()
        .await
        .unwrap();

    for (stream, n) in [(&a, 300), (&b, 50)] {
        let entries: Vec<PutRecordsRequestEntry> = (0..n)
            .map(|i| {
                PutRecordsRequestEntry::builder()
                    .partition_key(format!("key-{i}"))
                    .data(Blob::new(format!("{stream}-record-{i}")))
                    .build()
                    .unwrap()
            })
            .collect();
        let out = client
            .put_records()
            .stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await
            .unwrap();
        assert_eq!(out.failed_record_count(), Some(0));
    }
    let before_a = snapshot(&client, &a).await;
    let before_b = snapshot(&client, &b).await;
    assert_eq!(before_a.values().map(Vec::len).sum::<usize>(), 300);
    let describe_before = client
        .describe_stream()
        .stream_name(&a)
        .send()
        .await
        .unwrap();
    let shards_before = describe_before
        .stream_description()
        .unwrap()
        .shards()
        .to_vec();
    let seq_in_middle = before_a["shardId-000000000000"][5].0.clone();

    let exit = server.stop().expect("SIGTERM stop");
    server.restart().expect("restart");

    // Deleted stays deleted; the others are back and ACTIVE.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let names = client
            .list_streams()
            .send()
            .await
            .unwrap()
            .stream_names()
            .to_vec();
        if !names.contains(&gone) {
            let mut expected = vec![a.clone(), b.clone()];
            expected.sort();
            let mut names = names;
            names.sort();
            assert_eq!(names, expected);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "deleted stream came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(POLL_INTERVAL_MS)).await;
    }
    wait_active(&client, &a).await.unwrap();
    wait_active(&client, &b).await.unwrap();

    let summary_a = client
        .describe_stream_summary()
        .stream_name(&a)
        .send()
        .await
        .unwrap();
    let sa = summary_a.stream_description_summary().unwrap();
    assert_eq!(sa.retention_period_hours(), 72);
    assert_eq!(sa.open_shard_count(), 3);
    let summary_b = client
        .describe_stream_summary()
        .stream_name(&b)
        .send()
        .await
        .unwrap();
    let sb = summary_b.stream_description_summary().unwrap();
    assert_eq!(
        sb.stream_mode_details().map(|m| m.stream_mode().clone()),
        Some(StreamMode::OnDemand)
    );
    assert_eq!(sb.open_shard_count(), 4);
    assert_eq!(
        tags(&client, &a).await,
        BTreeMap::from([
            ("owner".to_string(), "tests".to_string()),
            ("tier".to_string(), "gold".to_string())
        ])
    );
    let describe_after = client
        .describe_stream()
        .stream_name(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(
        describe_after.stream_description().unwrap().shards(),
        shards_before.as_slice()
    );
    assert_eq!(
        describe_after
            .stream_description()
            .unwrap()
            .stream_creation_timestamp(),
        describe_before
            .stream_description()
            .unwrap()
            .stream_creation_timestamp()
    );

    assert_eq!(snapshot(&client, &a).await, before_a);
    assert_eq!(snapshot(&client, &b).await, before_b);

    // Old sequence numbers still position iterators.
    let it = client
        .get_shard_iterator()
        .stream_name(&a)
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
        .starting_sequence_number(&seq_in_middle)
        .send()
        .await
        .unwrap();
    let rest = read_from_iterator(&client, it.shard_iterator().unwrap().to_string())
        .await
        .unwrap();
    assert_eq!(rest.len(), before_a["shardId-000000000000"].len() - 6);

    // New records go after the old ones.
    for (shard, records) in &before_a {
        let Some(last) = records.last() else { continue };
        let shard_desc = shards_before
            .iter()
            .find(|s| s.shard_id() == shard)
            .unwrap();
        let out = client
            .put_record()
            .stream_name(&a)
            .partition_key("after-restart")
            .explicit_hash_key(shard_desc.hash_key_range().unwrap().starting_hash_key())
            .data(Blob::new("after-restart"))
            .send()
            .await
            .unwrap();
        assert_eq!(out.shard_id(), shard);
        assert_eq!(
            seq_cmp(&last.0, out.sequence_number()),
            std::cmp::Ordering::Less
        );
    }

    // Checked last so a data problem is reported first: a server handles
    // SIGTERM by shutting down cleanly and exiting 0.
    assert!(exit.success(), "runnel exited with {exit} on SIGTERM");
}

/// Concurrent producers make the server group several requests into one
/// commit; a clean restart must still find every record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_restart_after_concurrent_writes() {
    const WRITERS_COUNT: usize = 4;
    const BATCHES_PER_WRITER: usize = 20;
    const RECORDS_PER_BATCH: usize = 100;
    let mut server = start_server();
    let client = sdk_client(&server.endpoint()).await;
    let name = unique_name("restart-concurrent");
    create_active(&client, &name, 2).await.unwrap();
    let mut tasks = Vec::new();
    for writer in 0..WRITERS_COUNT {
        let client = client.clone();
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            for batch in 0..BATCHES_PER_WRITER {
                let entries: Vec<PutRecordsRequestEntry> = (0..RECORDS_PER_BATCH)
                    .map(|i| {
                        PutRecordsRequestEntry::builder()
                            .partition_key(format!("w{writer}-b{batch}-{i}"))
                            .data(Blob::new(format!("w{writer}-b{batch}-{i}")))
                            .build()
                            .unwrap()
                    })
                    .collect();
                let out = client
                    .put_records()
                    .stream_name(&name)
                    .set_records(Some(entries))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(out.failed_record_count(), Some(0));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let before = snapshot(&client, &name).await;
    let total = WRITERS_COUNT * BATCHES_PER_WRITER * RECORDS_PER_BATCH;
    assert_eq!(before.values().map(Vec::len).sum::<usize>(), total);

    server.stop().expect("SIGTERM stop");
    server.restart().expect("restart");
    wait_active(&client, &name).await.unwrap();
    let after = snapshot(&client, &name).await;
    assert_eq!(
        after.values().map(Vec::len).sum::<usize>(),
        total,
        "records lost across a clean restart"
    );
    assert_eq!(after, before);
}
