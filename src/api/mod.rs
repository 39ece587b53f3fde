//! The API layer without I/O: route templates, request body decoding and the
//! version constant. The handlers that act on the server live in
//! [`crate::reactor::handlers`], because most of them open sockets or start
//! processes.

pub mod body;
pub mod routes;

/// The GNS3 compute API version nanolab speaks (the last 1.3 release), so that
/// GNS3 1.3 clients accept it.
pub const API_VERSION: &str = "1.3.13";
