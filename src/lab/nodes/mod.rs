//! Node kinds: each module holds what is particular to one kind (its data,
//! its lifecycle rules, its messages). Today: VPCS, the external program;
//! the forwarding of Ethernet switches and hubs (not yet reachable through
//! the API).

pub mod builtin;
pub mod device;
pub mod pc;
pub mod switch;
pub mod vpcs;
