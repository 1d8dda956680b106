//! Rendering for people: tables, hash-range percentages, timestamps and
//! record payloads; and parsing of the timestamps users type.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use runnel_types::civil::{civil_from_days, days_from_civil};

/// 2^128, the size of the Kinesis hash-key space.
const HASH_SPACE: f64 = 340_282_366_920_938_463_463_374_607_431_768_211_456.0;

/// Where a hash key falls in the key space, 0–100.
pub fn hash_percent(hash_key: &str) -> Option<f64> {
    hash_key
        .trim()
        .parse::<u128>()
        .ok()
        .map(|h| h as f64 / HASH_SPACE * 100.0)
}

/// The `[start, end]` of a shard's range as percentages, the end inclusive of
/// its last key (so a full range reads `0%–100%`).
pub fn range_percent(start: &str, end: &str) -> Option<(f64, f64)> {
    let s = hash_percent(start)?;
    let e = end.trim().parse::<u128>().ok()?;
    let e = (e as f64 + 1.0) / HASH_SPACE * 100.0;
    Some((s, e.min(100.0)))
}

/// `50%`, `33.33%`, `0.0015%`: two decimals, trailing zeros dropped, more
/// digits only for tiny non-zero values.
pub fn percent(p: f64) -> String {
    let text = if p != 0.0 && p.abs() < 0.01 {
        format!("{p:.6}")
    } else {
        format!("{p:.2}")
    };
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    };
    format!("{text}%")
}

/// Left-aligned columns separated by two spaces.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            let pad = widths[i].saturating_sub(cell.chars().count());
            text.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out.pop();
    out
}

/// Epoch seconds as RFC 3339 UTC with milliseconds.
pub fn rfc3339(epoch_secs: f64) -> String {
    let ms = (epoch_secs * 1000.0).round() as i64;
    let (secs, ms) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Epoch seconds from `1714564800`, `1714564800.5`, epoch milliseconds
/// (`1714564800000`), or RFC 3339 (`2024-05-01T12:00:00Z`,
/// `2024-05-01T14:00:00.250+02:00`, `2024-05-01`).
pub fn parse_time(text: &str) -> Result<f64, String> {
    let text = text.trim();
    if let Ok(n) = text.parse::<f64>() {
        if !n.is_finite() || n < 0.0 {
            return Err(format!("{text:?} is not a valid epoch timestamp"));
        }
        // Nobody means the year 5138: a number this large is milliseconds.
        return Ok(if n >= 1e11 { n / 1000.0 } else { n });
    }
    parse_rfc3339(text).ok_or_else(|| {
        format!(
            "{text:?} is not a timestamp; use RFC 3339 (2024-05-01T12:00:00Z) \
             or epoch seconds (1714564800)"
        )
    })
}

fn parse_rfc3339(text: &str) -> Option<f64> {
    let num = |s: &str| -> Option<u32> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (date, rest) = match text.find(['T', 't', ' ']) {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, "00:00:00Z"),
    };
    let mut parts = date.split('-');
    let y = i64::from(num(parts.next()?)?);
    let mo = num(parts.next()?)?;
    let d = num(parts.next()?)?;
    if parts.next().is_some() || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    // Split the time from its zone: `Z`, `+hh:mm` or `-hh:mm`.
    let (time, offset_secs) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        (t, 0i64)
    } else {
        let i = rest.rfind(['+', '-'])?;
        let (t, zone) = (&rest[..i], &rest[i..]);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (zh, zm) = zone[1..].split_once(':')?;
        (t, sign * i64::from(num(zh)? * 3600 + num(zm)? * 60))
    };
    let (hms, frac) = match time.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (time, None),
    };
    let mut hms = hms.split(':');
    let h = num(hms.next()?)?;
    let mi = num(hms.next()?)?;
    let s = match hms.next() {
        Some(s) => num(s)?,
        None => 0,
    };
    if hms.next().is_some() || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let frac = match frac {
        Some(f) => {
            num(f)?;
            format!("0.{f}").parse::<f64>().ok()?
        }
        None => 0.0,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + s) - offset_secs;
    Some(secs as f64 + frac)
}

/// A payload on one line: JSON objects and arrays re-printed compactly,
/// other UTF-8 text with control characters escaped, anything else as
/// `base64:…`.
pub fn payload_line(data: &[u8]) -> String {
    let first = data.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first, Some(b'{') | Some(b'[')) {
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
            return value.to_string();
        }
    }
    match std::str::from_utf8(data) {
        Ok(text) => text
            .chars()
            .flat_map(|c| match c {
                '\n' => vec!['\\', 'n'],
                '\r' => vec!['\\', 'r'],
                c if c.is_control() && c != '\t' => c.escape_unicode().collect(),
                c => vec![c],
            })
            .collect(),
        Err(_) => format!("base64:{}", STANDARD.encode(data)),
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_of_the_key_space() {
        let max = u128::MAX.to_string();
        assert_eq!(range_percent("0", &max), Some((0.0, 100.0)));
        let half = (u128::MAX / 2).to_string();
        let (s, e) = range_percent("0", &half).unwrap();
        assert_eq!((percent(s), percent(e)), ("0%".into(), "50%".into()));
        let third = (u128::MAX / 3).to_string();
        assert_eq!(percent(range_percent("0", &third).unwrap().1), "33.33%");
        assert_eq!(percent(0.001_5), "0.0015%");
    }

    #[test]
    fn time_round_trip() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_714_564_800.25), "2024-05-01T12:00:00.250Z");
        assert_eq!(parse_time("2024-05-01T12:00:00Z"), Ok(1_714_564_800.0));
        assert_eq!(
            parse_time("2024-05-01T14:00:00.5+02:00"),
            Ok(1_714_564_800.5)
        );
        assert_eq!(parse_time("2024-05-01"), Ok(1_714_521_600.0));
        assert_eq!(parse_time("1714564800"), Ok(1_714_564_800.0));
        assert_eq!(parse_time("1714564800000"), Ok(1_714_564_800.0));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2024-13-01T00:00:00Z").is_err());
    }

    #[test]
    fn payloads() {
        assert_eq!(payload_line(br#"{ "a" : [1, 2] }"#), r#"{"a":[1,2]}"#);
        assert_eq!(payload_line(b"two\nlines"), "two\\nlines");
        assert_eq!(payload_line(&[0xff, 0x00]), "base64:/wA=");
        assert_eq!(payload_line(b"{not json"), "{not json");
    }

    #[test]
    fn tables_align() {
        let t = table(&["A", "BB"], &[vec!["long".into(), "x".into()]]);
        assert_eq!(t, "A     BB\nlong  x");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }
}
