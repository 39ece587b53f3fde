//! Sans-IO wire formats: bytes in, values out, and back. No socket, no
//! clock, no knowledge of projects or nodes.
//!
//! | module | what |
//! | --- | --- |
//! | [`http`] | HTTP/1.1: request parser, responses, a connection's ordered answer slots and deadlines, Basic auth |
//! | [`telnet`] | the console's telnet option filter and line tracking |
//! | [`bytes`] | the byte queue every socket buffer uses |
//! | [`ethernet`] | Ethernet addresses and 802.1Q tags |
//! | [`qmp`] | QEMU's machine protocol, client side: greeting, commands, replies, events |
//! | [`pcap`] | classic pcap headers and records |
//! | [`tls`] | TLS for the API: rustls's unbuffered server connection between two record buffers |
//! | [`websocket`] | RFC 6455 handshake key and frame codec (server side) |

pub mod bytes;
pub mod ethernet;
pub mod http;
pub mod pcap;
pub mod qmp;
pub mod telnet;
pub mod tls;
pub mod websocket;
