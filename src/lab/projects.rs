//! The open projects (sans-IO): creating and reopening them, their
//! directories (the projects directory's or a `--local` client's own),
//! moving, committing and closing them. What a project's nodes do is the
//! lab's; this part knows projects by id.

use super::answer::{Answer, Body, ProjectView, Reply};
use super::command::Ticket;
use super::event::{Event, Events};
use super::host::Host;
use super::project::{Project, TEMPORARY_MARKER};
use super::settings::Settings;
use super::spec::{ProjectCreate, ProjectUpdate};
use crate::error::ApiError;
use crate::limits::{MAX_NAME_BYTES, MAX_PROJECTS, RESTORE_SLICE};
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use uuid::Uuid;

/// Every open project, by id.
#[derive(Debug, Default)]
pub struct Projects {
    map: HashMap<Uuid, Project>,
    /// The upload whose archive is being restored, a slice per turn.
    restoring: Option<Ticket>,
}

fn no_project(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("Project ID {id} doesn't exist"))
}

impl Projects {
    /// Begin restoring a projects archive; the answer goes out once it is
    /// restored whole, a slice per loop turn (so that others are served
    /// meanwhile).
    pub fn restore_begin(
        &mut self,
        ticket: Ticket,
        archive: Vec<u8>,
        settings: &Settings,
        host: &mut dyn Host,
    ) -> Result<(), ApiError> {
        if self.restoring.is_some() {
            return Err(ApiError::conflict(
                "Another archive is being restored: send this one when it is done",
            ));
        }
        host.files()
            .restore_begin(&settings.projects_dir, archive)?;
        self.restoring = Some(ticket);
        Ok(())
    }

    /// One slice of the restore in progress; answer it once done.
    pub fn restore_step(&mut self, host: &mut dyn Host, events: &mut Events) {
        if self.restoring.is_none() {
            return;
        }
        if let Some(done) = host.files().restore_step(RESTORE_SLICE)
            && let Some(ticket) = self.restoring.take()
        {
            if let Ok(r) = &done {
                events.emit(Event::Restored(*r));
            }
            host.reply(ticket, done.map(|r| Answer::Created(Body::Restored(r))));
        }
    }

    /// Whether an archive is being restored.
    pub fn restoring(&self) -> bool {
        self.restoring.is_some()
    }

    /// Project `id`, or 1.3.13's 404.
    pub fn get(&self, id: Uuid) -> Result<&Project, ApiError> {
        self.map.get(&id).ok_or_else(|| no_project(id))
    }

    /// Mutable [`Projects::get`].
    pub fn get_mut(&mut self, id: Uuid) -> Result<&mut Project, ApiError> {
        self.map.get_mut(&id).ok_or_else(|| no_project(id))
    }

    /// Whether `id` is an open project.
    pub fn contains(&self, id: Uuid) -> bool {
        self.map.contains_key(&id)
    }

    /// Every open project, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Project> {
        self.map.values()
    }

    /// Whether no project is open.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The open projects' ids.
    pub fn ids(&self) -> Vec<Uuid> {
        self.map.keys().copied().collect()
    }

    /// The project as the API shows it.
    pub fn view(&self, id: Uuid, settings: &Settings) -> Result<ProjectView, ApiError> {
        let p = self.get(id)?;
        Ok(ProjectView {
            id: p.id,
            name: p.name.clone(),
            path: p.path.clone(),
            location: settings.projects_dir.clone(),
            temporary: p.temporary,
            variables: p.variables.clone(),
        })
    }

    /// Open a project: a known id is reopened (its variables replaced),
    /// a new one gets its directory, the projects directory's or one a
    /// `--local` client chose.
    pub fn create(
        &mut self,
        b: ProjectCreate,
        settings: &Settings,
        host: &mut dyn Host,
        events: &mut Events,
    ) -> Reply {
        if let Some(id) = b.project_id.filter(|id| self.map.contains_key(id)) {
            if let (Some(p), Some(v)) = (self.map.get_mut(&id), b.variables) {
                p.variables = Some(v);
            }
            return Ok(Answer::Created(Body::Project(self.view(id, settings)?)));
        }
        check_name(b.name.as_deref())?;
        if self.map.len() >= MAX_PROJECTS {
            return Err(ApiError::bad(format!(
                "{MAX_PROJECTS} projects are open, the most this server holds: close one first"
            )));
        }
        let id = b.project_id.unwrap_or_else(Uuid::new_v4);
        let default = settings.projects_dir.join(id.to_string());
        let (path, chosen) = match b.path.map(PathBuf::from) {
            Some(p) if p != default => {
                local_path(settings, "Choosing a project path", &p)?;
                (p, true)
            }
            _ => (default, false),
        };
        // A directory that was there before is not nanolab's to delete.
        host.files().add_root(&path);
        let owns_dir = !chosen || !host.files().exists(&path);
        host.files().create_dir(&path)?;
        let mut project = Project::new(id, b.name, path, b.temporary.unwrap_or(false));
        project.owns_dir = owns_dir;
        project.variables = b.variables;
        set_marker(&project, host)?;
        events.emit(Event::ProjectOpened {
            project: id,
            path: project.path.clone(),
        });
        self.map.insert(id, project);
        Ok(Answer::Created(Body::Project(self.view(id, settings)?)))
    }

    /// The directory an update moves project `id` to, checked, if it
    /// moves it (the variables are replaced first, as 2.2 does).
    pub fn new_path(
        &mut self,
        id: Uuid,
        b: &ProjectUpdate,
        settings: &Settings,
    ) -> Result<Option<PathBuf>, ApiError> {
        check_name(b.name.as_deref())?;
        if let (Some(p), Some(v)) = (self.map.get_mut(&id), b.variables.clone()) {
            p.variables = Some(v);
        }
        let p = self.get(id)?;
        let to = b.path.clone().map(PathBuf::from).filter(|to| *to != p.path);
        if let Some(to) = &to {
            local_path(settings, "Changing a project path", to)?;
        }
        Ok(to)
    }

    /// Re-point project `id` to `to`, as 1.3.13 does: the GUI's "Save as"
    /// has already copied (or moved) the files there. The old directory
    /// goes only when the project was temporary.
    pub fn repoint(
        &mut self,
        id: Uuid,
        to: &Path,
        host: &mut dyn Host,
        events: &mut Events,
    ) -> Result<(), ApiError> {
        let p = self.get(id)?;
        let (from, was_temporary, owned_before) = (p.path.clone(), p.temporary, p.owns_dir);
        host.files().add_root(to);
        let owns_dir = !host.files().exists(to);
        host.files().create_dir(to)?;
        let p = self.get_mut(id)?;
        p.path = to.to_path_buf();
        p.owns_dir = owns_dir;
        for d in &mut p.deleted_node_dirs {
            if let Ok(rest) = d.strip_prefix(&from) {
                *d = to.join(rest);
            }
        }
        if was_temporary
            && owned_before
            && let Err(e) = host.files().remove_dir(&from)
        {
            events.warn(
                None,
                format!("project {id}: old temporary directory left: {e}"),
            );
        }
        host.files().drop_root(&from);
        events.emit(Event::ProjectMoved {
            project: id,
            from,
            to: to.to_path_buf(),
        });
        Ok(())
    }

    /// The rest of an update: the name, and whether it is temporary.
    pub fn update(
        &mut self,
        id: Uuid,
        b: ProjectUpdate,
        host: &mut dyn Host,
    ) -> Result<(), ApiError> {
        let p = self.get_mut(id)?;
        if let Some(name) = b.name {
            p.name = Some(name);
        }
        if let Some(t) = b.temporary {
            p.temporary = t;
            set_marker(p, host)?;
        }
        Ok(())
    }

    /// Remove the directories of the nodes deleted since the last commit.
    pub fn commit(&mut self, id: Uuid, host: &mut dyn Host) -> Reply {
        let p = self.get_mut(id)?;
        while let Some(dir) = p.deleted_node_dirs.pop() {
            if let Err(e) = host.files().remove_dir(&dir) {
                p.deleted_node_dirs.push(dir);
                return Err(e);
            }
        }
        Ok(Answer::NoContent)
    }

    /// Forget project `id` (its nodes are gone already) and remove its
    /// directory when asked or when it is temporary; `node_dirs` are its
    /// nodes' directories.
    pub fn close(
        &mut self,
        id: Uuid,
        (delete_dir, node_dirs): (bool, &[PathBuf]),
        host: &mut dyn Host,
        events: &mut Events,
    ) -> Reply {
        let p = self.map.remove(&id).ok_or_else(|| no_project(id))?;
        events.emit(Event::ProjectClosed { project: id });
        if delete_dir || p.temporary {
            remove_dir(&p, node_dirs, host, events)?;
        }
        host.files().drop_root(&p.path);
        Ok(Answer::NoContent)
    }
}

/// Remove a project's directory, or, when nanolab did not create it (a
/// `--local` path that was already there), only what nanolab wrote in it:
/// its nodes' directories and the temporary marker.
fn remove_dir(
    p: &Project,
    node_dirs: &[PathBuf],
    host: &mut dyn Host,
    events: &mut Events,
) -> Result<(), ApiError> {
    if p.owns_dir {
        return host.files().remove_dir(&p.path);
    }
    for dir in node_dirs.iter().chain(&p.deleted_node_dirs) {
        host.files().remove_dir(dir)?;
    }
    host.files().remove_file(&p.path.join(TEMPORARY_MARKER));
    events.warn(
        None,
        format!(
            "project {}: {} was there before nanolab used it; only its nodes' directories were removed",
            p.id,
            p.path.display()
        ),
    );
    Ok(())
}

/// Refuse what only a `--local` server allows.
pub fn require_local(settings: &Settings, what: &str) -> Result<(), ApiError> {
    if settings.local {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "{what} is only allowed on a server started with --local"
        )))
    }
}

/// A project path a `--local` client chose: absolute, and neither `/` nor
/// the projects directory or one of its ancestors (deleting the project
/// would take them with it).
fn local_path(settings: &Settings, what: &str, path: &Path) -> Result<(), ApiError> {
    require_local(settings, what)?;
    let projects = &settings.projects_dir;
    let normal = path
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !path.is_absolute() || !normal {
        return Err(ApiError::bad(format!(
            "Project path '{}' must be absolute, without '.' or '..'",
            path.display()
        )));
    }
    if path.parent().is_none() || projects.starts_with(path) {
        return Err(ApiError::bad(format!(
            "Project path '{}' would hold the projects directory {}: choose a directory of its own",
            path.display(),
            projects.display()
        )));
    }
    Ok(())
}

/// A name a client gave a project or a node: at most [`MAX_NAME_BYTES`].
pub fn check_name(name: Option<&str>) -> Result<(), ApiError> {
    match name {
        Some(n) if n.len() > MAX_NAME_BYTES => Err(ApiError::bad(format!(
            "A name of {} bytes is longer than the limit of {MAX_NAME_BYTES}",
            n.len()
        ))),
        _ => Ok(()),
    }
}

fn set_marker(p: &Project, host: &mut dyn Host) -> Result<(), ApiError> {
    let marker = p.path.join(TEMPORARY_MARKER);
    if p.temporary {
        host.files().write_file(&marker, b"")
    } else {
        host.files().remove_file(&marker);
        Ok(())
    }
}
