//! The API front-ends (no I/O): each turns a request into a typed
//! [`Command`] and renders the lab's answer in its version's JSON.
//!
//! | module | what |
//! | --- | --- |
//! | [`command`] | the command type every front-end produces |
//! | [`answer`] | what the lab answers, for the front-ends to render |
//! | [`v1`] | GNS3 1.3 (`/v1`): decode and render |
//! | [`routes`] | `/v1` route templates and matching |
//! | [`body`] | request bodies: JSON → typed structs, validated once |

pub mod answer;
pub mod body;
pub mod command;
pub mod routes;
pub mod v1;

pub use command::{
    Command, Nio, NioTap, NioUdp, NodeCommand, NodeCreate, NodeRef, PortAddr, Ticket,
};

/// The GNS3 compute API version nanolab speaks (the last 1.3 release), so that
/// GNS3 1.3 clients accept it.
pub const API_VERSION: &str = "1.3.13";
