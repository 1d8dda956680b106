//! Model constraint checks, worded as AWS words them:
//! `2 validation errors detected: Value '…' at 'deliveryStreamName' failed to
//! satisfy constraint: Member must have length less than or equal to 64;
//! Value null at 'extendedS3DestinationConfiguration.roleARN' failed to
//! satisfy constraint: Member must not be null`.
//!
//! Generated `Validate` impls call the helpers in [`check`]. Paths cost
//! nothing until a violation is found: [`Path`] is a chain of borrowed
//! segments, rendered to a string only when a violation is pushed.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use regex::Regex;

use crate::Blob;

/// Where a member sits in the request, in AWS's form: member names with a
/// lower-case first letter joined by `.`, list items as `records.1.member`
/// (1-based).
#[derive(Clone, Copy, Debug)]
pub enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'static str),
    Item(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    pub fn field(&'a self, name: &'static str) -> Path<'a> {
        Path::Field(self, name)
    }

    /// The list item at `index` (0-based; shown 1-based as AWS does).
    pub fn item(&'a self, index: usize) -> Path<'a> {
        Path::Item(self, index)
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Field(Path::Root, name) => f.write_str(name),
            Path::Field(parent, name) => write!(f, "{parent}.{name}"),
            Path::Item(parent, i) => write!(f, "{parent}.{}.member", i + 1),
        }
    }
}

/// How the offending value appears in the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shown {
    /// `Value null at '…'` (a required member is missing).
    Null,
    /// `Value at '…'`: AWS leaves out blobs and members the model marks sensitive.
    Hidden,
    /// `Value '…' at '…'`.
    Value(String),
}

/// One broken model constraint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConstraintViolation {
    pub path: String,
    pub value: Shown,
    /// E.g. `Member must have length less than or equal to 64`.
    pub constraint: String,
}

impl fmt::Display for ConstraintViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Shown::Null => f.write_str("Value null")?,
            Shown::Hidden => f.write_str("Value")?,
            Shown::Value(v) => write!(f, "Value '{v}'")?,
        }
        write!(
            f,
            " at '{}' failed to satisfy constraint: {}",
            self.path, self.constraint
        )
    }
}

/// AWS's `ValidationException` message for `violations`, or `None` if there are none.
pub fn validation_message(violations: &[ConstraintViolation]) -> Option<String> {
    let n = violations.len();
    if n == 0 {
        return None;
    }
    let items: Vec<String> = violations.iter().map(ToString::to_string).collect();
    Some(format!(
        "{n} validation error{} detected: {}",
        if n == 1 { "" } else { "s" },
        items.join("; ")
    ))
}

/// Model constraints of one shape, checked recursively through its members.
pub trait Validate {
    /// Pushes every violation under `path`, in member order.
    fn validate(&self, path: &Path<'_>, errors: &mut Vec<ConstraintViolation>);

    /// The `ValidationException` message, if anything is violated.
    fn validation_error(&self) -> Option<String> {
        let mut errors = Vec::new();
        self.validate(&Path::Root, &mut errors);
        validation_message(&errors)
    }
}

/// A model `pattern`, compiled on first use. The model's patterns are Java
/// regular expressions matched against the whole value, so the source is
/// anchored as `^(?:…)$`.
pub struct Pattern {
    source: &'static str,
    compiled: OnceLock<Option<Regex>>,
}

impl Pattern {
    pub const fn new(source: &'static str) -> Self {
        Pattern {
            source,
            compiled: OnceLock::new(),
        }
    }

    pub fn source(&self) -> &'static str {
        self.source
    }

    fn regex(&self) -> Option<&Regex> {
        self.compiled
            .get_or_init(|| Regex::new(&format!("^(?:{})$", rust_syntax(self.source))).ok())
            .as_ref()
    }

    /// Whether the pattern compiles with the `regex` crate (a test asserts
    /// this for every pattern the generator emits).
    pub fn compiles(&self) -> bool {
        self.regex().is_some()
    }

    /// A pattern that does not compile accepts everything (never the case
    /// for generated code; see [`Pattern::compiles`]).
    pub fn is_match(&self, value: &str) -> bool {
        self.regex().is_none_or(|re| re.is_match(value))
    }
}

/// The model's Java regular expressions in `regex` crate syntax:
/// - Java's `\d`, `\w`, `\s` (and `\D`, `\W`, `\S` outside a class) are
///   ASCII-only; the `regex` crate's are Unicode, so they are spelled out.
/// - Java writes characters beyond U+FFFF in a class as a UTF-16 surrogate
///   range (`\uD800\uDC00-\uDBFF\uDFFF`); the `regex` crate matches code
///   points, so that range becomes `\x{10000}-\x{10FFFF}`.
fn rust_syntax(java: &str) -> String {
    let java = java.replace(r"\uD800\uDC00-\uDBFF\uDFFF", r"\x{10000}-\x{10FFFF}");
    let ascii = |c: char| match c.to_ascii_lowercase() {
        'd' => "0-9",
        'w' => "a-zA-Z0-9_",
        _ => r" \t\n\x0B\f\r",
    };
    let mut out = String::with_capacity(java.len());
    let mut in_class = 0usize;
    let mut chars = java.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('d' | 'w' | 's')) if in_class > 0 => out.push_str(ascii(e)),
                Some(e @ ('d' | 'w' | 's')) => out.push_str(&format!("[{}]", ascii(e))),
                Some(e @ ('D' | 'W' | 'S')) if in_class == 0 => {
                    out.push_str(&format!("[^{}]", ascii(e)));
                }
                Some(e) => {
                    out.push('\\');
                    out.push(e);
                }
                None => out.push('\\'),
            },
            '[' => {
                in_class += 1;
                out.push(c);
            }
            ']' if in_class > 0 => {
                in_class -= 1;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// The helpers generated `Validate` impls call.
pub mod check {
    use super::*;

    fn push(errors: &mut Vec<ConstraintViolation>, path: &Path<'_>, value: Shown, c: String) {
        errors.push(ConstraintViolation {
            path: path.to_string(),
            value,
            constraint: c,
        });
    }

    fn shown(v: &str, sensitive: bool) -> Shown {
        if sensitive {
            Shown::Hidden
        } else {
            Shown::Value(v.to_string())
        }
    }

    /// `Member must not be null`.
    pub fn required<T>(v: &Option<T>, path: &Path<'_>, errors: &mut Vec<ConstraintViolation>) {
        if v.is_none() {
            push(errors, path, Shown::Null, "Member must not be null".into());
        }
    }

    /// The length constraint a string of `len` characters breaks, if any.
    fn len_constraint(len: usize, min: Option<usize>, max: Option<usize>) -> Option<String> {
        if let Some(min) = min.filter(|m| len < *m) {
            return Some(format!(
                "Member must have length greater than or equal to {min}"
            ));
        }
        if let Some(max) = max.filter(|m| len > *m) {
            return Some(format!(
                "Member must have length less than or equal to {max}"
            ));
        }
        None
    }

    /// Length in characters, as runnel counts the model's string `min`/`max`.
    fn char_len(v: &str) -> usize {
        v.chars().count()
    }

    pub fn str_len(
        v: &str,
        min: Option<usize>,
        max: Option<usize>,
        sensitive: bool,
        path: &Path<'_>,
        errors: &mut Vec<ConstraintViolation>,
    ) {
        if let Some(c) = len_constraint(char_len(v), min, max) {
            push(errors, path, shown(v, sensitive), c);
        }
    }

    pub fn pattern(
        v: &str,
        p: &Pattern,
        sensitive: bool,
        path: &Path<'_>,
        errors: &mut Vec<ConstraintViolation>,
    ) {
        if !p.is_match(v) {
            let c = format!(
                "Member must satisfy regular expression pattern: {}",
                p.source()
            );
            push(errors, path, shown(v, sensitive), c);
        }
    }

    /// Blob length in bytes; AWS leaves the value out of the message.
    pub fn blob_len(
        v: &Blob,
        min: Option<usize>,
        max: Option<usize>,
        path: &Path<'_>,
        errors: &mut Vec<ConstraintViolation>,
    ) {
        if let Some(c) = len_constraint(v.0.len(), min, max) {
            push(errors, path, Shown::Hidden, c);
        }
    }

    pub fn range_int(
        v: i64,
        min: Option<i64>,
        max: Option<i64>,
        path: &Path<'_>,
        errors: &mut Vec<ConstraintViolation>,
    ) {
        let c = if let Some(min) = min.filter(|m| v < *m) {
            format!("Member must have value greater than or equal to {min}")
        } else if let Some(max) = max.filter(|m| v > *m) {
            format!("Member must have value less than or equal to {max}")
        } else {
            return;
        };
        push(errors, path, Shown::Value(v.to_string()), c);
    }

    pub fn range_float(
        v: f64,
        min: Option<f64>,
        max: Option<f64>,
        path: &Path<'_>,
        errors: &mut Vec<ConstraintViolation>,
    ) {
        let c = if let Some(min) = min.filter(|m| v < *m) {
            format!(
                "Member must have value greater than or equal to {}",
                java_double(min)
            )
        } else if let Some(max) = max.filter(|m| v > *m) {
            format!(
                "Member must have value less than or equal to {}",
                java_double(max)
            )
        } else {
            return;
        };
        push(errors, path, Shown::Value(java_double(v)), c);
    }

    /// How Java prints a double in the common cases (`1.0`, `0.5`).
    pub fn java_double(v: f64) -> String {
        if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e7 {
            format!("{v:.1}")
        } else {
            v.to_string()
        }
    }

    /// List or map length (number of entries).
    pub fn count(
        len: usize,
        min: Option<usize>,
        max: Option<usize>,
        value: impl FnOnce() -> String,
        path: &Path<'_>,
        errors: &mut Vec<ConstraintViolation>,
    ) {
        if let Some(c) = len_constraint(len, min, max) {
            push(errors, path, Shown::Value(value()), c);
        }
    }

    /// A list as Java prints it: `[a, b]`.
    pub fn show_list<T: fmt::Display>(v: &[T]) -> String {
        let items: Vec<String> = v.iter().map(ToString::to_string).collect();
        format!("[{}]", items.join(", "))
    }

    /// A list whose items have no short form: `[]` when empty, `[…]` otherwise.
    pub fn show_opaque_list<T>(v: &[T]) -> String {
        if v.is_empty() { "[]" } else { "[…]" }.to_string()
    }

    /// A map whose values have no short form: `{}` when empty, `{…}` otherwise.
    pub fn show_opaque_map<K, V>(v: &BTreeMap<K, V>) -> String {
        if v.is_empty() { "{}" } else { "{…}" }.to_string()
    }

    /// A map as Java prints it: `{k=v, k2=v2}`.
    pub fn show_map<K: fmt::Display, V: fmt::Display>(v: &BTreeMap<K, V>) -> String {
        let items: Vec<String> = v.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{{{}}}", items.join(", "))
    }

    /// Constraints on the string items of a list or the keys/values of a
    /// map are reported once for the whole member, as AWS does, naming
    /// every length bound of the item when one is broken (the longest
    /// first): `Member must satisfy constraint: [Member must have length
    /// less than or equal to 128, Member must have length greater than or
    /// equal to 1]`. `failed` collects each constraint once.
    pub fn item_str(v: &str, min: Option<usize>, max: Option<usize>, failed: &mut Vec<String>) {
        if len_constraint(char_len(v), min, max).is_none() {
            return;
        }
        let bounds = [
            max.map(|m| format!("Member must have length less than or equal to {m}")),
            min.map(|m| format!("Member must have length greater than or equal to {m}")),
        ];
        for c in bounds.into_iter().flatten() {
            if !failed.contains(&c) {
                failed.push(c);
            }
        }
    }

    pub fn item_pattern(v: &str, p: &Pattern, failed: &mut Vec<String>) {
        if !p.is_match(v) {
            let c = format!(
                "Member must satisfy regular expression pattern: {}",
                p.source()
            );
            if !failed.contains(&c) {
                failed.push(c);
            }
        }
    }

    /// Pushes one violation for the collected item constraints, if any.
    /// `what` is `Member`, `Map keys` or `Map value`.
    pub fn items(
        what: &str,
        failed: Vec<String>,
        value: impl FnOnce() -> String,
        path: &Path<'_>,
        errors: &mut Vec<ConstraintViolation>,
    ) {
        if failed.is_empty() {
            return;
        }
        let c = format!("{what} must satisfy constraint: [{}]", failed.join(", "));
        push(errors, path, Shown::Value(value()), c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_as_aws_does() {
        let root = Path::Root;
        let records = root.field("records");
        let item = records.item(0);
        assert_eq!(item.field("data").to_string(), "records.1.member.data");
        let cfg = root.field("extendedS3DestinationConfiguration");
        assert_eq!(
            cfg.field("roleARN").to_string(),
            "extendedS3DestinationConfiguration.roleARN"
        );
    }

    #[test]
    fn one_and_many_violations() {
        let root = Path::Root;
        let mut e = Vec::new();
        check::str_len("abc", Some(1), Some(2), false, &root.field("name"), &mut e);
        assert_eq!(
            validation_message(&e).unwrap(),
            "1 validation error detected: Value 'abc' at 'name' failed to satisfy \
             constraint: Member must have length less than or equal to 2"
        );
        check::required::<u8>(&None, &root.field("roleARN"), &mut e);
        check::blob_len(
            &Blob(vec![1; 3]),
            None,
            Some(2),
            &root.field("data"),
            &mut e,
        );
        check::range_int(0, Some(1), None, &root.field("sizeInMBs"), &mut e);
        assert_eq!(
            validation_message(&e).unwrap(),
            "4 validation errors detected: Value 'abc' at 'name' failed to satisfy constraint: \
             Member must have length less than or equal to 2; Value null at 'roleARN' failed to \
             satisfy constraint: Member must not be null; Value at 'data' failed to satisfy \
             constraint: Member must have length less than or equal to 2; Value '0' at \
             'sizeInMBs' failed to satisfy constraint: Member must have value greater than or \
             equal to 1"
        );
        assert_eq!(validation_message(&[]), None);
    }

    #[test]
    fn patterns_match_whole_values() {
        static P: Pattern = Pattern::new("[a-zA-Z0-9_.-]+");
        assert!(P.compiles());
        assert!(P.is_match("my.stream-1"));
        assert!(!P.is_match("a b"));
        static ALT: Pattern = Pattern::new("^$|[a-zA-Z/_]+");
        assert!(ALT.is_match(""));
        assert!(ALT.is_match("a/b"));
        assert!(!ALT.is_match("a1"));
        static GLUE_LINE: Pattern =
            Pattern::new(r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\t]*");
        assert!(GLUE_LINE.compiles());
        assert!(GLUE_LINE.is_match("tab\there 😀"));
        assert!(!GLUE_LINE.is_match("new\nline"));
        // Java's \d, \w and \s are ASCII-only.
        static ARN: Pattern = Pattern::new(r"arn:.*:iam::\d{12}:role/\S+");
        assert!(ARN.is_match("arn:aws:iam::123456789012:role/a\u{a0}b"));
        assert!(!ARN.is_match("arn:aws:iam::١٢٣٤٥٦٧٨٩٠١٢:role/r"));
        static CLASS: Pattern = Pattern::new(r"[\w\s-]+");
        assert!(CLASS.is_match("a_b c-1"));
        assert!(!CLASS.is_match("é"));
        assert_eq!(rust_syntax(r"a\\d[\d\]]\."), r"a\\d[0-9\]]\.");
        static LOOKAHEAD: Pattern = Pattern::new("^(?!aws:).*");
        assert!(!LOOKAHEAD.compiles());
    }

    #[test]
    fn list_items_are_reported_once_for_the_list() {
        static P: Pattern = Pattern::new("[a-z]+");
        let mut failed = Vec::new();
        let keys = vec!["ok".to_string(), "NO".to_string(), "X".to_string()];
        for k in &keys {
            check::item_str(k, Some(1), Some(2), &mut failed);
            check::item_pattern(k, &P, &mut failed);
        }
        let mut e = Vec::new();
        let root = Path::Root;
        check::items(
            "Member",
            failed,
            || check::show_list(&keys),
            &root.field("tagKeys"),
            &mut e,
        );
        assert_eq!(
            e[0].to_string(),
            "Value '[ok, NO, X]' at 'tagKeys' failed to satisfy constraint: Member must satisfy \
             constraint: [Member must satisfy regular expression pattern: [a-z]+]"
        );
    }

    #[test]
    fn doubles_print_as_java_does() {
        assert_eq!(check::java_double(1.0), "1.0");
        assert_eq!(check::java_double(0.25), "0.25");
    }
}
