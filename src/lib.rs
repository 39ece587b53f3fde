//! nanolab: a small, fast compute server for network labs, speaking the GNS3
//! 1.3 compute API (`/v1`) over HTTP/JSON.
//!
//! # Layers
//!
//! | module | what it is | may do I/O |
//! | --- | --- | --- |
//! | [`http`] | HTTP/1.1 request parser, responses, per-connection ordered slots | no |
//! | [`api`] | route templates, request body decoding | no |
//! | [`console`] | telnet option filter, line tracking, fan-out buffers | no |
//! | [`vmq`], [`timers`], [`bytes`] | per-VM request queue, deadline heap, socket byte queue | no |
//! | [`model`] | projects, VMs, NIOs, port pools as plain data | only [`model::fs`] (project directories) |
//! | [`vpcs`] | the VPCS command line (pure) and program lookup | reads the program file |
//! | [`fuzzing`] | fuzz entry points, replayed by unit tests | no |
//! | [`sys`] | every `unsafe`: pty, pidfd, process groups, signals, Landlock | yes |
//! | [`reactor`] | the one `mio::Poll` loop and the handlers that act on it | yes |
//!
//! Dependencies point one way: the reactor uses everything; nothing below it
//! knows about sockets, processes or the clock.

#![deny(missing_docs)]

pub mod api;
pub mod bytes;
pub mod config;
pub mod console;
pub mod error;
pub mod fuzzing;
pub mod http;
pub mod limits;
pub mod model;
pub mod reactor;
pub mod sys;
pub mod timers;
pub mod vmq;
pub mod vpcs;
