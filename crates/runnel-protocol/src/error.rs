use serde::Serialize;

use crate::Encoding;

/// Errors the protocol layer itself raises, before a service sees the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The body could not be decoded into the operation's input shape.
    #[error("{0}")]
    Serialization(String),
}

/// The body of an AWS JSON/CBOR protocol error. `__type` is the bare error
/// name, as Kinesis sends it on JSON 1.1 and CBOR 1.1. The message member is
/// `message`, except for `SerializationException`, which AWS's front door
/// (not the service) raises and spells `Message`; every SDK reads either.
#[derive(Debug, Clone, Serialize)]
pub struct AwsErrorBody<'a> {
    #[serde(rename = "__type")]
    pub error_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(rename = "Message", skip_serializing_if = "Option::is_none")]
    front_door_message: Option<&'a str>,
}

impl<'a> AwsErrorBody<'a> {
    pub fn new(error_type: &'a str, message: &'a str) -> Self {
        let front_door = error_type == "SerializationException";
        AwsErrorBody {
            error_type,
            message: (!front_door).then_some(message),
            front_door_message: front_door.then_some(message),
        }
    }

    pub fn encode(&self, encoding: Encoding) -> Vec<u8> {
        crate::encode(encoding, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_member_as_aws_spells_it() {
        let body = AwsErrorBody::new("ResourceNotFoundException", "gone").encode(Encoding::Json);
        assert_eq!(
            body,
            br#"{"__type":"ResourceNotFoundException","message":"gone"}"#
        );
        let body = AwsErrorBody::new("SerializationException", "bad").encode(Encoding::Json);
        assert_eq!(
            body,
            br#"{"__type":"SerializationException","Message":"bad"}"#
        );
    }
}
