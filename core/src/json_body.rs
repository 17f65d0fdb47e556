//! Reading a response body as JSON: the same rule on every adapter.
//!
//! An empty body (a `204 No Content`, or a `200` with nothing in it, as many APIs answer a
//! `DELETE`) reads as JSON's `null`: `()`, `Option<T>` and `serde_json::Value` accept it, and
//! any other type fails saying the body was empty rather than "EOF while parsing".

use serde::de::DeserializeOwned;

/// Decodes `body` as `T`; an empty (or all-whitespace) body is read as `null`. The error is
/// serde's message, prefixed with "the body is empty" when it was.
///
/// ```
/// use resile_core::json_body::decode;
/// assert_eq!(decode::<()>(b""), Ok(()));
/// assert_eq!(decode::<Option<u32>>(b" \r\n"), Ok(None));
/// assert_eq!(decode::<Vec<u32>>(b"[1, 2]"), Ok(vec![1, 2]));
/// assert_eq!(
///     decode::<Vec<u32>>(b""),
///     Err("the body is empty: invalid type: null, expected a sequence".to_string())
/// );
/// ```
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return T::deserialize(serde_json::Value::Null)
            .map_err(|e| format!("the body is empty: {e}"));
    }
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

/// How a decode error quotes the body: `; body starts with: …`, or nothing for an empty body
/// (the message already says so).
pub fn quoted(excerpt: &str) -> String {
    if excerpt.is_empty() {
        String::new()
    } else {
        format!("; body starts with: {excerpt}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn an_empty_body_is_null_and_anything_else_is_json() {
        assert_eq!(
            decode::<serde_json::Value>(b""),
            Ok(serde_json::Value::Null)
        );
        assert_eq!(decode::<Option<String>>(b"\"a\""), Ok(Some("a".into())));
        assert_eq!(decode::<u8>(b"7"), Ok(7));
        let refused = decode::<u8>(b"").unwrap_err();
        assert_eq!(
            refused,
            "the body is empty: invalid type: null, expected u8"
        );
        let bad = decode::<Vec<u8>>(b"[1").unwrap_err();
        assert!(bad.starts_with("EOF while parsing"), "{bad}");
        assert!(!bad.contains("empty"), "{bad}");
    }
}
