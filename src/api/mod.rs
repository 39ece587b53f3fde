//! The API front-ends (no I/O): each turns a request into a typed
//! [`Command`] and renders the lab's answer in its version's JSON.
//!
//! | module | what |
//! | --- | --- |
//! | [`command`] | the command type every front-end produces |
//! | [`types`] | values commands and answers share: NIOs, device types, port settings |
//! | [`answer`] | what the lab answers, for the front-ends to render |
//! | [`v1`] | GNS3 1.3 (`/v1`): decode and render |
//! | [`v2`] | GNS3 2.2's compute API (`/v2/compute`): decode and render |
//! | [`pages`] | pages for people: status, upload form, backup and restore |
//! | [`multipart`] | `multipart/form-data` bodies (uploads) |
//! | [`routes`] | `/v1` route templates and matching |
//! | [`body`] | request bodies: JSON → typed structs, validated once |

pub mod answer;
pub mod body;
pub mod command;
pub mod multipart;
pub mod pages;
pub mod routes;
pub mod types;
pub mod v1;
pub mod v2;

pub use command::{
    Command, DeviceType, Front, LinkFilters, Nio, NioEthernet, NioTap, NioUdp, NodeClass,
    NodeCommand, NodeCreate, NodeRef, PortAddr, PortMapping, PortSettings, Ticket, VlanMode,
};

/// The GNS3 compute API version nanolab speaks (the last 1.3 release), so that
/// GNS3 1.3 clients accept it.
pub const API_VERSION: &str = "1.3.13";

use crate::proto::http::auth::Credentials;
use crate::proto::http::parse::Request;

/// Decode a request with the front-end its path belongs to.
pub fn decode(req: &Request, auth: Option<&Credentials>) -> (Front, v1::Decoded) {
    if req.path == "/v1" || req.path.starts_with("/v1/") {
        (Front::V1, v1::decode(req, auth))
    } else if req.path == "/v2" || req.path.starts_with("/v2/") {
        (Front::V2, v2::decode(req, auth))
    } else {
        (Front::Pages, pages::decode(req, auth))
    }
}

/// Render a lab answer with the front-end that decoded the request.
pub fn render(
    front: Front,
    route: Option<&'static str>,
    reply: answer::Reply,
) -> crate::proto::http::response::Response {
    match front {
        Front::V1 => v1::render(route, reply),
        Front::V2 => v2::render(route, reply),
        Front::Pages => pages::render(route, reply),
    }
}
