//! `resile get URL -o FILE`: the body goes to the file as it arrives, and a body that breaks
//! is taken up where it broke (`Range` / `If-Range`) instead of being fetched again whole.
//! Should the server send the whole body again instead, the file is cut back to what it held
//! before the body, so it never mixes two versions.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};

use resile::{Piece, StreamingResponse};

use crate::call::Plan;
use crate::exit::{for_error, Exit};
use crate::output::{OutFile, Sink};
use crate::{output, Failed};

/// Downloads `url` into `out` (after the head with `-i`); the exit code its status means.
pub async fn to_file(
    client: &resile::Client,
    plan: &Plan,
    url: &str,
    include: bool,
    verbose: bool,
    out: &mut OutFile,
) -> Result<Exit, Failed> {
    let path = out.path().display().to_string();
    let write_failed =
        |e: std::io::Error| (Exit::Other, format!("cannot write the body to {path}: {e}"));
    let failed = |e: resile::Error| (for_error(&e), plan.describe(&e, url));
    let mut download = plan
        .request(client, url)
        .send_download()
        .await
        .map_err(failed)?;
    if let Some(limit) = plan.max_filesize {
        download = download.max_bytes(limit).map_err(failed)?;
    }
    if verbose {
        output::show_response(&download, &plan.redact);
    }
    let sink = out.kind();
    let file = out.begin().map_err(write_failed)?;
    let start = if include {
        let head = output::head(&download);
        file.write_all(&head).map_err(write_failed)?;
        head.len() as u64
    } else {
        0
    };
    let mut received = 0;
    copy(&mut download, file, start, sink, &mut received)
        .await
        .map_err(|e| match e {
            // What was written stays (as curl leaves it), and the line says it is not the
            // whole body, so that the file is not taken for the answer.
            Copy::Read(e) => {
                let (exit, message) = failed(e);
                let expected = download
                    .headers()
                    .get(reqwest::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                    .map(|len| format!(" of its {len}"))
                    .unwrap_or_default();
                (
                    exit,
                    format!(
                        "{message}; {path} is incomplete: it holds the body's first \
                         {received}{expected} byte(s)"
                    ),
                )
            }
            Copy::Write(e) => write_failed(e),
        })?;
    file.flush().map_err(write_failed)?;
    if verbose {
        note!("* {received} byte(s) in {} attempt(s)", download.attempts());
    }
    Ok(crate::call::status_exit(plan, url, download.status()))
}

enum Copy {
    Read(resile::Error),
    Write(std::io::Error),
}

/// Writes every piece where it belongs (the body starts at `start` in the file); a restart
/// cuts a regular file back to `start`, goes on writing to a device, and fails a FIFO's write
/// rather than hand its reader two starts of the body. `len`: the body's length written so
/// far (the whole body's once this returns `Ok`).
async fn copy(
    download: &mut StreamingResponse,
    file: &mut File,
    start: u64,
    sink: Sink,
    len: &mut u64,
) -> Result<(), Copy> {
    while let Some(piece) = download.piece().await.map_err(Copy::Read)? {
        match piece {
            Piece::Bytes { bytes, .. } => {
                file.write_all(&bytes).map_err(Copy::Write)?;
                *len += bytes.len() as u64;
            }
            Piece::Restart { .. } if sink == Sink::Stream => {
                return Err(Copy::Write(std::io::Error::other(
                    "the body started again, and what was written of it cannot be taken back \
                     (a pipe, not a file)",
                )))
            }
            Piece::Restart { .. } if sink == Sink::Device => *len = 0,
            Piece::Restart { .. } => {
                file.set_len(start).map_err(Copy::Write)?;
                file.seek(SeekFrom::Start(start)).map_err(Copy::Write)?;
                *len = 0;
            }
            // A kind of piece this command does not know: stop rather than guess.
            other => {
                return Err(Copy::Write(std::io::Error::other(format!(
                    "unexpected piece {other:?}"
                ))))
            }
        }
    }
    Ok(())
}
