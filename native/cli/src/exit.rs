//! Exit codes, documented in `--help`.

use std::process::ExitCode;

/// What the process tells its caller.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// The server's final answer was an HTTP error status (4xx, 5xx).
    HttpError = 1,
    /// Usage or bad input: an unknown flag, an invalid URL, malformed JSON data.
    Usage = 2,
    /// The engine gave up: retries exhausted, or repeating the request was unsafe.
    GaveUp = 3,
    /// The deadline passed.
    Timeout = 4,
    /// The host's circuit breaker is open.
    BreakerOpen = 5,
    /// The configuration is invalid.
    Config = 6,
    /// No access token could be had, or the server rejected it.
    Auth = 7,
    /// Anything else: transport errors, too many redirects, undecodable bodies, I/O.
    Other = 8,
    /// Stopped by Ctrl-C (SIGINT): 128 + 2, as a shell reports it.
    Interrupted = 130,
    /// Stopped by SIGTERM: 128 + 15.
    Terminated = 143,
    /// Stopped because the reader of stdout closed it (`| head -1`): 128 + 13, what a shell
    /// reports for a process SIGPIPE stopped, as `yes | head -1` does. Nothing is printed.
    PipeClosed = 141,
}

/// The table printed after `--help`.
pub const HELP: &str = "Exit codes:
  0  success
  1  the final answer was an HTTP error status
  2  usage or bad input (flags, URL, JSON data, files)
  3  gave up (retries exhausted, or a retry would have been unsafe)
  4  timed out (deadline)
  5  circuit breaker open for the host
  6  invalid configuration
  7  authentication failed (token fetch or rejected token)
  8  other errors (transport, too many redirects, decoding, I/O)
  130, 143  stopped by Ctrl-C (SIGINT) or SIGTERM: calls in flight cancelled, one line says what
  141  stdout closed by its reader (`| head -1`): calls in flight cancelled, no more started,
       nothing printed (128 + SIGPIPE, as a shell reports `yes | head -1`)
With several calls (--urls, --repeat), the code is that of the first failed call in input order.";

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// Prints one line (none for an empty message: [`cannot_write`]'s closed stdout) and returns
/// the code.
pub fn fail(code: Exit, message: String) -> ExitCode {
    if !message.is_empty() {
        note!("resile: {}", one_line(&message));
    }
    code.into()
}

/// The failure a run stops with when it cannot write `what` to `to`: a stdout its reader
/// closed (`| head -1`: the reader has seen enough) stops it quietly with
/// [`Exit::PipeClosed`]; anything else is an error that names the target.
pub fn cannot_write(stdout: bool, what: &str, to: &str, e: &std::io::Error) -> crate::Failed {
    if stdout && e.kind() == std::io::ErrorKind::BrokenPipe {
        (Exit::PipeClosed, String::new())
    } else {
        (Exit::Other, format!("cannot write {what}to {to}: {e}"))
    }
}

/// `text` as one line whose control characters are shown escaped (`\n`, `\u{1b}`), not obeyed:
/// a message may quote the server (a body that did not decode), and a server's newlines or
/// escape sequences are not the terminal's business.
fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// The exit code for a client error.
pub fn for_error(e: &resile::Error) -> Exit {
    use resile::Error as E;
    match e {
        E::Timeout { .. } => Exit::Timeout,
        E::Unavailable { .. } => Exit::BreakerOpen,
        E::RateLimited { .. } | E::RetriesExhausted { .. } | E::NotRetried { .. } => Exit::GaveUp,
        E::Status { .. } => Exit::HttpError,
        E::Auth { .. } => Exit::Auth,
        E::Config { .. } | E::ConfigParse { .. } => Exit::Config,
        E::InvalidUrl { .. } | E::InvalidRequest { .. } => Exit::Usage,
        _ => Exit::Other,
    }
}

/// A stable name for an error, for JSON lines and reports.
pub fn error_kind(e: &resile::Error) -> &'static str {
    use resile::Error as E;
    match e {
        E::Timeout { .. } => "timeout",
        E::Unavailable { .. } => "unavailable",
        E::RateLimited { .. } => "rate_limited",
        E::RetriesExhausted { .. } => "retries_exhausted",
        E::NotRetried { .. } => "not_retried",
        E::Status { .. } => "http_status",
        E::Decode { .. } => "decode",
        E::Auth { .. } => "auth",
        E::Config { .. } | E::ConfigParse { .. } => "config",
        E::Transport { .. } => "transport",
        E::BodyTooLarge { .. } => "body_too_large",
        E::TooManyRedirects { .. } => "too_many_redirects",
        E::InvalidUrl { .. } => "invalid_url",
        E::InvalidRequest { .. } => "invalid_request",
        E::Pagination(_) => "pagination",
        E::Cancelled => "cancelled",
        E::Overloaded { .. } => "overloaded",
        E::Resume { .. } => "resume",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_one_line_and_a_servers_escape_sequences_are_shown_not_obeyed() {
        assert_eq!(one_line("plain: é"), "plain: é");
        assert_eq!(
            one_line("body starts with: not json\n\u{1b}[31mred\r"),
            "body starts with: not json\\n\\u{1b}[31mred\\r"
        );
    }
}
