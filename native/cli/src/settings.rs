//! The client's settings: a config file (TOML or JSON, the same fields as
//! `resile::ClientConfig`), then the command line on top.

use std::path::Path;

use resile::ClientConfig;
use resile_core::config::LimitConfig;
use resile_core::Jitter;

use crate::call::CallArgs;
use crate::exit::Exit;
use crate::Failed;

/// Reads a config file: `.json` as JSON, anything else as TOML. A value of the wrong type names
/// its full path (`engine.backoff.factor`) and where it is in the file.
pub fn load_file(path: &Path) -> Result<ClientConfig, Failed> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| (Exit::Usage, format!("{shown}: {e}")))?;
    let config = if path.extension().is_some_and(|e| e == "json") {
        ClientConfig::from_json(&text).map_err(|e| {
            let e = placed(&text, e, |path| json_start(&text, path));
            (Exit::Config, format!("{shown}: {e}"))
        })?
    } else {
        let mut config = from_toml(&text).map_err(|e| (Exit::Config, format!("{shown}: {e}")))?;
        if config.engine.preset.is_some() {
            // The preset under the fields written next to it: the section as written.
            let table: toml::Table =
                toml::from_str(&text).map_err(|e| (Exit::Config, format!("{shown}: {e}")))?;
            let engine = table
                .get("engine")
                .map(serde_json::to_value)
                .transpose()
                .map_err(|e| (Exit::Config, format!("{shown}: {e}")))?
                .unwrap_or_default();
            config
                .set_engine_from_value(engine)
                .map_err(|e| (Exit::Config, format!("{shown}: {e}")))?;
        }
        config.validate().map_err(|e| {
            // Parsed again for its spans only when there is a refusal to place.
            let doc = toml_edit::ImDocument::parse(text.as_str()).ok();
            let e = placed(&text, e, |path| toml_start(doc.as_ref()?, path));
            (Exit::Config, format!("{shown}: {e}"))
        })?;
        config
    };
    Ok(config)
}

/// TOML into a config, with the path and position of a bad value.
fn from_toml(text: &str) -> Result<ClientConfig, resile::Error> {
    serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
        let path = e.path().to_string();
        let field = (path != "." && !path.is_empty()).then_some(path);
        let inner = e.into_inner();
        let (line, column) = inner
            .span()
            .map(|span| line_column(text, span.start))
            .unwrap_or((1, 1));
        resile::Error::ConfigParse {
            field,
            line,
            column,
            message: inner.message().to_string(),
        }
    })
}

/// A value the file parsed but the config refuses (`max_attempts = 0`), named by its full
/// path and placed where the file wrote it (`start_of` a path: its byte offset), as a type
/// error is. The engine names its fields from inside the `engine` section; a field the file
/// does not write is left unplaced.
fn placed(text: &str, e: resile::Error, start_of: impl Fn(&str) -> Option<usize>) -> resile::Error {
    let resile::Error::Config {
        field: Some(field),
        message,
    } = &e
    else {
        return e;
    };
    for path in [format!("engine.{field}"), field.clone()] {
        if let Some(offset) = start_of(&path) {
            let (line, column) = line_column(text, offset);
            return resile::Error::ConfigParse {
                field: Some(path),
                line,
                column,
                message: message.clone(),
            };
        }
    }
    e
}

/// Where the TOML document writes the value at `path` (`engine.retry.max_attempts`).
fn toml_start(doc: &toml_edit::ImDocument<&str>, path: &str) -> Option<usize> {
    path.split('.')
        .try_fold(doc.as_item(), |item, key| item.get(key))
        .and_then(toml_edit::Item::span)
        .map(|span| span.start)
}

/// Where the JSON text writes the value at `path`: each level's raw value is a slice of
/// `text`, so its offset is where it starts.
fn json_start(text: &str, path: &str) -> Option<usize> {
    let mut raw = text;
    for key in path.split('.') {
        let object: std::collections::BTreeMap<String, &serde_json::value::RawValue> =
            serde_json::from_str(raw).ok()?;
        raw = object.get(key)?.get();
    }
    Some(raw.as_ptr() as usize - text.as_ptr() as usize)
}

/// The line and column (from 1, in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn jitter(name: &str) -> Result<Jitter, Failed> {
    match name {
        "none" => Ok(Jitter::None),
        "full" => Ok(Jitter::Full),
        "equal" => Ok(Jitter::Equal),
        "decorrelated" => Ok(Jitter::Decorrelated),
        other => Err((
            Exit::Usage,
            format!("--jitter {other}: use none, full, equal or decorrelated"),
        )),
    }
}

/// The config file (if any) with the flags applied; `headers` are the `-H` flags and the
/// header items.
pub fn client_config(
    args: &CallArgs,
    headers: &[(String, String)],
) -> Result<ClientConfig, Failed> {
    let mut c = match &args.config {
        Some(path) => load_file(path)?,
        None => ClientConfig::default(),
    };
    let e = &mut c.engine;
    if let Some(n) = args.retries {
        e.retry.max_attempts = n.saturating_add(1);
    }
    for status in &args.retry_on {
        if !e.retry.retry_statuses.contains(status) {
            e.retry.retry_statuses.push(*status);
        }
    }
    if let Some(backoff) = args.backoff {
        e.backoff.base_ms = backoff.base.as_millis() as u64;
        if let Some(cap) = backoff.cap {
            e.backoff.cap_ms = cap.as_millis() as u64;
        }
        e.backoff.cap_ms = e.backoff.cap_ms.max(e.backoff.base_ms);
    }
    if let Some(j) = &args.jitter {
        e.backoff.jitter = jitter(j)?;
    }
    if let Some(d) = args.attempt_timeout {
        e.retry.attempt_timeout_ms = Some(d.as_millis() as u64);
    }
    if let Some(d) = args.deadline {
        e.retry.deadline_ms = Some(d.as_millis() as u64);
    }
    if let Some(rate) = args.rate {
        e.limit = Some(LimitConfig {
            per_second: rate,
            burst: args.burst.unwrap_or(1),
        });
    }
    if args.adaptive_rate {
        e.adaptive_rate.enabled = true;
    }
    if let Some(d) = args.connect_timeout {
        // Refused by `validate` at 0, as --attempt-timeout 0s is, not made 1 ms.
        c.connect_timeout_ms = Some(d.as_millis() as u64);
    }
    for path in &args.cacert {
        let pem = std::fs::read(path)
            .map_err(|e| (Exit::Usage, format!("--cacert {}: {e}", path.display())))?;
        c.root_certificates_pem
            .push(String::from_utf8_lossy(&pem).into_owned());
    }
    if let Some(n) = args.max_filesize {
        c.max_response_bytes = n;
        c.max_buffered_bytes = c.max_buffered_bytes.max(n);
    }
    if args.http2_prior_knowledge {
        c.http2_prior_knowledge = true;
    }
    if args.no_follow {
        c.max_redirects = 0;
    } else if let Some(n) = args.max_redirects {
        c.max_redirects = n;
    }
    if let Some(n) = args.concurrency {
        // Checked by `validate` below, as the file's own value is: 0 is refused, not made 1.
        c.max_in_flight = n;
    }
    if let Some(seed) = args.seed {
        c.seed = Some(seed);
    }
    if let Some(url) = &args.redis {
        c.redis_url = Some(url.clone());
        let fleet = c.engine.fleet.get_or_insert_with(Default::default);
        if let Some(n) = args.fleet_size {
            fleet.size = n;
        }
    }
    for (name, value) in headers {
        c.default_headers.insert(name.clone(), value.clone());
    }
    c.validate().map_err(|e| match flag_behind(args, &e) {
        Some(flag) => (Exit::Usage, format!("{flag}: {}", refused(&e))),
        None => (Exit::Config, e.to_string()),
    })?;
    Ok(c)
}

/// The flag that set the field a validation refused, when one did: the file's own values were
/// checked before the flags went on top, so the flag is what to change.
fn flag_behind(args: &CallArgs, e: &resile::Error) -> Option<&'static str> {
    let resile::Error::Config {
        field: Some(field), ..
    } = e
    else {
        return None;
    };
    let (flag, given) = match field.as_str() {
        "retry.max_attempts" => ("--retries", args.retries.is_some()),
        "retry.attempt_timeout_ms" => ("--attempt-timeout", args.attempt_timeout.is_some()),
        "retry.deadline_ms" => ("--deadline", args.deadline.is_some()),
        "limit.per_second" => ("--rate", args.rate.is_some()),
        "limit.burst" => ("--burst", args.burst.is_some()),
        f if f.starts_with("backoff.") => ("--backoff", args.backoff.is_some()),
        "connect_timeout_ms" => ("--connect-timeout", args.connect_timeout.is_some()),
        "max_redirects" => ("--max-redirects", args.max_redirects.is_some()),
        "max_in_flight" => ("--concurrency", args.concurrency.is_some()),
        "root_certificates_pem" => ("--cacert", !args.cacert.is_empty()),
        "max_response_bytes" => ("--max-filesize", args.max_filesize.is_some()),
        _ => return None,
    };
    given.then_some(flag)
}

/// What a validation said, without the field's name.
fn refused(e: &resile::Error) -> &str {
    match e {
        resile::Error::Config { message, .. } => message,
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_type_errors_name_the_path_and_the_position() {
        let cases = [
            ("max_in_flight = -1\n", "max_in_flight", (1, 17)),
            ("\nmax_in_flight = \"lots\"\n", "max_in_flight", (2, 17)),
            (
                "[engine.backoff]\nbase_ms = 10\njitter = \"wild\"\n",
                "engine.backoff.jitter",
                (3, 10),
            ),
            (
                "[engine.backoff]\nfactor = \"two\"\n",
                "engine.backoff.factor",
                (2, 10),
            ),
        ];
        for (text, path, at) in cases {
            match from_toml(text) {
                Err(resile::Error::ConfigParse {
                    field,
                    line,
                    column,
                    ..
                }) => {
                    assert_eq!(field.as_deref(), Some(path), "{text}");
                    assert_eq!((line, column), at, "{text}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        assert_eq!(line_column("ab\ncé\nx", 6), (2, 3));
    }

    /// `placed` named the refused value's full `path` and put it `at` (line, column) in `text`.
    fn assert_placed(text: &str, placed: resile::Error, path: &str, at: (usize, usize)) {
        match placed {
            resile::Error::ConfigParse {
                field,
                line,
                column,
                message,
            } => {
                assert_eq!(field.as_deref(), Some(path), "{text}");
                assert_eq!((line, column), at, "{text}");
                assert!(
                    message.starts_with("is ") || message.contains("ftp"),
                    "{message}"
                );
            }
            other => panic!("{text}: {other:?}"),
        }
    }

    fn in_toml(text: &str, path: &str) -> Option<usize> {
        toml_start(&toml_edit::ImDocument::parse(text).ok()?, path)
    }

    #[test]
    fn a_refused_json_value_names_its_full_path_and_its_place_in_the_file() {
        let cases = [
            (
                "{\"base_url\": \"http://127.0.0.1/\",\n \"engine\": {\"retry\": {\"max_attempts\": 0}}}",
                "engine.retry.max_attempts",
                (2, 39),
            ),
            (
                "{\"engine\": {\"limit\": {\"burst\": 1, \"per_second\": 1e308}}}",
                "engine.limit.per_second",
                (1, 49),
            ),
            ("{\n  \"base_url\": \"ftp://x/\"\n}", "base_url", (2, 15)),
        ];
        for (text, path, at) in cases {
            let refused = resile::ClientConfig::from_json(text).unwrap_err();
            assert_placed(
                text,
                placed(text, refused, |p| json_start(text, p)),
                path,
                at,
            );
        }
        // A field the file does not write: named, not placed.
        let text = "{\"engine\": {\"backoff\": {\"base_ms\": 999999999}}}";
        let refused = resile::ClientConfig::from_json(text).unwrap_err();
        assert!(
            matches!(
                placed(text, refused, |p| json_start(text, p)),
                resile::Error::Config { field: Some(_), .. }
            ),
            "{text}"
        );
    }

    #[test]
    fn a_refused_value_names_its_full_path_and_its_place_in_the_file() {
        let cases = [
            (
                "base_url = \"http://127.0.0.1/\"\n\n[engine.retry]\nmax_attempts = 0\n",
                "engine.retry.max_attempts",
                (4, 16),
            ),
            (
                "engine.limit = { per_second = -5.0, burst = 1 }\n",
                "engine.limit.per_second",
                (1, 31),
            ),
            ("base_url = \"ftp://x/\"\n", "base_url", (1, 12)),
        ];
        for (text, path, at) in cases {
            let refused = from_toml(text).unwrap().validate().unwrap_err();
            assert_placed(text, placed(text, refused, |p| in_toml(text, p)), path, at);
        }
        // Refused for a field the file does not write (the default cap under a larger base):
        // named, not placed.
        let text = "[engine.backoff]\nbase_ms = 999999999\n";
        let refused = from_toml(text).unwrap().validate().unwrap_err();
        assert!(
            matches!(
                placed(text, refused, |p| in_toml(text, p)),
                resile::Error::Config { field: Some(_), .. }
            ),
            "{text}"
        );
        assert!(from_toml("max_redirects = 3").is_ok());
    }
}
