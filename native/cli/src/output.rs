//! Where a response goes: the body byte for byte to stdout or `-o FILE`, after the status
//! line and headers with `-i` (as curl does); what was sent and received, redacted, on stderr
//! with `-v`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use resile::redact::{self, redact_url};
use resile::Response;

use crate::exit::Exit;
use crate::Failed;

/// `-o FILE`, opened before any request goes out: a path that cannot be written (a missing
/// directory, a directory, no permission) is bad input, found before the server is asked
/// anything (a write must not be applied only for its answer to have nowhere to go). The file
/// is opened without truncating it and emptied when the answer begins; one this opened anew
/// and never wrote (the call failed first) is removed again.
pub struct OutFile {
    file: File,
    path: PathBuf,
    origin: Origin,
    /// What the file is, which says what a body that starts again does to it.
    kind: Sink,
}

/// What `-o` names, for a body that starts again.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Sink {
    /// A regular file: emptied first, cut back when a body starts again.
    File,
    /// `/dev/null`, a terminal: written as it is, and a body that starts again is written
    /// again (nothing reads it back).
    Device,
    /// A FIFO or a socket: written as it is; a reader downstream would get two starts of the
    /// body, so a body that starts again fails the write.
    Stream,
}

/// Whether the file was there before the command, and whether the answer began.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Origin {
    Existed,
    Created,
    Written,
}

impl OutFile {
    /// Opens (or creates) `path` for writing; the error is exit 2 naming the path.
    pub fn open(path: &Path) -> Result<OutFile, Failed> {
        let origin = if fs::symlink_metadata(path).is_ok() {
            Origin::Existed
        } else {
            Origin::Created
        };
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| (Exit::Usage, format!("-o {}: {e}", path.display())))?;
        let kind = match file.metadata() {
            Ok(m) if m.is_file() => Sink::File,
            #[cfg(unix)]
            Ok(m) if std::os::unix::fs::FileTypeExt::is_char_device(&m.file_type()) => Sink::Device,
            _ => Sink::Stream,
        };
        Ok(OutFile {
            file,
            path: path.to_path_buf(),
            origin,
            kind,
        })
    }

    /// The file, emptied, for the answer (`-o /dev/null` or a FIFO is written as it is:
    /// neither can be emptied, and truncating one fails).
    pub fn begin(&mut self) -> io::Result<&mut File> {
        self.origin = Origin::Written;
        if self.kind == Sink::File {
            self.file.set_len(0)?;
            self.file.seek(SeekFrom::Start(0))?;
        }
        Ok(&mut self.file)
    }

    /// What the file is.
    pub fn kind(&self) -> Sink {
        self.kind
    }

    /// The file, for what follows what it holds (a resumed walk's items after the first run's).
    pub fn append(&mut self) -> io::Result<&mut File> {
        self.origin = Origin::Written;
        self.file.seek(SeekFrom::End(0))?;
        Ok(&mut self.file)
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for OutFile {
    fn drop(&mut self) {
        if self.origin == Origin::Created {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Lines (a walk's items, a multi-call run's records) to `-o FILE` or stdout. The file is
/// touched only when the first line is written: emptied then, or added to when `appending`
/// (a resumed walk), so a run stopped before its first line leaves an existing file as it was.
pub struct Lines {
    file: Option<OutFile>,
    appending: bool,
    out: Option<io::BufWriter<Box<dyn Write>>>,
}

impl Lines {
    /// Lines to `file` (stdout without one).
    pub fn new(file: Option<OutFile>, appending: bool) -> Lines {
        Lines {
            file,
            appending,
            out: None,
        }
    }

    /// Whether they go to stdout.
    pub fn is_stdout(&self) -> bool {
        self.file.is_none()
    }

    /// Where they go, to name in an error.
    pub fn target(&self) -> String {
        self.file
            .as_ref()
            .map_or("stdout".to_string(), |f| f.path().display().to_string())
    }

    /// Writes `line` and a newline.
    pub fn line(&mut self, line: impl std::fmt::Display) -> io::Result<()> {
        let out = match &mut self.out {
            Some(out) => out,
            None => {
                let opened = open_lines(&mut self.file, self.appending)?;
                self.out.insert(io::BufWriter::new(opened))
            }
        };
        writeln!(out, "{line}")
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.as_mut().map_or(Ok(()), Write::flush)
    }

    /// The end of a run that finished: what is buffered is written, and a run of no lines
    /// still leaves its file (empty, or as it was when appending).
    pub fn finish(&mut self) -> io::Result<()> {
        match &mut self.out {
            Some(out) => out.flush(),
            None => open_lines(&mut self.file, self.appending).map(drop),
        }
    }
}

/// Where lines go once the first is written: the file emptied (or at its end, `appending`),
/// or stdout.
fn open_lines(file: &mut Option<OutFile>, appending: bool) -> io::Result<Box<dyn Write>> {
    match file {
        None => Ok(Box::new(io::stdout())),
        Some(f) => {
            let handle = if appending { f.append()? } else { f.begin()? };
            Ok(Box::new(handle.try_clone()?))
        }
    }
}

/// What `-i` and `-v` show of an answer, buffered or streamed.
pub trait Head {
    /// The status.
    fn status(&self) -> resile::reqwest::StatusCode;
    /// The HTTP version.
    fn version(&self) -> resile::reqwest::Version;
    /// The headers.
    fn headers(&self) -> &resile::reqwest::header::HeaderMap;
    /// Attempts the call took.
    fn attempts(&self) -> u32;
    /// The call's X-Request-ID.
    fn request_id(&self) -> &str;
}

macro_rules! head_of {
    ($t:ty) => {
        impl Head for $t {
            fn status(&self) -> resile::reqwest::StatusCode {
                <$t>::status(self)
            }
            fn version(&self) -> resile::reqwest::Version {
                <$t>::version(self)
            }
            fn headers(&self) -> &resile::reqwest::header::HeaderMap {
                <$t>::headers(self)
            }
            fn attempts(&self) -> u32 {
                <$t>::attempts(self)
            }
            fn request_id(&self) -> &str {
                <$t>::request_id(self)
            }
        }
    };
}
head_of!(Response);
head_of!(resile::StreamingResponse);

/// A status as a line shows it: the code and the reason HTTP names for it, or the code alone
/// where it names none (`599`, not the `599 <unknown status code>` of `StatusCode`'s own
/// `Display`, which no server sent).
pub struct Status(pub resile::reqwest::StatusCode);

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.canonical_reason() {
            Some(reason) => write!(f, "{} {reason}", self.0.as_str()),
            None => f.write_str(self.0.as_str()),
        }
    }
}

/// `HTTP/1.1`, `HTTP/2`, as curl writes the version.
fn version(response: &impl Head) -> &'static str {
    use resile::http::Version;
    match response.version() {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// The status line and headers as they came, `CRLF`-terminated, then an empty line.
pub fn head(response: &impl Head) -> Vec<u8> {
    let mut out = format!("{} {}\r\n", version(response), Status(response.status())).into_bytes();
    for (name, value) in response.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Writes the head (with `-i`) and the body, exactly, to `out` or stdout.
pub fn write_response(
    response: &Response,
    include: bool,
    out: Option<&mut OutFile>,
) -> io::Result<()> {
    let body = response.bytes();
    let mut sink: Box<dyn Write + '_> = match out {
        Some(out) => Box::new(out.begin()?),
        None => Box::new(io::stdout().lock()),
    };
    if include {
        sink.write_all(&head(response))?;
    }
    sink.write_all(&body)?;
    sink.flush()
}

/// `-v`: the request line (with the `name==value` items) and the headers the command sets,
/// secrets hidden.
pub fn show_request(
    method: &str,
    url: &str,
    query: &[(String, String)],
    headers: &[(String, String)],
    extra: &[String],
) {
    let mut full = url.split('#').next().unwrap_or(url).to_string();
    if !query.is_empty() {
        full.push(if full.contains('?') { '&' } else { '?' });
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.extend_pairs(query);
        full.push_str(&q.finish());
    }
    note!("> {method} {}", redact_url(&full, extra));
    for (name, value) in headers {
        note!("> {name}: {}", redact::header_value(name, value));
    }
}

/// A response header as `-v` shows it: a secret header's value hidden, and so are the secret
/// query values of the URLs that `Location`, `Content-Location` and `Link` carry (a presigned
/// redirect, a next link with a token), relative ones included; `extra` are the configured
/// names on top of the built-in ones.
fn shown_header(name: &str, value: &str, extra: &[String]) -> String {
    match name {
        "location" | "content-location" => redact_url(value, extra),
        "link" => value
            .split('<')
            .enumerate()
            .map(|(i, part)| match (i, part.split_once('>')) {
                (0, _) | (_, None) => part.to_string(),
                (_, Some((target, rest))) => format!("{}>{rest}", redact_url(target, extra)),
            })
            .collect::<Vec<_>>()
            .join("<"),
        _ => redact::header_value(name, value).to_string(),
    }
}

/// `-v`: the response head, secrets hidden.
pub fn show_response(response: &impl Head, extra: &[String]) {
    note!("< {} {}", version(response), Status(response.status()));
    for (name, value) in response.headers() {
        let text = String::from_utf8_lossy(value.as_bytes());
        note!("< {name}: {}", shown_header(name.as_str(), &text, extra));
    }
    note!(
        "* {} attempt(s), request id {}",
        response.attempts(),
        response.request_id()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_valued_headers_hide_their_secret_query_values() {
        let extra = ["session".to_string()];
        let table = [
            ("location", "/orders/1?token=t1&page=2", "/orders/1?token=REDACTED&page=2"),
            (
                "content-location",
                "https://h.test/o?X-Amz-Signature=s1",
                "https://h.test/o?X-Amz-Signature=REDACTED",
            ),
            (
                "link",
                "</items?session=s2&page=3>; rel=\"next\", <https://h.test/items?page=1>; rel=\"first\"",
                "</items?session=REDACTED&page=3>; rel=\"next\", <https://h.test/items?page=1>; rel=\"first\"",
            ),
            ("set-cookie", "sid=s3", "REDACTED"),
            ("content-type", "text/plain", "text/plain"),
        ];
        for (name, value, shown) in table {
            assert_eq!(shown_header(name, value, &extra), shown, "{name}");
        }
    }
}
