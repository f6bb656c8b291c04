//! Unit tests of the session core over in-memory streams.
