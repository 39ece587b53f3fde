//! The lab's own calls to the container engine (sans-IO): the image list
//! the controllers ask for, and at start the sweep of containers an
//! earlier run left. Nodes' calls are their kind's (`kinds::docker`).

use super::answer::{Answer, Body};
use super::command::Ticket;
use super::event::Events;
use super::host::{EngineCall, EngineReply, Host};
use super::kinds::docker::{LABEL, engine_error};
use crate::error::ApiError;
use crate::limits::MAX_ENGINE_CALLS;
use serde_json::Value;
use std::path::Path;

/// What a call of the lab's own is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiter {
    /// An image list, for this request.
    Images(Ticket),
    /// The containers an earlier run left.
    Sweep,
    /// One of those, removed.
    Removed,
}

/// The lab's calls awaiting the engine's answer.
#[derive(Debug, Default)]
pub struct Engine {
    last_id: u64,
    waiting: Vec<(u64, Waiter)>,
    /// Calls under way, the nodes' and the lab's own.
    under_way: usize,
}

impl Engine {
    /// Send `call` to the engine, counted among those under way until its
    /// answer ([`Engine::heard`]); past [`MAX_ENGINE_CALLS`], refused (503)
    /// until answers come, so that no client can open connections to the
    /// engine without bound.
    pub fn send(&mut self, host: &mut dyn Host, call: EngineCall) -> Result<(), ApiError> {
        if self.under_way >= MAX_ENGINE_CALLS {
            return Err(ApiError::Unavailable(format!(
                "The Docker engine has {} requests of nanolab's under way, the most at \
                 once: try again once they are answered",
                self.under_way
            )));
        }
        host.engine(call)?;
        self.under_way += 1;
        Ok(())
    }

    /// A call was answered (or failed, or timed out).
    pub fn heard(&mut self) {
        self.under_way = self.under_way.saturating_sub(1);
    }

    fn call(
        &mut self,
        host: &mut dyn Host,
        (method, path): (&'static str, String),
        waiter: Waiter,
    ) -> Result<(), ApiError> {
        self.last_id += 1;
        self.send(host, EngineCall::new(None, self.last_id, (method, path)))?;
        self.waiting.push((self.last_id, waiter));
        Ok(())
    }

    /// List the engine's images for `ticket` (answered later).
    pub fn images(&mut self, ticket: Ticket, host: &mut dyn Host) -> Result<(), ApiError> {
        self.call(host, ("GET", "/images/json".into()), Waiter::Images(ticket))
    }

    /// Find the containers labelled with projects directory `dir` (an
    /// earlier run's, as only one server holds a directory): they go.
    /// No engine: nothing to sweep.
    pub fn sweep(&mut self, dir: &Path, host: &mut dyn Host) {
        let filter = serde_json::json!({"label": [format!("{LABEL}={}", dir.display())]});
        let query = percent_encoding::utf8_percent_encode(
            &filter.to_string(),
            percent_encoding::NON_ALPHANUMERIC,
        )
        .to_string();
        let path = format!("/containers/json?all=1&filters={query}");
        let _ = self.call(host, ("GET", path), Waiter::Sweep);
    }

    /// A node's call answered after the node went (its project closed
    /// while the engine made its container): a container made for it is
    /// removed, so that nothing is left.
    pub fn orphan(
        &mut self,
        call: &EngineCall,
        answer: Result<EngineReply, String>,
        host: &mut dyn Host,
        events: &mut Events,
    ) {
        let Ok(reply) = answer else { return };
        if call.method != "POST"
            || !call.path.starts_with("/containers/create")
            || reply.status != 201
        {
            return;
        }
        let made: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        let Some(cid) = made["Id"]
            .as_str()
            .filter(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_hexdigit()))
        else {
            return;
        };
        events.warn(
            None,
            format!("removing container {cid}, made for a node that went meanwhile"),
        );
        let path = format!("/containers/{cid}?force=1&v=1");
        if let Err(e) = self.call(host, ("DELETE", path), Waiter::Removed) {
            events.warn(None, e.to_string());
        }
    }

    /// The engine answered call `id`.
    pub fn answered(
        &mut self,
        id: u64,
        answer: Result<EngineReply, String>,
        host: &mut dyn Host,
        events: &mut Events,
    ) {
        let Some(at) = self.waiting.iter().position(|(i, _)| *i == id) else {
            return;
        };
        let (_, waiter) = self.waiting.swap_remove(at);
        let listed = |answer: Result<EngineReply, String>| -> Result<Vec<Value>, ApiError> {
            let reply = answer.map_err(ApiError::conflict)?;
            if reply.status != 200 {
                return Err(engine_error(&reply));
            }
            match serde_json::from_slice(&reply.body) {
                Ok(Value::Array(list)) => Ok(list),
                _ => Err(ApiError::conflict(
                    "Docker has returned an error: its answer is not a list",
                )),
            }
        };
        match waiter {
            Waiter::Images(ticket) => {
                let reply = listed(answer).map(|list| {
                    let mut names: Vec<String> = list
                        .iter()
                        .filter_map(|i| i["RepoTags"].as_array())
                        .flatten()
                        .filter_map(Value::as_str)
                        .filter(|t| *t != "<none>:<none>")
                        .map(str::to_string)
                        .collect();
                    names.sort();
                    names.dedup();
                    Answer::Ok(Body::DockerImages(names))
                });
                host.reply(ticket, reply);
            }
            Waiter::Sweep => {
                let Ok(list) = listed(answer) else { return };
                for c in list {
                    let Some(cid) = c["Id"]
                        .as_str()
                        .filter(|i| i.bytes().all(|b| b.is_ascii_hexdigit()))
                    else {
                        continue;
                    };
                    events.warn(
                        None,
                        format!("removing container {cid}, left by an earlier run of this server"),
                    );
                    let path = format!("/containers/{cid}?force=1&v=1");
                    let _ = self.call(host, ("DELETE", path), Waiter::Removed);
                }
            }
            Waiter::Removed => {
                if let Ok(r) = answer
                    && r.status >= 400
                    && r.status != 404
                {
                    events.warn(None, engine_error(&r).to_string());
                }
            }
        }
    }
}
