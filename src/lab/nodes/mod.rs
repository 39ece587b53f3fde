//! Node kinds: each module holds what is particular to one kind (its data,
//! its lifecycle rules, its messages). Today: VPCS, the external program.

pub mod vpcs;
