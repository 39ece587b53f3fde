//! A port's NIO descriptors: opening a UDP tunnel, a TAP device or a
//! packet socket on a host interface, and moving one frame in or out of
//! any of them. Safe OS work for the reactor's host; no policy.

use crate::api::Nio;
use crate::error::ApiError;
use crate::sys;
use mio::net::UdpSocket;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};

/// A port's descriptor.
pub enum NioIo {
    /// A UDP tunnel, connected to its peer.
    Udp(UdpSocket),
    /// A TAP device or a packet socket on a host interface: one frame per
    /// read or write.
    Tap(File),
}

impl NioIo {
    /// Open what `nio` names. A UDP tunnel binds `lport` on every address
    /// of the peer's family and is connected to the peer; a TAP device is
    /// attached to (or created); a host interface gets a packet socket.
    pub fn open(nio: &Nio) -> Result<NioIo, ApiError> {
        Ok(match nio {
            Nio::Udp(u) => {
                let local = SocketAddr::new(bind_addr(u.raddr), u.lport);
                let socket = UdpSocket::bind(local).map_err(|e| {
                    ApiError::conflict(format!("UDP port {} is already in use: {e}", u.lport))
                })?;
                socket
                    .connect(SocketAddr::new(u.raddr, u.rport))
                    .map_err(|e| {
                        ApiError::conflict(format!("Cannot reach {}:{}: {e}", u.rhost, u.rport))
                    })?;
                NioIo::Udp(socket)
            }
            Nio::Tap(t) => NioIo::Tap(File::from(
                sys::open_tap(&t.device).map_err(|e| tap_error(&t.device, &e))?,
            )),
            Nio::Ethernet(e) => {
                let fd = sys::open_packet(&e.device).map_err(|err| {
                    ApiError::conflict(format!(
                        "Interface {} cannot be opened: {err} (it must exist, and nanolab needs CAP_NET_RAW)",
                        e.device
                    ))
                })?;
                NioIo::Tap(File::from(fd))
            }
        })
    }

    /// The descriptor, for the poll registry.
    pub fn fd(&self) -> RawFd {
        match self {
            NioIo::Udp(s) => s.as_raw_fd(),
            NioIo::Tap(f) => f.as_raw_fd(),
        }
    }

    /// Where this descriptor's frames are read and written.
    pub fn wire(&self) -> Wire<'_> {
        match self {
            NioIo::Udp(s) => Wire::Udp(s),
            NioIo::Tap(f) => Wire::Tap(f),
        }
    }
}

/// Where frames are read from and written to.
pub enum Wire<'a> {
    /// A connected UDP socket.
    Udp(&'a UdpSocket),
    /// A TAP device or packet socket.
    Tap(&'a File),
}

impl Wire<'_> {
    /// One frame in.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Wire::Udp(s) => s.recv(buf),
            Wire::Tap(f) => {
                let mut f: &File = f;
                f.read(buf)
            }
        }
    }

    /// Frames in, as many as wait (up to `lens.len()`), frame `i` in
    /// `buf[i * slot..]`: a batch in one system call from a UDP socket,
    /// one frame from a TAP device or packet socket.
    pub fn recv_batch(&self, buf: &mut [u8], slot: usize, lens: &mut [usize]) -> io::Result<usize> {
        match self {
            Wire::Udp(s) => sys::recv_batch(s.as_raw_fd(), buf, slot, lens),
            Wire::Tap(_) => {
                let n = self.recv(&mut buf[..slot])?;
                lens[0] = n;
                Ok(1)
            }
        }
    }

    /// Frames out, in order, on a UDP socket in one system call; how many
    /// went before the first that could not ([`sys::send_batch`]). A TAP
    /// device or packet socket takes one frame per call.
    pub fn send_batch(&self, frames: &[&[u8]]) -> io::Result<usize> {
        match self {
            Wire::Udp(s) => sys::send_batch(s.as_raw_fd(), frames),
            Wire::Tap(_) => {
                for (i, f) in frames.iter().enumerate() {
                    if let Err(e) = self.send(f) {
                        return if i == 0 { Err(e) } else { Ok(i) };
                    }
                }
                Ok(frames.len())
            }
        }
    }

    /// One frame out.
    pub fn send(&self, frame: &[u8]) -> io::Result<usize> {
        match self {
            Wire::Udp(s) => s.send(frame),
            Wire::Tap(f) => {
                let mut f: &File = f;
                f.write(frame)
            }
        }
    }
}

/// The NIO socket binds every address of the peer's family: a LAN peer can
/// reach it as well as a loopback one, and since the socket is connected to
/// `rhost:rport`, datagrams from anyone else are discarded by the kernel.
fn bind_addr(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::from([0u16; 8]),
    }
}

/// A TAP device that cannot be opened: name it, say why, and how to fix
/// the usual cause.
fn tap_error(device: &str, e: &std::io::Error) -> ApiError {
    let fix = match e.raw_os_error() {
        Some(1) | Some(13) => format!(
            ": nanolab needs CAP_NET_ADMIN, or a device made for its user \
             (ip tuntap add dev {device} mode tap user $USER)"
        ),
        Some(16) => ": another program (or port) already uses it".to_string(),
        Some(22) => ": an interface of that name exists and is not a TAP device".to_string(),
        _ => String::new(),
    };
    ApiError::conflict(format!("TAP device {device} cannot be opened: {e}{fix}"))
}
