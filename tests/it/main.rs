//! Integration tests: the real `nanolab` binary, real sockets, real `vpcs`.

mod api;
mod builtin;
mod cli;
mod cloud;
mod confinement;
mod console;
mod differential;
mod faults;
mod fidelity;
mod gns3;
mod gns3_3;
mod hostile;
mod http;
mod pages;
mod security;
mod seed;
mod soak;
mod storm;
mod switch;
mod tap;
mod tls;
mod util;
mod v2;
mod v3;
mod vms;
mod webui;
