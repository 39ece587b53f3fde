//! The API front-ends (no I/O): each turns a request into a typed
//! [`Command`] and renders the lab's answer in its version's JSON.
//!
//! | module | what |
//! | --- | --- |
//! | [`command`], [`types`], [`answer`] | the lab's vocabulary (`lab::command`, `lab::types`, `lab::answer`), re-exported: the commands the front-ends produce, the values they share, the answers they render |
//! | [`v1`] | GNS3 1.3 (`/v1`): decode and render |
//! | [`v2`] | GNS3 2.2's and 3.0's compute APIs (`/v2/compute`, `/v3/compute`, one module with a [`v2::Dialect`]): decode and render |
//! | [`pages`] | pages for people: routes, upload form, backup and restore |
//! | [`status`] | the lab drawn (`GET /`, `/projects/{id}`) and `GET /status.json` |
//! | [`multipart`] | `multipart/form-data` bodies (uploads) |
//! | [`routes`] | `/v1` route templates and matching |
//! | [`record`] | `--record`: requests as shell lines that replay on a fresh server |
//! | [`body`] | request bodies: JSON → typed structs, validated once |

pub mod body;
pub mod decode;
pub mod multipart;
pub mod pages;
pub mod record;
pub mod routes;
pub mod status;
pub mod v1;
pub mod v2;

pub use crate::lab::{answer, command, types};
pub use command::{
    API_VERSION, Command, DeviceType, LinkFilters, Nio, NioEthernet, NioTap, NioUdp, NodeClass,
    NodeCommand, NodeCreate, NodeRef, PortAddr, PortMapping, PortSettings, Ticket, VlanMode,
};

/// Which front-end decoded a request, and so renders its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// `/v1`: GNS3 1.3.
    V1,
    /// `/v2/compute`: GNS3 2.2's compute API.
    V2,
    /// `/v3/compute`: GNS3 3.0's compute API.
    V3,
    /// The pages for people, outside `/v1`.
    Pages,
}

use crate::proto::http::auth::Credentials;
use crate::proto::http::parse::Request;

/// Decode a request with the front-end its path belongs to.
pub fn decode(req: &Request, auth: Option<&Credentials>) -> (Front, v1::Decoded) {
    if req.path == "/v1" || req.path.starts_with("/v1/") {
        (Front::V1, v1::decode(req, auth))
    } else if req.path == "/v2" || req.path.starts_with("/v2/") {
        (Front::V2, v2::decode(req, auth))
    } else if req.path == "/v3" || req.path.starts_with("/v3/") {
        (Front::V3, v2::decode_v3(req, auth))
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
        Front::V3 => v2::render_v3(route, reply),
        Front::Pages => pages::render(route, reply),
    }
}

/// The upgrade an answer asks for (a websocket), if any: the reactor turns
/// the connection into one once the 101 is out.
pub fn upgrade(reply: &answer::Reply) -> Option<answer::Upgrade> {
    match reply {
        Ok(answer::Answer::Ok(answer::Body::Upgrade(u))) => Some(*u),
        _ => None,
    }
}

/// What a notification channel opened through `front` sends for a lab
/// notice, if anything.
pub fn notice(front: Front, n: &answer::Notice<'_>) -> Option<String> {
    match front {
        Front::V2 => v2::notification(n),
        Front::V3 => v2::notification_v3(n),
        Front::V1 | Front::Pages => None,
    }
}
