//! Where a response goes: the body byte for byte to stdout or `-o FILE`, after the status
//! line and headers with `-i` (as curl does); what was sent and received, redacted, on stderr
//! with `-v`.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use resile::redact::{self, redact_url};
use resile::Response;

/// The status line and headers as they came, `CRLF`-terminated, then an empty line.
pub fn head(response: &Response) -> Vec<u8> {
    let mut out = format!("{:?} {}\r\n", response.version(), response.status()).into_bytes();
    for (name, value) in response.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Writes the head (with `-i`) and the body, exactly, to `path` or stdout.
pub fn write_response(response: &Response, include: bool, path: Option<&Path>) -> io::Result<()> {
    let body = response.bytes();
    let mut sink: Box<dyn Write> = match path {
        Some(p) => Box::new(File::create(p)?),
        None => Box::new(io::stdout().lock()),
    };
    if include {
        sink.write_all(&head(response))?;
    }
    sink.write_all(&body)?;
    sink.flush()
}

/// `-v`: the request line and the headers the command sets, secrets hidden.
pub fn show_request(method: &str, url: &str, headers: &[(String, String)], extra: &[String]) {
    eprintln!("> {method} {}", redact_url(url, extra));
    for (name, value) in headers {
        eprintln!("> {name}: {}", redact::header_value(name, value));
    }
}

/// `-v`: the response head, secrets hidden.
pub fn show_response(response: &Response) {
    eprintln!("< {:?} {}", response.version(), response.status());
    for (name, value) in response.headers() {
        let text = String::from_utf8_lossy(value.as_bytes());
        eprintln!("< {name}: {}", redact::header_value(name.as_str(), &text));
    }
    eprintln!(
        "* {} attempt(s), request id {}",
        response.attempts(),
        response.request_id()
    );
}
