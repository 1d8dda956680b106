//! Model constraint checks with AWS's wording:
//! `1 validation error detected: Value 'a b' at 'streamName' failed to satisfy
//! constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+`

use std::collections::BTreeMap;

use crate::error::StreamsError;

/// `0|[1-9]\d{0,max_digits-1}`.
pub fn is_decimal(v: &str, max_digits: usize) -> bool {
    v == "0"
        || (!v.is_empty()
            && v.len() <= max_digits
            && !v.starts_with('0')
            && v.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `v` matches the whole of the model's `ResourceARN` pattern
/// `arn:aws.*:kinesis:.*:\d{12}:.*(stream|channel|queue)/\S+` (each `.*`
/// tried at every place it could end; ARNs are at most 2048 characters).
pub fn is_resource_arn(v: &str) -> bool {
    // Java's `\s`: ASCII white space only.
    let non_space = |s: &str| {
        !s.is_empty()
            && !s
                .bytes()
                .any(|b| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
    };
    let Some(rest) = v.strip_prefix("arn:aws") else {
        return false;
    };
    rest.match_indices(":kinesis:").any(|(i, m)| {
        let after = &rest[i + m.len()..];
        after.match_indices(':').any(|(j, _)| {
            let d = &after.as_bytes()[j + 1..];
            d.len() > 12
                && d[..12].iter().all(u8::is_ascii_digit)
                && d[12] == b':'
                && ["stream/", "channel/", "queue/"].iter().any(|kind| {
                    let tail = &after[j + 14..];
                    tail.match_indices(kind)
                        .any(|(k, _)| non_space(&tail[k + kind.len()..]))
                })
        })
    })
}

/// Whether a string's length in characters lies in `min..=max`, without
/// counting characters when the byte length already decides it.
pub fn char_len_within(v: &str, min: usize, max: usize) -> bool {
    if v.len() <= max {
        // Characters <= bytes; at least one character per 4 bytes.
        return v.len() >= min && (min <= 1 || v.chars().count() >= min);
    }
    if v.len() > 4 * max {
        return false;
    }
    let n = v.chars().count();
    n >= min && n <= max
}

/// Collects constraint violations of one request, in member order.
#[derive(Default)]
pub struct Violations {
    items: Vec<String>,
}

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, value: &str, field: &str, constraint: &str) {
        self.push_raw(value, field, &format!("Member must {constraint}"));
    }

    fn push_raw(&mut self, value: &str, field: &str, constraint: &str) {
        self.items.push(format!(
            "Value {value} at '{field}' failed to satisfy constraint: {constraint}"
        ));
    }

    pub fn required<T>(&mut self, field: &str, value: &Option<T>) {
        if value.is_none() {
            self.items.push(format!(
                "Value null at '{field}' failed to satisfy constraint: Member must not be null"
            ));
        }
    }

    /// Length bounds count characters, as the model's `min`/`max` do for strings.
    pub fn string(&mut self, field: &str, value: Option<&str>, min: usize, max: usize) {
        let Some(v) = value else { return };
        let len = v.chars().count();
        if len < min {
            self.push(
                &quote(v),
                field,
                &format!("have length greater than or equal to {min}"),
            );
        } else if len > max {
            self.push(
                &quote(v),
                field,
                &format!("have length less than or equal to {max}"),
            );
        }
    }

    pub fn stream_name(&mut self, field: &str, value: Option<&str>) {
        let Some(v) = value else { return };
        self.string(field, Some(v), 1, 128);
        if !v.is_empty()
            && !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        {
            self.push(
                &quote(v),
                field,
                "satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
            );
        }
    }

    pub fn stream_arn(&mut self, field: &str, value: Option<&str>) {
        let Some(v) = value else { return };
        self.string(field, Some(v), 1, 2048);
        if runnel_types::StreamArn::parse(v).is_none() {
            self.push(
                &quote(v),
                field,
                "satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+",
            );
        }
    }

    /// `ResourceARN` of the tag and resource-policy operations.
    pub fn resource_arn(&mut self, field: &str, value: Option<&str>) {
        let Some(v) = value else { return };
        self.string(field, Some(v), 1, 2048);
        if !v.is_empty() && !is_resource_arn(v) {
            self.push(
                &quote(v),
                field,
                "satisfy regular expression pattern: \
                 arn:aws.*:kinesis:.*:\\d{12}:.*(stream|channel|queue)/\\S+",
            );
        }
    }

    /// `ConsumerARN`: `<stream ARN>/consumer/<name>:<epoch seconds>`.
    pub fn consumer_arn(&mut self, field: &str, value: Option<&str>) {
        let Some(v) = value else { return };
        self.string(field, Some(v), 1, 2048);
        if !v.is_empty() && crate::consumers::parse_consumer_arn(v).is_none() {
            self.push(
                &quote(v),
                field,
                "satisfy regular expression pattern: ^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/\
                 [a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+",
            );
        }
    }

    pub fn shard_id(&mut self, field: &str, value: Option<&str>) {
        self.stream_name(field, value);
    }

    pub fn int(&mut self, field: &str, value: Option<i64>, min: i64, max: Option<i64>) {
        let Some(v) = value else { return };
        if v < min {
            self.push(
                &quote(&v.to_string()),
                field,
                &format!("have value greater than or equal to {min}"),
            );
        } else if let Some(max) = max.filter(|m| v > *m) {
            self.push(
                &quote(&v.to_string()),
                field,
                &format!("have value less than or equal to {max}"),
            );
        }
    }

    pub fn one_of(&mut self, field: &str, value: Option<&str>, allowed: &[&str]) {
        let Some(v) = value else { return };
        if !allowed.contains(&v) {
            self.push(
                &quote(v),
                field,
                &format!("satisfy enum value set: [{}]", allowed.join(", ")),
            );
        }
    }

    /// Decimal integer patterns (`HashKey`: `0|[1-9]\d{0,38}`, `SequenceNumber`: `0|[1-9]\d{0,128}`).
    pub fn decimal(&mut self, field: &str, value: Option<&str>, max_digits: usize) {
        let Some(v) = value else { return };
        if !is_decimal(v, max_digits) {
            let rest = max_digits - 1;
            self.push(
                &quote(v),
                field,
                &format!("satisfy regular expression pattern: 0|([1-9]\\d{{0,{rest}}})"),
            );
        }
    }

    pub fn list_len(
        &mut self,
        field: &str,
        len: Option<usize>,
        min: usize,
        max: usize,
        shown: &str,
    ) {
        let Some(n) = len else { return };
        if n < min {
            self.push(
                &quote(shown),
                field,
                &format!("have length greater than or equal to {min}"),
            );
        } else if n > max {
            self.push(
                &quote(shown),
                field,
                &format!("have length less than or equal to {max}"),
            );
        }
    }

    pub fn blob_len(&mut self, field: &str, len: Option<usize>, max: usize) {
        let Some(n) = len else { return };
        if n > max {
            // AWS leaves the blob's value out of the message.
            self.items.push(format!(
                "Value at '{field}' failed to satisfy constraint: Member must have length less than or equal to {max}"
            ));
        }
    }

    /// Length bounds on every key and every value of a string map (`TagMap`).
    /// AWS reports each kind once, showing the whole map.
    pub fn map_entries(
        &mut self,
        field: &str,
        map: Option<&BTreeMap<String, String>>,
        keys: (usize, usize),
        values: (usize, usize),
    ) {
        let Some(m) = map else { return };
        if !m.keys().all(|k| char_len_within(k, keys.0, keys.1)) {
            self.push_raw(&quote(&show_map(m)), field, &part_bounds("Map keys", keys));
        }
        if !m.values().all(|v| char_len_within(v, values.0, values.1)) {
            self.push_raw(
                &quote(&show_map(m)),
                field,
                &part_bounds("Map value", values),
            );
        }
    }

    /// Length bounds on every member of a string list (`TagKeyList`).
    pub fn members(&mut self, field: &str, list: Option<&[String]>, min: usize, max: usize) {
        let Some(l) = list else { return };
        if !l.iter().all(|k| char_len_within(k, min, max)) {
            self.push_raw(
                &quote(&show_list(l)),
                field,
                &part_bounds("Member", (min, max)),
            );
        }
    }

    /// Whether nothing was found so far.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn finish(self) -> Result<(), StreamsError> {
        match self.items.len() {
            0 => Ok(()),
            n => Err(StreamsError::Validation(format!(
                "{n} validation error{} detected: {}",
                if n == 1 { "" } else { "s" },
                self.items.join("; ")
            ))),
        }
    }
}

fn quote(v: &str) -> String {
    format!("'{v}'")
}

/// AWS's wording for length bounds on the parts of a collection.
fn part_bounds(lead: &str, (min, max): (usize, usize)) -> String {
    format!(
        "{lead} must satisfy constraint: [Member must have length less than or equal to {max}, \
         Member must have length greater than or equal to {min}]"
    )
}

/// A string map as AWS shows it in validation messages: `{a=1, b=2}`.
pub fn show_map(m: &BTreeMap<String, String>) -> String {
    let entries: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", entries.join(", "))
}

/// A string list as AWS shows it in validation messages: `[a, b]`.
pub fn show_list(l: &[String]) -> String {
    format!("[{}]", l.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_wording() {
        let mut v = Violations::new();
        v.stream_name("streamName", Some("a b"));
        let err = v.finish().unwrap_err();
        assert_eq!(
            err.to_string(),
            "1 validation error detected: Value 'a b' at 'streamName' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        );
        let mut v = Violations::new();
        v.int("shardCount", Some(0), 1, None);
        v.required::<u8>("records", &None);
        let err = v.finish().unwrap_err().to_string();
        assert!(
            err.starts_with("2 validation errors detected: Value '0' at 'shardCount'"),
            "{err}"
        );
        assert!(err.ends_with("Member must not be null"), "{err}");
    }

    #[test]
    fn resource_arns() {
        for ok in [
            "arn:aws:kinesis:us-east-1:000000000000:stream/s",
            "arn:aws-cn:kinesis:cn-north-1:000000000000:stream/s/consumer/c:1",
            "arn:aws:kinesis::000000000000:channel/x",
            "arn:aws:kinesis:r:000000000000:queue/q",
        ] {
            assert!(is_resource_arn(ok), "{ok}");
        }
        for bad in [
            "a b",
            "arn:aws:kinesis:us-east-1:00000000000:stream/s",
            "arn:aws:kinesis:us-east-1:000000000000:stream/",
            "arn:aws:kinesis:us-east-1:000000000000:stream/a b",
            "arn:aws:sqs:us-east-1:000000000000:stream/s",
            "arn:aws:kinesis:us-east-1:000000000000:table/s",
        ] {
            assert!(!is_resource_arn(bad), "{bad}");
        }
    }

    #[test]
    fn decimals() {
        let mut v = Violations::new();
        v.decimal("explicitHashKey", Some("0"), 39);
        v.decimal("explicitHashKey", Some("123"), 39);
        assert!(v.finish().is_ok());
        for bad in ["01", "", "1a", "-1", &"1".repeat(40)] {
            let mut v = Violations::new();
            v.decimal("explicitHashKey", Some(bad), 39);
            assert!(v.finish().is_err(), "{bad}");
        }
    }
}
