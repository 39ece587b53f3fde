//! The model: projects, VMs, NIOs and port reservations as plain data.
//!
//! Methods return a value or an [`ApiError`](crate::error::ApiError); nothing
//! here touches a socket or a process. File-system work on project
//! directories lives in [`fs`], the one part of the model that does I/O.

pub mod fs;
pub mod ports;
pub mod project;
pub mod vm;

pub use ports::PortPool;
pub use project::Project;
pub use vm::{Nio, TunnelStats, Vm};
