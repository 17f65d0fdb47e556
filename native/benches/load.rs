//! Load benchmark (being written): resile vs reqwest vs reqwest-retry against the chaos server.
fn main() {}
