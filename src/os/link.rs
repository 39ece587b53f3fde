//! An API connection's byte stream: a TCP socket, plain or under TLS. Both
//! read and write plaintext the way [`read_some`] and [`write_some`] do, so
//! the HTTP and websocket sessions above do not know which they have.
//!
//! Under TLS a write encrypts into the session's record buffer and goes out
//! as far as the socket takes it; what stays is [`Link::pending`] and goes on
//! the next [`Link::flush`] (the loop calls it on every writable turn).

use crate::error::ApiError;
use crate::os::nb::{Moved, read_some, would_block, write_some};
use crate::proto::http::response::Response;
use crate::proto::tls::{Identity, Progress, Tls};
use mio::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};

/// How the API port speaks.
#[derive(Clone)]
pub enum Policy {
    /// Plain HTTP only.
    Plain,
    /// TLS.
    Tls {
        /// The certificate and key.
        identity: Identity,
        /// A client that speaks plain HTTP instead is served too (GNS3
        /// 3.0's controller opens console websockets with the scheme its
        /// browser used); otherwise it gets a 400 that says to use https.
        plain_too: bool,
    },
}

/// A connection's socket and, for https, its TLS session.
pub struct Link {
    stream: TcpStream,
    tls: Option<Box<Tls>>,
    /// Still to look at the first byte (TLS or plain HTTP), and whether
    /// plain HTTP is then served.
    sniff: Option<bool>,
}

impl Link {
    /// A fresh connection, served as `policy` says.
    pub fn new(stream: TcpStream, policy: &Policy) -> Link {
        let (tls, sniff) = match policy {
            Policy::Plain => (None, None),
            Policy::Tls {
                identity,
                plain_too,
            } => (Some(Box::new(Tls::new(identity))), Some(*plain_too)),
        };
        Link { stream, tls, sniff }
    }

    /// Read plaintext into `buf`.
    pub fn read(&mut self, buf: &mut [u8]) -> Moved {
        if let Some(plain_too) = self.sniff {
            match self.sniff(plain_too) {
                Moved::Bytes(_) => {}
                other => return other,
            }
        }
        let Some(tls) = &mut self.tls else {
            return read_some(&self.stream, buf);
        };
        loop {
            let plain = tls.plain();
            if !plain.is_empty() {
                let n = plain.len().min(buf.len());
                buf[..n].copy_from_slice(&plain[..n]);
                tls.took(n);
                return Moved::Bytes(n);
            }
            let (_, progress) = tls.advance(&[]);
            // The handshake's answers; what the socket does not take now
            // goes on the next flush.
            if let Moved::Closed = send(&self.stream, tls) {
                return Moved::Closed;
            }
            match progress {
                Progress::Failed => return Moved::Closed,
                _ if !tls.plain().is_empty() => continue,
                Progress::PeerClosed => return Moved::Closed,
                Progress::Open => {}
            }
            match read_some(&self.stream, tls.space()) {
                Moved::Bytes(n) => tls.filled(n),
                other => return other,
            }
        }
    }

    /// Peek at the first byte: a TLS client opens with a handshake record
    /// (0x16), an HTTP client with a method's capital letter. `Bytes` when
    /// decided (and the link plain, if the client is).
    fn sniff(&mut self, plain_too: bool) -> Moved {
        let mut first = [0u8; 1];
        let byte = loop {
            match self.stream.peek(&mut first) {
                Ok(0) => return Moved::Closed,
                Ok(_) => break first[0],
                Err(e) if would_block(&e) => return Moved::Later,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return Moved::Closed,
            }
        };
        self.sniff = None;
        if !byte.is_ascii_uppercase() {
            return Moved::Bytes(0);
        }
        if plain_too {
            self.tls = None;
            return Moved::Bytes(0);
        }
        // Say so in plain HTTP, as far as one write goes, and close.
        let mut out = Vec::new();
        let e = ApiError::BadRequest(
            "This server speaks only https (--tls-only): use an https:// address".into(),
        );
        Response::error(&e).write_to(&mut out, true);
        let _ = write_some(&self.stream, &out);
        Moved::Closed
    }

    /// Write plaintext from `data`.
    pub fn write(&mut self, data: &[u8]) -> Moved {
        let Some(tls) = &mut self.tls else {
            return write_some(&self.stream, data);
        };
        match send(&self.stream, tls) {
            Moved::Bytes(_) => {}
            other => return other,
        }
        let (n, progress) = tls.advance(data);
        if progress == Progress::Failed {
            return Moved::Closed;
        }
        if let Moved::Closed = send(&self.stream, tls) {
            return Moved::Closed;
        }
        // Nothing taken: the handshake is not over (a read finishes it,
        // and the pump that read writes again).
        if n == 0 {
            Moved::Later
        } else {
            Moved::Bytes(n)
        }
    }

    /// Write what TLS holds encrypted. `Closed` when the peer is gone.
    pub fn flush(&mut self) -> Moved {
        match &mut self.tls {
            Some(tls) => send(&self.stream, tls),
            None => Moved::Bytes(0),
        }
    }

    /// Encrypted bytes not yet on the socket.
    pub fn pending(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| !t.outgoing().is_empty())
    }

    /// Bytes this link holds beyond the sessions above (for the budget).
    pub fn held(&self) -> usize {
        self.tls
            .as_ref()
            .map_or(0, |t| t.outgoing().len() + t.plain().len())
    }
}

impl AsRawFd for Link {
    fn as_raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}

/// Write the session's ciphertext until the socket stops taking it:
/// `Bytes(0)` when all is out, `Later` when some stays.
fn send(stream: &TcpStream, tls: &mut Tls) -> Moved {
    while !tls.outgoing().is_empty() {
        match write_some(stream, tls.outgoing()) {
            Moved::Bytes(n) => tls.sent(n),
            other => return other,
        }
    }
    Moved::Bytes(0)
}
