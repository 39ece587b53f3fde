//! HTTP/1.1 without I/O: the request parser, responses, and a connection's
//! buffers with ordered response slots.

pub mod auth;
pub mod chunked;
pub mod client;
pub mod conn;
pub mod parse;
pub mod response;
