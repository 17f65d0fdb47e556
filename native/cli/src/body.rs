//! The request body, from exactly one source: `--data` (bytes as given), `--json` (validated,
//! sent as written), `--form` (urlencoded), `-F` (multipart), or the JSON field items. Bytes
//! are never re-serialized: what the user gave is what the server receives.

use std::path::Path;

use crate::exit::Exit;
use crate::items::{json_body, Item};
use crate::Failed;

/// A body and the `Content-Type` that goes with it unless the user set one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Body {
    /// The bytes, as they go on the wire.
    pub bytes: Vec<u8>,
    /// The default `Content-Type`.
    pub content_type: String,
    /// Whether to ask for JSON back (`Accept: application/json`, as curl's `--json` does).
    pub accept_json: bool,
}

/// Where the body comes from, as given on the command line.
#[derive(Default)]
pub struct Sources<'a> {
    /// `--data`.
    pub data: Option<&'a str>,
    /// `--json`.
    pub json: Option<&'a str>,
    /// `--form`.
    pub form: &'a [String],
    /// `-F`.
    pub multipart: &'a [String],
    /// The request items.
    pub items: &'a [Item],
}

/// `TEXT`, `@file`, or `@-` (stdin), as bytes.
fn read_arg(flag: &str, value: &str) -> Result<Vec<u8>, Failed> {
    match value.strip_prefix('@') {
        Some("-") => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                .map_err(|e| (Exit::Usage, format!("{flag} @-: stdin: {e}")))?;
            Ok(buf)
        }
        Some(path) => {
            std::fs::read(path).map_err(|e| (Exit::Usage, format!("{flag} @{path}: {e}")))
        }
        None => Ok(value.as_bytes().to_vec()),
    }
}

/// The body, or `None` for a request without one. Two sources at once are a usage error.
pub fn build(src: &Sources<'_>) -> Result<Option<Body>, Failed> {
    let fields = json_body(src.items);
    let given: Vec<&str> = [
        src.data.map(|_| "--data"),
        src.json.map(|_| "--json"),
        (!src.form.is_empty()).then_some("--form"),
        (!src.multipart.is_empty()).then_some("-F"),
        fields.as_ref().map(|_| "key=value items"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if given.len() > 1 {
        return Err((
            Exit::Usage,
            format!("one body at a time: {} were given", given.join(" and ")),
        ));
    }
    if let Some(data) = src.data {
        return Ok(Some(Body {
            bytes: read_arg("--data", data)?,
            content_type: "application/x-www-form-urlencoded".into(),
            accept_json: false,
        }));
    }
    if let Some(json) = src.json {
        let bytes = read_arg("--json", json)?;
        serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
            .map_err(|e| (Exit::Usage, format!("--json is not valid JSON: {e}")))?;
        return Ok(Some(Body {
            bytes,
            content_type: "application/json".into(),
            accept_json: true,
        }));
    }
    if !src.form.is_empty() {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for pair in src.form {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| (Exit::Usage, format!("--form {pair}: use --form key=value")))?;
            form.append_pair(k, v);
        }
        return Ok(Some(Body {
            bytes: form.finish().into_bytes(),
            content_type: "application/x-www-form-urlencoded".into(),
            accept_json: false,
        }));
    }
    if !src.multipart.is_empty() {
        let parts = src
            .multipart
            .iter()
            .map(|p| Part::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        let (boundary, bytes) = multipart(&parts);
        return Ok(Some(Body {
            bytes,
            content_type: format!("multipart/form-data; boundary={boundary}"),
            accept_json: false,
        }));
    }
    Ok(fields.map(|text| Body {
        bytes: text.into_bytes(),
        content_type: "application/json".into(),
        accept_json: true,
    }))
}

/// One multipart part: `name=value`, or `name=@file[;type=MIME][;filename=NAME]` as in curl.
#[derive(Debug, PartialEq, Eq)]
pub struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    bytes: Vec<u8>,
}

impl Part {
    fn parse(spec: &str) -> Result<Part, Failed> {
        let usage = || {
            (
                Exit::Usage,
                format!("-F {spec}: use -F name=value or -F name=@file[;type=mime/type]"),
            )
        };
        let (name, value) = spec.split_once('=').ok_or_else(usage)?;
        if name.is_empty() || name.contains(['"', '\r', '\n']) {
            return Err(usage());
        }
        let Some(file) = value.strip_prefix('@') else {
            return Ok(Part {
                name: name.into(),
                filename: None,
                content_type: None,
                bytes: value.as_bytes().to_vec(),
            });
        };
        let mut pieces = file.split(';');
        let path = pieces.next().unwrap_or_default();
        let mut part = Part {
            name: name.into(),
            filename: Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned()),
            content_type: Some("application/octet-stream".into()),
            bytes: Vec::new(),
        };
        for piece in pieces {
            match piece.split_once('=') {
                Some(("type", t)) if !t.is_empty() && !t.contains(['\r', '\n']) => {
                    part.content_type = Some(t.into())
                }
                Some(("filename", f)) if !f.contains(['"', '\r', '\n']) => {
                    part.filename = Some(f.into())
                }
                _ => return Err(usage()),
            }
        }
        part.bytes = read_arg("-F", &format!("@{path}"))?;
        Ok(part)
    }
}

/// A boundary found in no part, and the encoded body (RFC 7578).
fn multipart(parts: &[Part]) -> (String, Vec<u8>) {
    let mut seed = random_u64();
    let boundary = loop {
        let candidate = format!("------------------------resile{seed:016x}");
        let needle = candidate.as_bytes();
        if !parts
            .iter()
            .any(|p| p.bytes.windows(needle.len()).any(|w| w == needle))
        {
            break candidate;
        }
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    };
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", part.name);
        if let Some(f) = &part.filename {
            disposition.push_str(&format!("; filename=\"{f}\""));
        }
        out.extend_from_slice(disposition.as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(t) = &part.content_type {
            out.extend_from_slice(format!("Content-Type: {t}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&part.bytes);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (boundary, out)
}

/// A random start for the boundary: `RandomState` is keyed from the OS, anew per process.
fn random_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;
    RandomState::new().hash_one(0u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_sent_as_given_and_json_as_written() {
        let text = r#"{"b":2,"a":1,  "n":1.10}"#;
        let body = build(&Sources {
            json: Some(text),
            ..Sources::default()
        })
        .unwrap()
        .unwrap();
        assert_eq!(body.bytes, text.as_bytes());
        assert_eq!(body.content_type, "application/json");
        let body = build(&Sources {
            data: Some("a=1&b=2"),
            ..Sources::default()
        })
        .unwrap()
        .unwrap();
        assert_eq!(body.bytes, b"a=1&b=2");
        assert!(build(&Sources {
            json: Some("{oops"),
            ..Sources::default()
        })
        .is_err());
        assert_eq!(build(&Sources::default()).unwrap(), None);
    }

    #[test]
    fn two_sources_are_refused() {
        let form = vec!["a=b".to_string()];
        let e = build(&Sources {
            data: Some("x"),
            form: &form,
            ..Sources::default()
        })
        .unwrap_err();
        assert_eq!(e.0, Exit::Usage);
        assert!(e.1.contains("--data and --form"), "{}", e.1);
    }

    #[test]
    fn forms_are_urlencoded() {
        let form = vec!["q=a b&c".to_string(), "empty=".to_string()];
        let body = build(&Sources {
            form: &form,
            ..Sources::default()
        })
        .unwrap()
        .unwrap();
        assert_eq!(body.bytes, b"q=a+b%26c&empty=");
    }

    #[test]
    fn multipart_boundaries_never_occur_in_a_part() {
        let part = |bytes: &[u8]| Part {
            name: "f".into(),
            filename: Some("x.bin".into()),
            content_type: Some("application/octet-stream".into()),
            bytes: bytes.to_vec(),
        };
        let (boundary, body) = multipart(&[part(b"abc"), part(&[0, 255, 13, 10])]);
        let text = String::from_utf8_lossy(&body);
        assert_eq!(text.matches(&format!("--{boundary}")).count(), 3);
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
        assert!(Part::parse("novalue").is_err());
        assert!(Part::parse("f=@x;color=red").is_err());
        assert_eq!(Part::parse("note=hi").unwrap().bytes, b"hi");
    }
}
