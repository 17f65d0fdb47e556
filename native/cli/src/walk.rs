//! `--paginate`: a walk over a collection, its items printed as JSON lines. The walk is one
//! logical operation: `--retries` and `--deadline` are the walk's (its retries shared by all
//! its pages, earned back page by page), and a walk that stops prints the `--resume` argument
//! that continues it on stderr.

use futures::StreamExt;
use resile::{PageStyle, WalkPolicy};

use crate::call::{CallArgs, Plan};
use crate::exit::{for_error, Exit};
use crate::output::{Lines, OutFile};
use crate::Failed;

/// Walks the plan's URL in `style` (from `--resume`'s point when given), printing each item.
pub async fn paginate(
    client: &resile::Client,
    args: &CallArgs,
    plan: &Plan,
    style: PageStyle,
) -> Result<Exit, Failed> {
    let mut walk = client
        .paginate(&plan.urls[0], style, args.items.as_deref())
        .policy(policy(args));
    if let Some(max) = args.max_pages {
        walk = walk.max_pages(max);
    }
    if let Some(token) = &args.resume {
        walk = walk.resume(token.as_str());
    }
    // Opened before the first page is asked for, so a path that cannot be written stops the
    // walk before anything is sent.
    let file = args.output.as_deref().map(OutFile::open).transpose()?;
    let mut out = Lines::new(file, args.resume.is_some());
    let to = out.target();
    let stdout = out.is_stdout();
    let cannot_write = |e: std::io::Error| crate::exit::cannot_write(stdout, "the items ", &to, &e);
    let mut items = walk.items::<serde_json::Value>();
    let mut count = 0u64;
    while let Some(item) = items.next().await {
        match item {
            Ok(v) => {
                count += 1;
                out.line(v).map_err(cannot_write)?;
            }
            Err(e) => {
                out.flush().map_err(cannot_write)?;
                if let Some(at) = e.resume() {
                    note!(
                        "resile: to go on from there, run the same command with --resume {}",
                        shell_quote(at.token())
                    );
                }
                return Err(match &e {
                    resile::Error::Walk { cause, .. } => {
                        (for_error(cause), plan.describe(&e, &plan.urls[0]))
                    }
                    other => (
                        for_error(other),
                        format!(
                            "after {count} item(s): {}",
                            plan.describe(&e, &plan.urls[0])
                        ),
                    ),
                });
            }
        }
    }
    out.finish().map_err(cannot_write)?;
    if args.verbose {
        note!("resile: {count} item(s)");
    }
    Ok(Exit::Ok)
}

/// The walk's policy from the flags: `--retries` is the walk's allowance, `--deadline` the
/// whole walk's.
fn policy(args: &CallArgs) -> WalkPolicy {
    let defaults = WalkPolicy::default();
    WalkPolicy {
        retries: args.retries.unwrap_or(defaults.retries),
        deadline_ms: args
            .deadline
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        ..defaults
    }
}

/// `text` as one POSIX shell word.
fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-=:,+%@".contains(&b));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_tokens_are_quoted_for_the_shell() {
        assert_eq!(
            shell_quote("/items?after=80&page_size=20"),
            "'/items?after=80&page_size=20'"
        );
        assert_eq!(shell_quote("?cursor=abc"), "'?cursor=abc'");
        assert_eq!(shell_quote("/items/link"), "/items/link");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
