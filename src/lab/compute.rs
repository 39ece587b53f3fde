//! What GNS3 2.2's compute API adds to the lab: the notification channel's
//! subscribers and heartbeat, `node.updated` events, link filters, host
//! figures, project files, and the small node operations (suspend,
//! console reset, duplicate, console websocket). Decisions only; the host
//! reads `/proc` and the disk.

use super::filters::Filters;
use super::node::{Kind, NodeKey};
use super::nodes::{device, vpcs};
use super::{Answer, Body, Deadline, Event, Lab, LogLevel, Reply};
use crate::error::ApiError;
use crate::lab::answer::{PortUse, Upgrade};
use crate::lab::command::{LinkFilters, PortAddr};
use crate::lab::host::Host;
use crate::limits::{MAX_PROJECT_FILE, MAX_PROJECT_FILES, NOTIFICATION_PING};
use std::path::{Component, Path, PathBuf};
use std::time::Instant;
use uuid::Uuid;

impl Lab {
    /// A client opens the notification channel: it gets the load at once,
    /// then every [`NOTIFICATION_PING`] while anyone listens.
    pub(crate) fn subscribe(&mut self, now: Instant, host: &mut dyn Host) -> Reply {
        self.subscribers += 1;
        if self.subscribers == 1 {
            self.timers
                .schedule(now + NOTIFICATION_PING, Deadline::Heartbeat);
        }
        let load = host.load();
        self.emit(Event::Load(load));
        Ok(Answer::Ok(Body::Upgrade(Upgrade::Notifications)))
    }

    /// A notification channel closed.
    pub fn unsubscribe(&mut self) {
        self.subscribers = self.subscribers.saturating_sub(1);
    }

    /// The heartbeat: the load for the listeners, and the next beat. With
    /// nobody listening, the beat stops (an idle server sleeps).
    pub(crate) fn heartbeat(&mut self, now: Instant, host: &mut dyn Host) {
        if self.subscribers == 0 {
            return;
        }
        let load = host.load();
        self.emit(Event::Load(load));
        self.timers
            .schedule(now + NOTIFICATION_PING, Deadline::Heartbeat);
    }

    /// Tell listeners a node changed (status, name, console).
    pub(crate) fn node_updated(&mut self, key: NodeKey) {
        let Some(n) = self.node(key) else { return };
        let view = match n.kind {
            Kind::Vpcs(_) => Body::Vpcs(vpcs::view(n)),
            _ => Body::Device(device::view(n)),
        };
        let project = n.project;
        self.emit(Event::NodeUpdated {
            project,
            node: view,
        });
    }

    /// Something for a project's users to read.
    pub(crate) fn project_log(&mut self, project: Uuid, level: LogLevel, text: String) {
        self.emit(Event::ProjectLog {
            project,
            level,
            text,
        });
    }

    /// Replace the filters of port `index` of a node (its NIO must be
    /// there). A BPF line that does not compile is skipped with a
    /// `log.warning`, as 2.2 does.
    pub(crate) fn set_filters(
        &mut self,
        key: NodeKey,
        index: usize,
        at: PortAddr,
        spec: LinkFilters,
    ) -> Result<(), ApiError> {
        let node = self.live_mut(key)?;
        let project = node.project;
        let name = node.name.clone();
        let port = node
            .ports
            .get_mut(index)
            .filter(|p| p.nio.is_some())
            .ok_or_else(|| ApiError::conflict(format!("Port {} is not connected", at.port)))?;
        let (filters, warnings) = Filters::new(spec);
        port.filters = (!filters.is_empty()).then(|| Box::new(filters));
        for w in warnings {
            self.project_log(project, LogLevel::Warning, format!("{name}: {w}"));
        }
        Ok(())
    }

    /// GNS3 2.2's `/network/ports`.
    pub(crate) fn port_use(&self) -> Reply {
        let taken = |p: &super::ports::PortPool| p.reservations().map(|(p, _)| p).collect();
        Ok(Answer::Ok(Body::PortUse(PortUse {
            console_range: self.settings.console_ports,
            console_ports: taken(&self.console_ports),
            udp_range: self.settings.udp_ports,
            udp_ports: taken(&self.udp_ports),
        })))
    }

    /// GNS3 2.2's `/statistics`, for the disk holding the projects.
    pub(crate) fn statistics(&self, host: &mut dyn Host) -> Reply {
        let s = host.statistics(&self.settings.projects_dir);
        Ok(Answer::Ok(Body::Statistics(s)))
    }

    /// A file of project `id`: `rel` must stay inside its directory.
    fn project_file(&self, id: Uuid, rel: &str) -> Result<PathBuf, ApiError> {
        let p = self.project(id)?;
        let rel = Path::new(rel);
        let inside = rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !inside || rel.as_os_str().is_empty() {
            return Err(ApiError::Forbidden(format!(
                "File '{}' is outside project {id}",
                rel.display()
            )));
        }
        Ok(p.path.join(rel))
    }

    /// Every file of a project, with its MD5 digest (snapshots, exports).
    pub(crate) fn list_files(&self, id: Uuid, host: &mut dyn Host) -> Reply {
        let dir = self.project(id)?.path.clone();
        let files = host.files().list_files(&dir, MAX_PROJECT_FILES)?;
        Ok(Answer::Ok(Body::FileList(files)))
    }

    /// One file of a project.
    pub(crate) fn read_project_file(&self, id: Uuid, rel: &str, host: &mut dyn Host) -> Reply {
        let path = self.project_file(id, rel)?;
        let dir = self.project(id)?.path.clone();
        match host.files().read_confined(&dir, &path, MAX_PROJECT_FILE)? {
            Some(data) => Ok(Answer::Ok(Body::File(data))),
            None => Err(ApiError::NotFound(format!("File '{rel}' doesn't exist"))),
        }
    }

    /// Write one file of a project (its directories are created).
    pub(crate) fn write_project_file(
        &self,
        id: Uuid,
        rel: &str,
        data: &[u8],
        host: &mut dyn Host,
    ) -> Reply {
        let path = self.project_file(id, rel)?;
        let dir = self.project(id)?.path.clone();
        host.files().write_confined(&dir, &path, data)?;
        Ok(Answer::Created(Body::Empty))
    }

    /// Drop every console client of a node (2.2's `console/reset`).
    pub(crate) fn console_reset(&mut self, key: NodeKey, host: &mut dyn Host) -> Reply {
        let node = self.live_mut(key)?;
        for c in std::mem::take(&mut node.console.clients) {
            host.console_drop(c.id);
        }
        Ok(Answer::NoContent)
    }

    /// The console websocket: only for a started node with a console.
    pub(crate) fn console_socket(&self, key: NodeKey) -> Reply {
        let node = self.live(key)?;
        if !node.running() || node.state() != super::State::Started {
            return Err(ApiError::conflict(format!(
                "Node {} is not started",
                node.name
            )));
        }
        if node.console_port.is_none() {
            return Err(ApiError::conflict(format!(
                "Node {} console type is not telnet",
                node.name
            )));
        }
        Ok(Answer::Ok(Body::Upgrade(Upgrade::Console(key))))
    }

    /// 2.2's `duplicate`: node `dest` (created beforehand by the
    /// controller) gets this node's startup script, with its own name.
    pub(crate) fn duplicate(&mut self, key: NodeKey, dest: Uuid, host: &mut dyn Host) -> Reply {
        let node = self.live(key)?;
        let script = node.vpcs().and_then(|v| v.startup_script.clone());
        let (project, old_name) = (node.project, node.name.clone());
        let dkey = self
            .key_of(dest)
            .filter(|k| self.node(*k).is_some_and(|n| n.project == project))
            .ok_or_else(|| ApiError::NotFound(format!("Node ID {dest} doesn't exist")))?;
        let dnode = self.live_mut(dkey)?;
        let new_name = dnode.name.clone();
        let v = dnode
            .vpcs_mut()
            .ok_or_else(|| ApiError::NotFound("This node type cannot be duplicated".into()))?;
        if let Some(script) = script {
            let script = vpcs::renamed_script(&script, &old_name, &new_name);
            host.files()
                .write_file(&v.dir.join(vpcs::STARTUP_SCRIPT), script.as_bytes())?;
            v.startup_script = Some(script);
        }
        let view = vpcs::view(self.live(dkey)?);
        Ok(Answer::Created(Body::Vpcs(view)))
    }
}
