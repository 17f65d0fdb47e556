//! What the driver reports about an attempt: the answer, a transport failure, or an answer it
//! could not hand to the caller.

use serde::Serialize;

use crate::classify::TransportError;
use crate::headers::Headers;
use crate::time::UnixTime;

/// An HTTP response's meta data, as the engine needs it.
#[derive(Clone, Copy)]
pub struct Response<'a> {
    /// The status code.
    pub status: u16,
    /// The headers (only hint headers are read).
    pub headers: &'a dyn Headers,
    /// The wall clock when the response arrived (for `Retry-After` HTTP-dates).
    pub wall: UnixTime,
    /// The driver cannot see every header (a cross-origin browser response): a missing hint
    /// may be hidden rather than absent.
    pub hints_may_be_hidden: bool,
}

impl<'a> Response<'a> {
    /// A response with the given status and headers.
    pub fn new(status: u16, headers: &'a dyn Headers, wall: UnixTime) -> Self {
        Response {
            status,
            headers,
            wall,
            hints_may_be_hidden: false,
        }
    }
}

impl core::fmt::Debug for Response<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Why the driver could not hand a response to the caller. Reported before the engine decides,
/// so its events, stats and breaker agree with the caller's result.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Problem {
    /// The body is larger than the adapter's cap; it was not read.
    BodyTooLarge {
        /// The cap, in bytes.
        limit: u64,
    },
    /// The body could not be decoded as the caller asked (typed JSON, for example). Reported
    /// only for responses the caller would otherwise get (2xx).
    Undecodable,
    /// The server redirected more times than allowed (or in a loop).
    TooManyRedirects {
        /// The number of redirects allowed.
        limit: u32,
    },
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug)]
pub enum Outcome<'a> {
    /// The server answered.
    Response(Response<'a>),
    /// The transport failed.
    Transport(TransportError),
    /// The server answered, but the answer cannot be handed to the caller.
    Unusable(Response<'a>, Problem),
}

/// What the last attempt of a failed call ended with.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Last {
    /// A status code.
    Status(u16),
    /// A transport failure.
    Transport(TransportError),
}

impl Last {
    /// The status, if the server answered.
    pub fn status(self) -> Option<u16> {
        match self {
            Last::Status(s) => Some(s),
            Last::Transport(_) => None,
        }
    }
}
