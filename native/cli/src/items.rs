//! xh/HTTPie-style request items after the URL: `Name:value` (a header), `name==value` (a
//! query parameter), `key=value` (a JSON string field), `key:=json` (a JSON value as written).
//!
//! The separator that comes first in the item wins, the longer one when two start at the same
//! place (`a:=1` is a JSON field, not the header `a` with value `=1`). A backslash before a
//! separator character keeps it literal: `a\=b=c` is the field `a=b` with value `c`.

use crate::units::parse_header;

/// One request item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// `Name:value`.
    Header(String, String),
    /// `name==value`.
    Query(String, String),
    /// `key=value`: a JSON string.
    Field(String, String),
    /// `key:=json`: the JSON text as written (validated).
    RawJson(String, String),
}

const SEPARATORS: [(&str, Sep); 4] = [
    (":=", Sep::RawJson),
    ("==", Sep::Query),
    ("=", Sep::Field),
    (":", Sep::Header),
];

#[derive(Copy, Clone)]
enum Sep {
    RawJson,
    Query,
    Field,
    Header,
}

/// Reads one item.
pub fn parse_item(text: &str) -> Result<Item, String> {
    let help = "a request item is Name:value (header), name==value (query), key=value (JSON string) or key:=json (JSON value)";
    let chars: Vec<char> = text.chars().collect();
    let mut key = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && i + 1 < chars.len() && matches!(chars[i + 1], ':' | '=' | '\\') {
            key.push(chars[i + 1]);
            i += 2;
            continue;
        }
        let rest: String = chars[i..].iter().collect();
        if let Some((sep, kind)) = SEPARATORS.iter().find(|(s, _)| rest.starts_with(s)) {
            let value = &rest[sep.len()..];
            if key.is_empty() {
                return Err(format!("`{text}`: the name is empty; {help}"));
            }
            return match kind {
                Sep::Header => {
                    let (name, value) = parse_header(&format!("{key}:{value}"))?;
                    Ok(Item::Header(name, value))
                }
                Sep::Query => Ok(Item::Query(key, value.to_string())),
                Sep::Field => Ok(Item::Field(key, value.to_string())),
                Sep::RawJson => {
                    serde_json::from_str::<serde::de::IgnoredAny>(value)
                        .map_err(|e| format!("`{text}`: the value after := is not JSON: {e}"))?;
                    Ok(Item::RawJson(key, value.trim().to_string()))
                }
            };
        }
        key.push(chars[i]);
        i += 1;
    }
    Err(format!("`{text}` is not a request item: {help}"))
}

/// The JSON object the field items make, in their order, with `:=` values exactly as written.
/// `None` when there are no field items.
pub fn json_body(items: &[Item]) -> Option<String> {
    let mut out = String::from("{");
    let mut any = false;
    for item in items {
        let (key, value) = match item {
            Item::Field(k, v) => (k, serde_json::Value::String(v.clone()).to_string()),
            Item::RawJson(k, v) => (k, v.clone()),
            _ => continue,
        };
        if any {
            out.push(',');
        }
        any = true;
        out.push_str(&serde_json::Value::String(key.clone()).to_string());
        out.push(':');
        out.push_str(&value);
    }
    out.push('}');
    any.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_separator() {
        let table = [
            ("X-A:b", Item::Header("X-A".into(), "b".into())),
            ("X-A: b c", Item::Header("X-A".into(), "b c".into())),
            ("q==1 2", Item::Query("q".into(), "1 2".into())),
            ("name=Ada", Item::Field("name".into(), "Ada".into())),
            ("n:=1.10", Item::RawJson("n".into(), "1.10".into())),
            (
                "tags:=[1, 2]",
                Item::RawJson("tags".into(), "[1, 2]".into()),
            ),
            ("a=b=c", Item::Field("a".into(), "b=c".into())),
            ("a==b=c", Item::Query("a".into(), "b=c".into())),
            ("url=http://x", Item::Field("url".into(), "http://x".into())),
            (r"a\=b=c", Item::Field("a=b".into(), "c".into())),
            (r"a\:b:=1", Item::RawJson("a:b".into(), "1".into())),
        ];
        for (text, want) in table {
            assert_eq!(parse_item(text), Ok(want), "{text}");
        }
        for bad in ["plain", "=x", ":x", "n:={oops", "bad name:x", "X:a\u{1}"] {
            assert!(parse_item(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fields_make_an_object_with_raw_values_untouched() {
        let items = [
            parse_item("b=2").unwrap(),
            parse_item("X-A:1").unwrap(),
            parse_item("a:=1.10").unwrap(),
            parse_item("s=\"q\"").unwrap(),
        ];
        assert_eq!(
            json_body(&items).unwrap(),
            r#"{"b":"2","a":1.10,"s":"\"q\""}"#
        );
        assert_eq!(json_body(&items[1..2]), None);
    }
}
