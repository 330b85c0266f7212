//! The STUN part of the embedded server: answering Binding requests
//! (RFC 8489 §6.3) so browsers learn their public address. Pure: a request's
//! bytes and its source address in, the response's bytes out (or nothing for
//! packets that are not a well-formed request), so the socket loop stays
//! trivial and the rules are tested without sockets.

use std::net::SocketAddr;

use crate::stun::{Attribute, Class, Message, MessageBuilder, Method};

/// What the server calls itself in responses.
pub const SOFTWARE: &str = "Tandem TURN";

/// The answer to one UDP datagram, if it deserves one.
///
/// - A Binding request gets a success response with XOR-MAPPED-ADDRESS, and a
///   FINGERPRINT if the request carried one.
/// - A Binding request with comprehension-required attributes the server does
///   not know gets a 420 error listing them.
/// - Anything else (malformed, a response, an indication, other methods) gets
///   no answer: silence is the safe reply to garbage and to spoofed sources.
pub fn answer(datagram: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
    let request = Message::decode(datagram).ok()?;
    if (request.method, request.class) != (Method::Binding, Class::Request) {
        return None;
    }
    let unknown = request.unknown_comprehension_required();
    let (class, attributes) = if unknown.is_empty() {
        (Class::Success, vec![Attribute::XorMappedAddress(from)])
    } else {
        let error = Attribute::ErrorCode {
            code: 420,
            reason: "Unknown Attribute".into(),
        };
        (
            Class::Error,
            vec![error, Attribute::UnknownAttributes(unknown)],
        )
    };
    let mut response = MessageBuilder::new(Method::Binding, class, request.transaction_id);
    for attribute in attributes
        .iter()
        .chain([Attribute::Software(SOFTWARE.into())].iter())
    {
        response.add(attribute).ok()?;
    }
    response.build(None, request.has_fingerprint()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(attributes: &[Attribute], fingerprint: bool) -> Vec<u8> {
        let mut builder = MessageBuilder::new(Method::Binding, Class::Request, [9; 12]);
        for a in attributes {
            builder.add(a).expect("attribute");
        }
        builder.build(None, fingerprint).expect("request")
    }

    #[test]
    fn a_binding_request_learns_its_address() {
        let from: SocketAddr = "203.0.113.7:50123".parse().expect("addr");
        let raw = answer(&request(&[], true), from).expect("an answer");
        let response = Message::decode(&raw).expect("valid STUN");
        assert_eq!(
            (response.method, response.class),
            (Method::Binding, Class::Success)
        );
        assert_eq!(response.transaction_id, [9; 12]);
        assert!(
            response
                .attributes
                .contains(&Attribute::XorMappedAddress(from))
        );
        assert!(response.check_fingerprint(&raw));

        let v6: SocketAddr = "[2001:db8::1]:3478".parse().expect("addr");
        let raw = answer(&request(&[], false), v6).expect("an answer");
        let response = Message::decode(&raw).expect("valid STUN");
        assert!(
            response
                .attributes
                .contains(&Attribute::XorMappedAddress(v6))
        );
        assert!(!response.has_fingerprint());
    }

    #[test]
    fn unknown_required_attributes_get_420() {
        let strange = Attribute::Unknown {
            typ: 0x0031,
            value: vec![1, 2, 3, 4],
        };
        let from: SocketAddr = "198.51.100.2:4000".parse().expect("addr");
        let raw = answer(&request(&[strange], false), from).expect("an answer");
        let response = Message::decode(&raw).expect("valid STUN");
        assert_eq!(response.class, Class::Error);
        assert!(
            response
                .attributes
                .contains(&Attribute::UnknownAttributes(vec![0x0031]))
        );
    }

    #[test]
    fn garbage_responses_and_other_methods_get_silence() {
        let from: SocketAddr = "198.51.100.2:4000".parse().expect("addr");
        assert!(answer(b"hello, world", from).is_none());
        assert!(answer(&[], from).is_none());
        let response = MessageBuilder::new(Method::Binding, Class::Success, [1; 12])
            .build(None, false)
            .expect("response");
        assert!(answer(&response, from).is_none(), "never answer a response");
        let allocate = MessageBuilder::new(Method::Allocate, Class::Request, [1; 12])
            .build(None, false)
            .expect("allocate");
        assert!(answer(&allocate, from).is_none(), "TURN is not served yet");
    }
}
