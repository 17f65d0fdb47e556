//! `Link` (RFC 8288 §3): typed links to other resources, used here to follow pagination.
//!
//! ```text
//! Link       = #link-value
//! link-value = "<" URI-Reference ">" *( OWS ";" OWS link-param )
//! link-param = token BWS [ "=" BWS ( token / quoted-string ) ]
//! ```

use core::iter::FusedIterator;

use super::{find_unquoted, split_unquoted, trim_ows, unquote};

/// One link of a `Link` header: its target and its raw parameters, borrowed from the value.
///
/// ```
/// use resile_core::headers::parse_links;
///
/// let link = parse_links(r#"</TheBook/chapter4>; rel="next"; title="next chapter""#)
///     .next()
///     .unwrap();
/// assert_eq!(link.target, "/TheBook/chapter4");
/// assert!(link.has_rel("next"));
/// assert_eq!(link.param("title"), Some("next chapter"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link<'a> {
    /// The URI-reference between `<` and `>`, whitespace trimmed, not resolved against anything.
    pub target: &'a str,
    /// Everything after `>` up to the comma that ends the link.
    params: &'a str,
}

impl<'a> Link<'a> {
    /// Whether the link's `rel` lists `rel` among its space-separated relation types,
    /// compared case-insensitively. Only the first `rel` parameter counts (RFC 8288 §3.3).
    ///
    /// ```
    /// use resile_core::headers::parse_links;
    ///
    /// let link = parse_links(r#"<https://example.org/?page=9>; REL="Next Last""#).next().unwrap();
    /// assert!(link.has_rel("next"));
    /// assert!(link.has_rel("last"));
    /// assert!(!link.has_rel("prev"));
    /// ```
    pub fn has_rel(&self, rel: &str) -> bool {
        !rel.is_empty()
            && self
                .param("rel")
                .is_some_and(|rels| rels.split([' ', '\t']).any(|r| r.eq_ignore_ascii_case(rel)))
    }

    /// The value of the first parameter called `name` (case-insensitive).
    ///
    /// A quoted value comes back without its quotes; if it contains `\` escapes they are left
    /// in place (undoing them would need an allocation). A parameter without a value, such as
    /// `; crossorigin`, gives `Some("")`.
    ///
    /// ```
    /// use resile_core::headers::parse_links;
    ///
    /// let link = parse_links(r#"</a>; rel=next; Title="say \"hi\""; crossorigin"#)
    ///     .next()
    ///     .unwrap();
    /// assert_eq!(link.param("rel"), Some("next"));
    /// assert_eq!(link.param("title"), Some(r#"say \"hi\""#));
    /// assert_eq!(link.param("crossorigin"), Some(""));
    /// assert_eq!(link.param("type"), None);
    /// ```
    pub fn param(&self, name: &str) -> Option<&'a str> {
        if name.is_empty() {
            return None;
        }
        // The text before the first `;` should be empty; anything there is junk and ignored.
        split_unquoted(self.params, b';').skip(1).find_map(|piece| {
            let piece = trim_ows(piece);
            let (key, value) = match piece.split_once('=') {
                Some((k, v)) => (trim_ows(k), unquote(trim_ows(v))),
                // An empty slice of the value itself, so every answer borrows from it.
                None => (piece, piece.get(piece.len()..).unwrap_or_default()),
            };
            key.eq_ignore_ascii_case(name).then_some(value)
        })
    }
}

/// An iterator over the links of one `Link` header value, made by [`parse_links`].
///
/// ```
/// use resile_core::headers::parse_links;
///
/// let targets: Vec<&str> = parse_links("</a>; rel=prev, </b>; rel=next")
///     .map(|link| link.target)
///     .collect();
/// assert_eq!(targets, ["/a", "/b"]);
/// ```
#[derive(Debug, Clone)]
pub struct Links<'a> {
    rest: &'a str,
    /// See [`find_unquoted`]: once a quote was found unclosed, later quotes are ordinary.
    quotes_dead: bool,
}

/// Iterates over the links in a `Link` header value, skipping malformed entries.
///
/// The parser is zero-copy and forgiving, in the spirit of RFC 8288 Appendix B:
///
/// - commas split links only outside `<…>` and outside quoted strings;
/// - whitespace is allowed around every delimiter, and around a target inside `<…>`;
/// - parameter names are case-insensitive and the first occurrence of a parameter wins;
/// - an entry that does not start with `<`, or whose `<` is never closed before the next `<`,
///   is skipped without taking the following links with it;
/// - a `"` that is never closed counts as an ordinary character.
///
/// Several `Link` field lines must be joined with `", "` before parsing (see
/// [`Headers`](crate::headers::Headers)).
///
/// ```
/// use resile_core::headers::parse_links;
///
/// let value = r#"<https://example.org/>; rel="start", garbage, <https://example.org/index>; rel="index""#;
/// let rels: Vec<bool> = parse_links(value).map(|l| l.has_rel("index")).collect();
/// assert_eq!(rels, [false, true]);
/// ```
pub fn parse_links(value: &str) -> Links<'_> {
    Links {
        rest: value,
        quotes_dead: false,
    }
}

impl<'a> Iterator for Links<'a> {
    type Item = Link<'a>;

    fn next(&mut self) -> Option<Link<'a>> {
        loop {
            let s = self.rest.trim_start_matches([' ', '\t', ',']);
            let Some(body) = s.strip_prefix('<') else {
                if s.is_empty() {
                    self.rest = s;
                    return None;
                }
                // Not a link: skip this entry up to the next comma that ends it.
                self.rest = match find_unquoted(s, b',', &mut self.quotes_dead) {
                    Some(i) => s.get(i + 1..).unwrap_or(""),
                    None => "",
                };
                continue;
            };
            let Some(close) = body.find(['<', '>']) else {
                // No `>` anywhere: nothing after this can be a link either.
                self.rest = "";
                return None;
            };
            let (target, after) = body.split_at(close);
            if let Some(reopened) = after.strip_prefix('<') {
                // `<a, <b>`: the first `<` was never closed; start again at the second.
                self.rest = body.get(close..).unwrap_or(reopened);
                continue;
            }
            let after = after.get(1..).unwrap_or("");
            let end = find_unquoted(after, b',', &mut self.quotes_dead).unwrap_or(after.len());
            let (params, rest) = after.split_at(end);
            self.rest = rest;
            return Some(Link {
                target: trim_ows(target),
                params,
            });
        }
    }
}

impl FusedIterator for Links<'_> {}

/// The target of the first link whose `rel` contains `rel` (case-insensitive), e.g. `"next"`.
///
/// ```
/// use resile_core::headers::find_rel;
///
/// let github = r#"<https://api.github.com/repositories/1300192/issues?page=2>; rel="prev", <https://api.github.com/repositories/1300192/issues?page=4>; rel="next""#;
/// assert_eq!(
///     find_rel(github, "next"),
///     Some("https://api.github.com/repositories/1300192/issues?page=4")
/// );
/// assert_eq!(find_rel(github, "last"), None);
/// ```
pub fn find_rel<'a>(value: &'a str, rel: &str) -> Option<&'a str> {
    parse_links(value)
        .find(|link| link.has_rel(rel))
        .map(|link| link.target)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// `(target, rel param)` for every link in `value`.
    fn summary(value: &str) -> Vec<(&str, Option<&str>)> {
        parse_links(value)
            .map(|l| (l.target, l.param("rel")))
            .collect()
    }

    #[test]
    fn rfc_8288_examples() {
        let v =
            r#"<http://example.com/TheBook/chapter2>; rel="previous"; title="previous chapter""#;
        let link = parse_links(v).next().unwrap();
        assert_eq!(link.target, "http://example.com/TheBook/chapter2");
        assert!(link.has_rel("previous"));
        assert_eq!(link.param("title"), Some("previous chapter"));

        let v = r#"</>; rel="http://example.net/foo""#;
        assert_eq!(find_rel(v, "http://example.net/foo"), Some("/"));

        let v = r##"</terms>; rel="copyright"; anchor="#foo""##;
        let link = parse_links(v).next().unwrap();
        assert_eq!(link.param("anchor"), Some("#foo"));
        assert!(link.has_rel("copyright"));

        let v = "</TheBook/chapter2>; rel=\"previous\"; title*=UTF-8'de'letztes%20Kapitel, \
                 </TheBook/chapter4>; rel=\"next\"; title*=UTF-8'de'n%c3%a4chstes%20Kapitel";
        let links: Vec<Link> = parse_links(v).collect();
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].param("title*"), Some("UTF-8'de'letztes%20Kapitel"));
        assert_eq!(links[0].param("title"), None);
        assert_eq!(find_rel(v, "next"), Some("/TheBook/chapter4"));
        assert_eq!(find_rel(v, "previous"), Some("/TheBook/chapter2"));

        let v = r#"<http://example.org/>; rel="start http://example.net/relation/other""#;
        assert_eq!(find_rel(v, "start"), Some("http://example.org/"));
        assert_eq!(
            find_rel(v, "http://example.net/relation/other"),
            Some("http://example.org/")
        );

        let v = r#"<https://example.org/>; rel="start", <https://example.org/index>; rel="index""#;
        assert_eq!(find_rel(v, "index"), Some("https://example.org/index"));
    }

    #[test]
    fn github_pagination() {
        let v = "<https://api.github.com/repositories/1300192/issues?page=2>; rel=\"prev\", \
                 <https://api.github.com/repositories/1300192/issues?page=4>; rel=\"next\", \
                 <https://api.github.com/repositories/1300192/issues?page=515>; rel=\"last\", \
                 <https://api.github.com/repositories/1300192/issues?page=1>; rel=\"first\"";
        let table = [
            (
                "prev",
                Some("https://api.github.com/repositories/1300192/issues?page=2"),
            ),
            (
                "next",
                Some("https://api.github.com/repositories/1300192/issues?page=4"),
            ),
            (
                "last",
                Some("https://api.github.com/repositories/1300192/issues?page=515"),
            ),
            (
                "first",
                Some("https://api.github.com/repositories/1300192/issues?page=1"),
            ),
            (
                "NEXT",
                Some("https://api.github.com/repositories/1300192/issues?page=4"),
            ),
            ("self", None),
            ("", None),
        ];
        for (rel, want) in table {
            assert_eq!(find_rel(v, rel), want, "{rel:?}");
        }
        // GitHub's cursor-style links carry commas-free but `&`-rich query strings.
        let v =
            r#"<https://api.github.com/search/code?q=addClass+user%3Amozilla&page=15>; rel="next""#;
        assert_eq!(
            find_rel(v, "next"),
            Some("https://api.github.com/search/code?q=addClass+user%3Amozilla&page=15")
        );
    }

    #[test]
    fn find_rel_table() {
        let table: &[(&str, Option<&str>)] = &[
            ("", None),
            ("<>; rel=next", Some("")),
            ("</a>; rel=next", Some("/a")),
            ("</a>;rel=next", Some("/a")),
            ("</a> ; rel = next", Some("/a")),
            ("</a>\t;\trel\t=\t\"next\"\t", Some("/a")),
            ("< /a >; rel=next", Some("/a")),
            ("</a>; REL=NEXT", Some("/a")),
            ("</a>; Rel=\"Next\"", Some("/a")),
            ("</a>; rel=\"next last\"", Some("/a")),
            ("</a>; rel=\"  last   next \"", Some("/a")),
            ("</a>; rel=\"last\tnext\"", Some("/a")),
            ("</a>; rel=\"nextpage\"", None),
            ("</a>; rel=\"next-ish\"", None),
            ("</a>; rel=\"prev\"; rel=\"next\"", None), // first rel wins
            ("</a>; rel=prev, </b>; rel=next", Some("/b")),
            ("</a>; rel=next, </b>; rel=next", Some("/a")),
            ("</a,b>; rel=next", Some("/a,b")),
            ("</a;b>; rel=next", Some("/a;b")),
            ("</a?x=\"1\">; rel=next", Some("/a?x=\"1\"")),
            (
                "</a>; title=\"x, y; rel=next\"; rel=prev, </b>; rel=next",
                Some("/b"),
            ),
            ("</a>; title=\"x, y\", </b>; rel=next", Some("/b")),
            ("</a>; title=\"a \\\" b, c\", </b>; rel=next", Some("/b")),
            ("</a>; anchor=\"<x>\"; rel=next", Some("/a")),
            ("</a>; rel=next;", Some("/a")),
            ("</a>;; rel=next", Some("/a")),
            ("</a>; rel", None),
            ("</a>; rel=", None),
            ("</a>; rel=\"\"", None),
            ("</a> rel=next", None), // no `;`: no parameters
            ("rel=next", None),
            ("/a; rel=next", None),
            ("</a; rel=next", None),
            (",,, </a>; rel=next ,,,", Some("/a")),
            ("\"junk, </b>; rel=next", Some("/b")),
            ("junk, </b>; rel=next", Some("/b")),
            ("junk \"with, comma\", </b>; rel=next", Some("/b")),
            ("</a; rel=prev, </b>; rel=next", Some("/b")),
            ("<<</b>; rel=next", Some("/b")),
            ("</a>; rel=\"next, </b>; rel=next", Some("/a")),
            ("</a>; rel=\"prev, </b>; rel=next", Some("/b")),
            ("</ä>; rel=\"nächste next\"", Some("/ä")),
            ("</a>; rel=next>; rel=prev", None), // rel is `next>`
        ];
        for &(input, want) in table {
            assert_eq!(find_rel(input, "next"), want, "{input:?}");
        }
    }

    #[test]
    fn entries_and_recovery() {
        assert_eq!(summary(""), []);
        assert_eq!(summary(" , , "), []);
        assert_eq!(summary("</a>"), [("/a", None)]);
        assert_eq!(summary("</a>, </b>"), [("/a", None), ("/b", None)]);
        assert_eq!(
            summary("</a>; rel=x junk, garbage; rel=y, </c>; rel=z"),
            [("/a", Some("x junk")), ("/c", Some("z"))]
        );
        assert_eq!(summary("</a"), []);
        assert_eq!(summary("</a>; rel=\"x"), [("/a", Some("x"))]);
        // An unclosed quote in one link does not hide the next...
        assert_eq!(
            summary("</a>; rel=\"x, </b>; rel=y"),
            [("/a", Some("x")), ("/b", Some("y"))]
        );
        // ...unless a later quote closes it: then the quoted string runs on, as it must.
        assert_eq!(
            summary("</a>; rel=\"x, </b>; rel=\"y\""),
            [("/a", Some("x, </b>; rel="))]
        );
    }

    #[test]
    fn params() {
        let link = parse_links(r#"</a>; a=1; B="2"; c; a=3; d = " spaced " ; e="x\"y""#)
            .next()
            .unwrap();
        let table: &[(&str, Option<&str>)] = &[
            ("a", Some("1")), // first occurrence wins
            ("A", Some("1")),
            ("b", Some("2")),
            ("c", Some("")),
            ("d", Some(" spaced ")),
            ("e", Some("x\\\"y")),
            ("f", None),
            ("", None),
        ];
        for &(name, want) in table {
            assert_eq!(link.param(name), want, "{name:?}");
        }
        assert!(!link.has_rel(""));
    }

    #[test]
    fn iterator_is_fused() {
        let mut links = parse_links("</a>");
        assert!(links.next().is_some());
        assert!(links.next().is_none());
        assert!(links.next().is_none());
    }
}
