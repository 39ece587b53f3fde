//! nanolab: a small, fast compute server for network labs, speaking the GNS3
//! 1.3 compute API (`/v1`) over HTTP/JSON.
//!
//! # Three rings
//!
//! | module | ring | what it is | may do I/O |
//! | --- | --- | --- | --- |
//! | [`proto`] | proto | HTTP/1.1 (parser, ordered answer slots, streamed answers, connection deadlines), telnet, Ethernet/802.1Q, pcap, byte queues | no |
//! | [`api`] | front-ends | request → the lab's typed [`lab::command::Command`]; lab answer → `/v1` or `/v2/compute` JSON, or a page (`api::pages`); one door for the reactor | no |
//! | [`lab`] | lab | the application and its vocabulary (commands, answers, validated inputs, ids): the orchestration in `lab/mod.rs`; node kinds behind one face ([`lab::kinds`]: PCs on two engines, switches, hubs); the registry, ports and their one frame path, the data plane, wiring (NIOs, filters, captures), projects, consoles, pools, queues, deadlines, events, the memory budget; the [`lab::Host`] trait | no (only through `Host`) |
//! | [`reactor`] | reactor | the one `mio::Poll` loop and the host over the real OS | yes |
//! | [`os`] | reactor | safe OS helpers: project files confined beneath a directory handle, tar backup and restore, the projects directory's lock, NIO descriptors, starting VPCS, non-blocking reads | yes |
//! | [`sys`] | reactor | every `unsafe` and every `libc` call: pty, pidfd, process groups, signals, Landlock | yes |
//! | [`config`], [`limits`], [`error`] | shared | flags and INI, every bound, the one error enum | config reads its file |
//! | `fuzzing` | tests | fuzz entry points, replayed by unit tests; compiled only for tests and cargo-fuzz (`cfg(fuzzing)`), like `lab::fake` (also for the benches, through the `fake` feature) | no |
//!
//! Dependencies point inwards: the reactor drives the lab and the
//! front-ends; the lab knows nothing of sockets, processes or the clock
//! (`now` is an argument); `proto` knows nothing of the lab.

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod api;
pub mod config;
pub mod error;
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzzing;
pub mod lab;
pub mod limits;
pub mod os;
pub mod proto;
pub mod reactor;
pub mod sys;
