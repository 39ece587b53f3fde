//! Safe operating-system helpers the reactor's host uses: project files
//! (small synchronous operations, the one kind of blocking work the loop
//! tolerates), non-blocking reads and writes, and starting the VPCS
//! program. No policy lives here.

pub mod backup;
pub mod confined;
pub mod fs;
pub mod images;
pub mod link;
pub mod nb;
pub mod nio;
pub mod program;
pub mod qemu;
pub mod spawn;
pub mod stats;
pub mod veth;
pub mod vm;
