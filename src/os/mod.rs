//! Safe operating-system helpers the reactor's host uses: project files
//! (small synchronous operations, the one kind of blocking work the loop
//! tolerates) and the VPCS program on disk. No policy lives here.

pub mod fs;
pub mod program;
