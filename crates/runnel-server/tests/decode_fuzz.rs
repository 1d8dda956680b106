//! Property tests standing in for fuzzing: request decoding (JSON and CBOR)
//! of every operation's input shape must never panic, whatever the bytes.

use proptest::prelude::*;
use runnel_protocol::{decode, Encoding};
use runnel_streams::api::*;

fn decode_all(enc: Encoding, bytes: &[u8]) {
    let _ = decode::<PutRecordsInput>(enc, bytes);
    let _ = decode::<PutRecordInput>(enc, bytes);
    let _ = decode::<GetRecordsInput>(enc, bytes);
    let _ = decode::<GetShardIteratorInput>(enc, bytes);
    let _ = decode::<CreateStreamInput>(enc, bytes);
    let _ = decode::<ListShardsInput>(enc, bytes);
    let _ = decode::<SubscribeToShardInput>(enc, bytes);
    let _ = decode::<AddTagsToStreamInput>(enc, bytes);
}

const SEEDS: &[&str] = &[
    r#"{"StreamName":"s","Records":[{"Data":"aGk=","PartitionKey":"k","ExplicitHashKey":"1"}]}"#,
    r#"{"ShardIterator":"AQAB","Limit":10,"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s"}"#,
    r#"{"StreamName":"s","ShardId":"shardId-000000000000","ShardIteratorType":"AT_TIMESTAMP","Timestamp":1.5}"#,
    r#"{"StreamName":"s","ShardCount":2,"StreamModeDetails":{"StreamMode":"ON_DEMAND"},"Tags":{"a":"b"}}"#,
    r#"{"ConsumerARN":"x","ShardId":"y","StartingPosition":{"Type":"LATEST","Timestamp":3}}"#,
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all(Encoding::Json, &bytes);
        decode_all(Encoding::Cbor, &bytes);
    }

    #[test]
    fn mutated_valid_json_never_panics(seed in 0..SEEDS.len(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut bytes = SEEDS[seed].as_bytes().to_vec();
        for (at, b) in flips {
            let i = at % bytes.len();
            bytes[i] = b;
        }
        decode_all(Encoding::Json, &bytes);
    }

    #[test]
    fn cbor_of_arbitrary_json_values_never_panics(seed in 0..SEEDS.len(), cut in 0usize..400) {
        let v: serde_json::Value = serde_json::from_str(SEEDS[seed]).unwrap();
        let mut bytes = Vec::new();
        ciborium::into_writer(&v, &mut bytes).unwrap();
        decode_all(Encoding::Cbor, &bytes);
        bytes.truncate(cut.min(bytes.len()));
        decode_all(Encoding::Cbor, &bytes);
    }
}
