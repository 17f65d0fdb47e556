//! For tests that keep a README snippet honest: the snippet under a heading must be a part of
//! the code between `// README: begin` and `// README: end` in the file that runs it.

/// Panics unless the first ```` ```rust,ignore ```` block under `heading` in `readme` is a part
/// of the marked region of `source` (`what` names the source in the message).
pub fn assert_snippet_is_code(readme: &str, heading: &str, source: &str, what: &str) {
    let snippet = between(readme, heading, "```rust,ignore\n", "```");
    let code = between(source, "", "// README: begin\n", "// README: end");
    assert!(!snippet.trim().is_empty(), "no snippet under {heading}");
    assert!(
        code.contains(snippet),
        "the README's snippet under {heading} is not a part of {what}:\n{snippet}"
    );
}

/// The text after `start` (itself after `heading`) and before the next `end`.
fn between<'a>(text: &'a str, heading: &str, start: &str, end: &str) -> &'a str {
    let after_heading = &text[text.find(heading).expect("heading") + heading.len()..];
    let from = &after_heading[after_heading.find(start).expect("start") + start.len()..];
    &from[..from.find(end).expect("end")]
}
