//! Header parsers (being written).
