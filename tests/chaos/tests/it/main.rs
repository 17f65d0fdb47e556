//! Integration tests: the server started in-process, reqwest as the client.
//!
//! One test binary with a module per behaviour, to keep link times down.

mod background;
mod basic;
mod body;
mod common;
mod cors;
mod items;
mod oauth;
mod orders;
mod outage;
mod ratelimit;
mod script;
mod stats;
