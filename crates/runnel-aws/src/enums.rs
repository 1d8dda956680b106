//! Model enums as strict Rust enums. A value outside the model's set fails
//! deserialization with an error that [`crate::parse_json`] turns into AWS's
//! `Member must satisfy enum value set: [A, B]` violation at the member's path.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};

/// Separates the parts of the enum error inside a serde error message
/// (serde errors carry only text).
const MARK: char = '\u{1f}';

/// A value outside an enum's set, as decoded from a serde error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnumViolation {
    pub value: String,
    /// The allowed values, joined with `, `.
    pub allowed: String,
}

impl EnumViolation {
    pub(crate) fn encode(value: &str, allowed: &[&str]) -> String {
        format!("{MARK}{value}{MARK}{}{MARK}", allowed.join(", "))
    }

    /// Finds an encoded violation in a serde error message (which may carry
    /// a position after it).
    pub(crate) fn decode(message: &str) -> Option<Self> {
        let start = message.find(MARK)?;
        let end = message.rfind(MARK)?;
        let middle = message[..end].rfind(MARK)?;
        if middle <= start {
            return None;
        }
        Some(EnumViolation {
            value: message[start + 1..middle].to_string(),
            allowed: message[middle + 1..end].to_string(),
        })
    }

    pub fn constraint(&self) -> String {
        enum_error_message(&self.allowed)
    }
}

/// `Member must satisfy enum value set: [A, B]` for `allowed` = `A, B`.
pub fn enum_error_message(allowed: &str) -> String {
    format!("Member must satisfy enum value set: [{allowed}]")
}

struct EnumVisitor<T> {
    parse: fn(&str) -> Option<T>,
    values: &'static [&'static str],
}

impl<T> Visitor<'_> for EnumVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "one of [{}]", self.values.join(", "))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v).ok_or_else(|| E::custom(EnumViolation::encode(v, self.values)))
    }
}

/// Strict deserialization of a model enum (used by [`aws_enum!`]).
#[doc(hidden)]
pub fn deserialize_enum<'de, D: Deserializer<'de>, T>(
    d: D,
    parse: fn(&str) -> Option<T>,
    values: &'static [&'static str],
) -> Result<T, D::Error> {
    d.deserialize_str(EnumVisitor { parse, values })
}

/// Declares a model enum: `aws_enum!(Name { Variant = "WireValue", … });`
/// gives a `Copy` enum with `VALUES`, `as_str`, `parse`, `Display`, and
/// serde impls that use the wire values.
#[macro_export]
macro_rules! aws_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $value:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            /// The model's values, in model order.
            pub const VALUES: &'static [&'static str] = &[$($value),+];

            pub fn as_str(&self) -> &'static str {
                match self {
                    $(Self::$variant => $value),+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($value => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::__private::serde::Serialize for $name {
            fn serialize<S: $crate::__private::serde::Serializer>(
                &self,
                s: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__private::serde::Deserializer<'de>>(
                d: D,
            ) -> ::std::result::Result<Self, D::Error> {
                $crate::__private::deserialize_enum(d, Self::parse, Self::VALUES)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::aws_enum!(Compression {
        Uncompressed = "UNCOMPRESSED",
        Gzip = "GZIP",
    });

    #[test]
    fn strict_parse_and_wire_values() {
        let c: Compression = serde_json::from_str("\"GZIP\"").unwrap();
        assert_eq!(c, Compression::Gzip);
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"GZIP\"");
        assert_eq!(Compression::VALUES, &["UNCOMPRESSED", "GZIP"]);
        let err = serde_json::from_str::<Compression>("\"gzip\"").unwrap_err();
        let v = EnumViolation::decode(&err.to_string()).unwrap();
        assert_eq!(v.value, "gzip");
        assert_eq!(
            v.constraint(),
            "Member must satisfy enum value set: [UNCOMPRESSED, GZIP]"
        );
    }

    #[test]
    fn decode_needs_three_marks() {
        assert_eq!(EnumViolation::decode("plain error"), None);
        assert_eq!(EnumViolation::decode("\u{1f}x"), None);
    }
}
