//! `X-Amz-Target: Kinesis_20131202.PutRecords` → (service, operation).

pub const KINESIS_TARGET_PREFIX: &str = "Kinesis_20131202";

/// Splits a target header into its service prefix and operation name.
pub fn split_target(target: &str) -> Option<(&str, &str)> {
    let (prefix, op) = target.split_once('.')?;
    if prefix.is_empty() || op.is_empty() {
        return None;
    }
    Some((prefix, op))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits() {
        assert_eq!(
            split_target("Kinesis_20131202.PutRecord"),
            Some(("Kinesis_20131202", "PutRecord"))
        );
        assert_eq!(split_target("Kinesis_20131202."), None);
        assert_eq!(split_target("nodot"), None);
    }
}
