//! Shard ids and ARNs in AWS's textual forms.

use std::fmt;

/// `shardId-000000000007` ↔ 7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(pub u32);

impl ShardId {
    const PREFIX: &'static str = "shardId-";

    /// Parses AWS's shard id. Like AWS, a bare number (`"7"`) or any string
    /// ending in digits after the prefix is accepted by ListShards-style
    /// comparisons; here only the canonical and bare-number forms parse.
    pub fn parse(s: &str) -> Option<ShardId> {
        let digits = s.strip_prefix(Self::PREFIX).unwrap_or(s);
        if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits
            .parse::<u64>()
            .ok()
            .and_then(|n| u32::try_from(n).ok())
            .map(ShardId)
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:012}", Self::PREFIX, self.0)
    }
}

/// `arn:aws:kinesis:us-east-1:000000000000:stream/name`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamArn {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub stream_name: String,
}

impl StreamArn {
    pub fn new(region: &str, account: &str, stream_name: &str) -> Self {
        StreamArn {
            partition: "aws".into(),
            region: region.into(),
            account: account.into(),
            stream_name: stream_name.into(),
        }
    }

    /// Parses a stream ARN (`arn:aws*:kinesis:REGION:ACCOUNT:stream/NAME`).
    /// Consumer ARNs (`.../consumer/...`) are not stream ARNs.
    pub fn parse(s: &str) -> Option<StreamArn> {
        let mut parts = s.splitn(6, ':');
        let (arn, partition, service, region, account, resource) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        if arn != "arn" || !partition.starts_with("aws") || service != "kinesis" {
            return None;
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let name = resource.strip_prefix("stream/")?;
        if name.is_empty() || name.contains('/') {
            return None;
        }
        Some(StreamArn {
            partition: partition.into(),
            region: region.into(),
            account: account.into(),
            stream_name: name.into(),
        })
    }
}

impl fmt::Display for StreamArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:kinesis:{}:{}:stream/{}",
            self.partition, self.region, self.account, self.stream_name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ids() {
        assert_eq!(ShardId(7).to_string(), "shardId-000000000007");
        assert_eq!(ShardId::parse("shardId-000000000007"), Some(ShardId(7)));
        assert_eq!(ShardId::parse("7"), Some(ShardId(7)));
        assert_eq!(ShardId::parse("shardId-"), None);
        assert_eq!(ShardId::parse("shardId-99999999999999"), None);
        assert_eq!(ShardId::parse("shard-1"), None);
    }

    #[test]
    fn arns() {
        let a = StreamArn::new("us-east-1", "000000000000", "s1");
        assert_eq!(
            a.to_string(),
            "arn:aws:kinesis:us-east-1:000000000000:stream/s1"
        );
        assert_eq!(StreamArn::parse(&a.to_string()), Some(a));
        assert!(
            StreamArn::parse("arn:aws:kinesis:us-east-1:000000000000:stream/s1/consumer/c:1")
                .is_none()
        );
        assert!(StreamArn::parse("arn:aws:sqs:us-east-1:000000000000:stream/s1").is_none());
        assert!(StreamArn::parse("arn:aws:kinesis:us-east-1:0000:stream/s1").is_none());
    }
}
