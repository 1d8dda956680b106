//! Every limit in one place, units last in names. Values are AWS's documented
//! Kinesis Data Streams limits unless a comment says otherwise.

pub const STREAM_NAME_BYTES_MAX: usize = 128;
pub const PARTITION_KEY_CHARS_MAX: usize = 256;
pub const PUT_RECORDS_COUNT_MAX: usize = 500;
pub const PUT_RECORDS_REQUEST_BYTES_MAX: usize = 5 * 1024 * 1024;
/// Default maximum size of one record's data blob (1 MiB); a stream may raise it.
pub const RECORD_BYTES_MAX_DEFAULT: usize = 1024 * 1024;
/// The largest record size any stream may be configured for (10 MiB).
pub const RECORD_BYTES_MAX_CEILING: usize = 10 * 1024 * 1024;
pub const GET_RECORDS_COUNT_MAX: usize = 10_000;
pub const GET_RECORDS_RESPONSE_BYTES_MAX: usize = 10 * 1024 * 1024;
pub const ITERATOR_TTL_MS: u64 = 5 * 60 * 1000;
pub const RETENTION_HOURS_MIN: u32 = 24;
pub const RETENTION_HOURS_MAX: u32 = 8760;
pub const RETENTION_HOURS_DEFAULT: u32 = 24;
pub const LIST_STREAMS_LIMIT_MAX: u32 = 10_000;
pub const LIST_STREAMS_LIMIT_DEFAULT: u32 = 100;
pub const LIST_SHARDS_RESULTS_MAX: u32 = 10_000;
pub const LIST_SHARDS_RESULTS_DEFAULT: u32 = 1000;
pub const DESCRIBE_STREAM_LIMIT_MAX: u32 = 10_000;
pub const DESCRIBE_STREAM_LIMIT_DEFAULT: u32 = 100;
pub const TAGS_PER_STREAM_MAX: usize = 50;
pub const TAGS_PER_CALL_MAX: usize = 10;
pub const TAG_KEY_CHARS_MAX: usize = 128;
pub const TAG_VALUE_CHARS_MAX: usize = 256;
/// AWS's default shard quota per account in most regions.
pub const ACCOUNT_SHARDS_MAX_DEFAULT: u32 = 500;
pub const ON_DEMAND_STREAM_COUNT_MAX_DEFAULT: u32 = 50;
pub const ON_DEMAND_INITIAL_SHARD_COUNT: u32 = 4;
/// Largest request body the front door buffers: a PutRecords of 500 records of
/// the largest record size, base64-inflated, is bounded by the 5 MiB request
/// limit plus JSON overhead; a single PutRecord may carry a 10 MiB record.
pub const REQUEST_BODY_BYTES_MAX: usize = 16 * 1024 * 1024;
pub const MAX_RECORD_SIZE_KIB_MIN: u32 = 1024;
pub const MAX_RECORD_SIZE_KIB_MAX: u32 = 10240;

const _: () = assert!(PUT_RECORDS_REQUEST_BYTES_MAX <= REQUEST_BODY_BYTES_MAX);
const _: () = assert!(RECORD_BYTES_MAX_CEILING * 4 / 3 + 4096 <= REQUEST_BODY_BYTES_MAX);
const _: () = assert!(RETENTION_HOURS_MIN <= RETENTION_HOURS_DEFAULT);
const _: () = assert!(RECORD_BYTES_MAX_DEFAULT <= GET_RECORDS_RESPONSE_BYTES_MAX);
