//! What may be printed, logged or put in an event: URLs without their credentials or secret
//! query values, and header values only for headers that carry no credentials.
//!
//! One place decides, for the client's `Debug` output and `tracing` spans, and for the
//! `resile` command's error lines, `-v` output, JSON lines and reports.
//!
//! ```
//! use resile::redact::{redact_url, REDACTED};
//!
//! let shown = redact_url("https://me:hunter2@api.test/v1/items?page=2&api_key=k123#frag", &[]);
//! assert_eq!(shown, format!("https://{REDACTED}@api.test/v1/items?page=2&api_key={REDACTED}"));
//! // Names of your own secret parameters (ClientConfig::redact_query_params) come on top.
//! let shown = redact_url("https://api.test/cb?code=xyz&state=1", &["code".to_string()]);
//! assert_eq!(shown, format!("https://api.test/cb?code={REDACTED}&state=1"));
//! ```

/// What stands in for a hidden value.
pub const REDACTED: &str = "REDACTED";

/// Query parameters whose values are always hidden (compared ASCII case-insensitively).
pub const SECRET_QUERY_PARAMS: &[&str] = &[
    "api_key",
    "apikey",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "signature",
    "sig",
    "key",
    "password",
    "secret",
    "client_secret",
    // Presigned URLs (AWS SigV4, Google Cloud Storage V4): what grants the access.
    "x-amz-signature",
    "x-amz-security-token",
    "x-goog-signature",
];

/// Whether a header's value must not be printed: `Authorization`, `Cookie`, `Set-Cookie`,
/// `Proxy-Authorization`, and any header whose name contains `token`, `secret`, `key` or
/// `auth` (`X-Api-Key`, `X-Auth-Token`, ...).
///
/// ```
/// use resile::redact::is_secret_header;
/// assert!(is_secret_header("Authorization") && is_secret_header("x-api-key"));
/// assert!(!is_secret_header("content-type"));
/// ```
pub fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "authorization" | "cookie" | "set-cookie" | "proxy-authorization"
    ) || ["token", "secret", "key", "auth"]
        .iter()
        .any(|part| name.contains(part))
}

/// Whether a query parameter's value must not be printed: one of [`SECRET_QUERY_PARAMS`] or
/// of `extra`, ASCII case-insensitively.
pub fn is_secret_param(name: &str, extra: &[String]) -> bool {
    SECRET_QUERY_PARAMS
        .iter()
        .any(|p| p.eq_ignore_ascii_case(name))
        || extra.iter().any(|p| p.eq_ignore_ascii_case(name))
}

/// A header value as it may be printed: [`REDACTED`] for [`is_secret_header`] names.
pub fn header_value<'a>(name: &str, value: &'a str) -> &'a str {
    if is_secret_header(name) {
        REDACTED
    } else {
        value
    }
}

/// A URL (parsed or as typed, valid or not) as it may be printed: user info replaced by
/// [`REDACTED`], the values of secret query parameters ([`is_secret_param`]) replaced by
/// [`REDACTED`], the fragment dropped (it may carry tokens too); the rest as given.
pub fn redact_url(url: &str, extra: &[String]) -> String {
    let (before_fragment, _fragment) = url.split_once('#').unwrap_or((url, ""));
    let (head, query) = match before_fragment.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (before_fragment, None),
    };
    let mut out = String::with_capacity(url.len());
    let authority_start = head.find("://").map_or(0, |i| i + 3);
    let authority_end = head[authority_start..]
        .find('/')
        .map_or(head.len(), |i| authority_start + i);
    let authority = &head[authority_start..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            out.push_str(&head[..authority_start]);
            out.push_str(REDACTED);
            out.push_str(&authority[at..]);
            out.push_str(&head[authority_end..]);
        }
        None => out.push_str(head),
    }
    if let Some(query) = query {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            let (raw_name, value) = match pair.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (pair, None),
            };
            let name: String = form_urlencoded::parse(raw_name.as_bytes())
                .next()
                .map(|(n, _)| n.into_owned())
                .unwrap_or_default();
            match value {
                Some(_) if is_secret_param(&name, extra) => {
                    out.push_str(raw_name);
                    out.push('=');
                    out.push_str(REDACTED);
                }
                _ => out.push_str(pair),
            }
        }
    }
    out
}

/// Free text (an error message, a log line) with every `http://` or `https://` URL in it
/// passed through [`redact_url`]. A URL ends at whitespace or at one of `"'<>()[]{}` and a
/// backtick.
///
/// ```
/// use resile::redact::redact_text;
/// assert_eq!(
///     redact_text("the same next link twice (https://h.test/items?token=t1&page=3)", &[]),
///     "the same next link twice (https://h.test/items?token=REDACTED&page=3)"
/// );
/// ```
pub fn redact_text(text: &str, extra: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let start = ["http://", "https://"]
            .iter()
            .filter_map(|s| find_ascii_ci(rest, s))
            .min();
        let Some(start) = start else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || "\"'<>()[]{}`".contains(c))
            .unwrap_or(tail.len());
        out.push_str(&redact_url(&tail[..end], extra));
        rest = &tail[end..];
    }
}

fn find_ascii_ci(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// A parsed URL without user info, query and fragment: for `Debug` output, which cannot see
/// the client's own list of secret parameters.
pub(crate) fn redacted_url(url: &reqwest::Url) -> String {
    let mut s = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        s.push_str(&format!(":{port}"));
    }
    s.push_str(url.path());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_credentials_and_secret_values_only() {
        let r = REDACTED;
        let extra = vec!["X-Custom".to_string()];
        let table = [
            (
                "http://user:pw@h.test:8080/p?token=abc#f",
                format!("http://{r}@h.test:8080/p?token={r}"),
            ),
            ("http://user@h.test/", format!("http://{r}@h.test/")),
            (
                "https://h.test/a?page=2&API_KEY=x&sig=y&x-custom=z&keep=1",
                format!("https://h.test/a?page=2&API_KEY={r}&sig={r}&x-custom={r}&keep=1"),
            ),
            (
                "https://h.test/a?access%5Ftoken=x&flag&token",
                format!("https://h.test/a?access%5Ftoken={r}&flag&token"),
            ),
            (
                "https://h.test/path@with-at?q=1",
                "https://h.test/path@with-at?q=1".to_string(),
            ),
            ("not a url", "not a url".to_string()),
            (
                "me:pw@host/x?password=p",
                format!("{r}@host/x?password={r}"),
            ),
            ("", String::new()),
            (
                "https://b.s3.test/f?X-Amz-Credential=AK&X-Amz-Security-Token=t&X-Amz-Signature=s",
                format!("https://b.s3.test/f?X-Amz-Credential=AK&X-Amz-Security-Token={r}&X-Amz-Signature={r}"),
            ),
        ];
        for (input, want) in table {
            assert_eq!(redact_url(input, &extra), want, "{input}");
        }
        for name in SECRET_QUERY_PARAMS {
            let shown = redact_url(&format!("http://h/?{name}=s3cr3t"), &[]);
            assert!(!shown.contains("s3cr3t"), "{name}: {shown}");
        }
    }

    #[test]
    fn urls_inside_text_are_redacted() {
        let r = REDACTED;
        let table = [
            ("no url here", "no url here".to_string()),
            (
                "a http://u:p@h/x?sig=1 and HTTPS://h/y?key=2).",
                format!("a http://{r}@h/x?sig={r} and HTTPS://h/y?key={r})."),
            ),
            (
                "`https://h/?session=s` ",
                format!("`https://h/?session={r}` "),
            ),
            ("ends with http://", "ends with http://".to_string()),
        ];
        for (input, want) in table {
            assert_eq!(redact_text(input, &["session".into()]), want, "{input}");
        }
    }

    #[test]
    fn debug_urls_keep_only_origin_and_path() {
        let url = reqwest::Url::parse("http://user:pw@h.test:8080/p?token=abc&x=1#f").unwrap();
        assert_eq!(redacted_url(&url), "http://h.test:8080/p");
        assert_eq!(
            redact_url(url.as_str(), &[]),
            format!("http://{REDACTED}@h.test:8080/p?token={REDACTED}&x=1")
        );
    }

    #[test]
    fn credential_headers_are_hidden() {
        for name in [
            "Authorization",
            "cookie",
            "Set-Cookie",
            "Proxy-Authorization",
            "X-Api-Key",
            "x-auth-token",
            "X-Client-Secret",
            "X-Amz-Security-Token",
        ] {
            assert!(is_secret_header(name), "{name}");
            assert_eq!(header_value(name, "v"), REDACTED);
        }
        for name in ["Content-Type", "Accept", "X-Request-ID", "User-Agent"] {
            assert!(!is_secret_header(name), "{name}");
            assert_eq!(header_value(name, "v"), "v");
        }
    }
}
