//! Lab unit tests.
