//! Object keys as Firehose names them:
//! `<Prefix or YYYY/MM/dd/HH/><DeliveryStreamName>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><ext>`,
//! every time part in UTC from the arrival of the buffer's first record.

use sha2::{Digest, Sha256};

/// Calendar fields of a UTC instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Utc {
    pub fn from_ms(ms: u64) -> Utc {
        let secs = ms / 1000;
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        // Days since 1970-01-01 to a civil date (proleptic Gregorian).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Utc {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    /// `YYYY/MM/dd/HH/`: the default prefix.
    pub fn hour_prefix(&self) -> String {
        format!(
            "{:04}/{:02}/{:02}/{:02}/",
            self.year, self.month, self.day, self.hour
        )
    }

    /// `yyyy-MM-dd-HH-mm-ss`: the time part of the object name.
    pub fn stamp(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}-{:02}-{:02}-{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// A UUID-shaped name part derived from what identifies the buffer (the
/// delivery stream's incarnation and its first and last source positions):
/// the same buffer always gets the same name, so writing it again replaces
/// the object instead of adding a second one.
pub(crate) fn buffer_uuid(identity: &str, first: &str, last: &str) -> String {
    let mut h = Sha256::new();
    for part in [identity, first, last] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let mut b: [u8; 16] = [0; 16];
    b.copy_from_slice(&h.finalize()[..16]);
    // Version 8 (custom), RFC 4122 variant: it looks like any UUID.
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

pub(crate) struct KeyParts<'a> {
    pub prefix: Option<&'a str>,
    pub stream_name: &'a str,
    pub version: u64,
    pub first_arrival_ms: u64,
    pub uuid: &'a str,
    pub extension: &'a str,
}

/// The object key. A custom prefix (without `!{...}` expressions, which are
/// refused at configuration time for now) is followed by the default
/// `YYYY/MM/dd/HH/` part, as Firehose does.
pub(crate) fn object_key(p: &KeyParts<'_>) -> String {
    let t = Utc::from_ms(p.first_arrival_ms);
    format!(
        "{}{}{}-{}-{}-{}{}",
        p.prefix.unwrap_or(""),
        t.hour_prefix(),
        p.stream_name,
        p.version,
        t.stamp(),
        p.uuid,
        p.extension
    )
}

/// Whether a key can be a file below the bucket directory: no empty, `.`
/// or `..` segments, no segment starting with `.` (temporary files do).
pub(crate) fn key_is_local_safe(key: &str) -> bool {
    !key.is_empty()
        && key
            .split('/')
            .all(|s| !s.is_empty() && !s.starts_with('.') && !s.contains('\0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_fields() {
        // 2026-12-03T14:15:04Z
        let t = Utc::from_ms(1_796_307_304_000);
        assert_eq!(t.stamp(), "2026-12-03-14-15-04");
        assert_eq!(t.hour_prefix(), "2026/12/03/14/");
        assert_eq!(Utc::from_ms(0).stamp(), "1970-01-01-00-00-00");
        // Leap day.
        assert_eq!(Utc::from_ms(951_782_400_000).stamp(), "2000-02-29-00-00-00");
        assert_eq!(
            Utc::from_ms(1_709_251_199_999).stamp(),
            "2024-02-29-23-59-59"
        );
    }

    #[test]
    fn keys_and_uuids() {
        let u = buffer_uuid("s@1", "shardId-000000000000/1", "shardId-000000000000/9");
        assert_eq!(u.len(), 36);
        assert_eq!(
            u,
            buffer_uuid("s@1", "shardId-000000000000/1", "shardId-000000000000/9")
        );
        assert_ne!(
            u,
            buffer_uuid("s@1", "shardId-000000000000/1", "shardId-000000000000/8")
        );
        assert_eq!(&u[14..15], "8");
        let key = object_key(&KeyParts {
            prefix: None,
            stream_name: "orders",
            version: 1,
            first_arrival_ms: 1_796_307_304_000,
            uuid: &u,
            extension: ".gz",
        });
        assert_eq!(
            key,
            format!("2026/12/03/14/orders-1-2026-12-03-14-15-04-{u}.gz")
        );
        let key = object_key(&KeyParts {
            prefix: Some("raw/"),
            stream_name: "orders",
            version: 2,
            first_arrival_ms: 0,
            uuid: "u",
            extension: "",
        });
        assert_eq!(key, "raw/1970/01/01/00/orders-2-1970-01-01-00-00-00-u");
        assert!(key_is_local_safe(&key));
        for bad in ["", "a//b", "../x", "a/./b", "a/.hidden", "/abs"] {
            assert!(!key_is_local_safe(bad), "{bad}");
        }
    }
}
