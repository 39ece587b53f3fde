//! TLS for the API (https computes), sans-IO: `rustls`'s unbuffered server
//! connection between two fixed buffers. Ciphertext read from the socket
//! goes into [`Tls::space`]; [`Tls::advance`] turns it into plaintext for the
//! HTTP or websocket session and encrypts that session's output into
//! [`Tls::outgoing`], which the caller writes to the socket. No socket, no
//! clock.
//!
//! The buffers start small (most API requests and answers are a few hundred
//! bytes) and grow, once, to one whole TLS record each way when a record or
//! an answer asks for it; they never shrink, so after that a request costs
//! no allocation of this layer's own.
//! rustls 0.23 still decrypts and encrypts each record through a buffer of
//! its own (its unbuffered API notes in-place decryption as future work).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ServerConfig, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError};
use std::sync::Arc;

/// The largest plaintext of one TLS record.
const RECORD: usize = 16 * 1024;
/// Room for one whole incoming record: header, plaintext and the
/// expansion TLS 1.2 allows.
const INCOMING: usize = 5 + RECORD + 2048;
/// Room for one encrypted record of up to [`RECORD`] bytes of plaintext.
const OUTGOING: usize = 5 + RECORD + 256;
/// What each buffer starts with.
const SMALL: usize = 4096;
/// What a record adds to its plaintext, at most (header, tag, padding).
const OVERHEAD: usize = 256;

/// A server's certificate and key, ready for connections.
#[derive(Clone)]
pub struct Identity(Arc<ServerConfig>);

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity")
    }
}

impl Identity {
    /// From PEM text: a certificate chain (the server's first) and its
    /// private key (PKCS#8, PKCS#1 or SEC1). The error says which part is
    /// wrong.
    pub fn from_pem(chain: &[u8], key: &[u8]) -> Result<Identity, String> {
        let certs = CertificateDer::pem_slice_iter(chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the certificate file is not PEM: {e}"))?;
        if certs.is_empty() {
            return Err("the certificate file holds no CERTIFICATE".into());
        }
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|e| format!("the key file holds no private key: {e}"))?;
        // ring: a C compiler builds it in seconds and it keeps the binary
        // small. rustls deprecates it for lacking post-quantum key exchange,
        // which the controllers (Python on OpenSSL 3.0) do not offer anyway.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| format!("the certificate and key do not make a TLS identity: {e}"))?;
        Ok(Identity(Arc::new(config)))
    }
}

/// What one call to [`Tls::advance`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Going on: read more, write [`Tls::outgoing`].
    Open,
    /// The peer closed the TLS session (close_notify): it sends no more.
    PeerClosed,
    /// The session is broken (a protocol error, or a record too large):
    /// drop the connection.
    Failed,
}

/// One TLS session: rustls's state and the two record buffers.
pub struct Tls {
    conn: UnbufferedServerConnection,
    /// Ciphertext received, `incoming[..filled]`.
    incoming: Vec<u8>,
    filled: usize,
    /// Ciphertext to send, `outgoing[sent..queued]`.
    outgoing: Vec<u8>,
    sent: usize,
    queued: usize,
    /// Plaintext decrypted and not yet taken, `plain[taken..]`.
    plain: Vec<u8>,
    taken: usize,
    peer_closed: bool,
}

impl Tls {
    /// A session about to receive the client's hello.
    pub fn new(identity: &Identity) -> Tls {
        Tls {
            // Only fails on a config rustls rejects; `Identity` built it.
            conn: UnbufferedServerConnection::new(identity.0.clone())
                .expect("a server config rustls built"),
            incoming: vec![0; SMALL],
            filled: 0,
            outgoing: vec![0; SMALL],
            sent: 0,
            queued: 0,
            plain: Vec::new(),
            taken: 0,
            peer_closed: false,
        }
    }

    /// Where to read ciphertext into (empty: process first). A full
    /// buffer after processing holds part of a record larger than it:
    /// grown to a whole record's room, once.
    pub fn space(&mut self) -> &mut [u8] {
        if self.filled == self.incoming.len() && self.incoming.len() < INCOMING {
            self.incoming.resize(INCOMING, 0);
        }
        &mut self.incoming[self.filled..]
    }

    /// `n` bytes were read into [`Tls::space`].
    pub fn filled(&mut self, n: usize) {
        self.filled = (self.filled + n).min(self.incoming.len());
    }

    /// Ciphertext waiting for the socket.
    pub fn outgoing(&self) -> &[u8] {
        &self.outgoing[self.sent..self.queued]
    }

    /// `n` bytes of [`Tls::outgoing`] went out.
    pub fn sent(&mut self, n: usize) {
        self.sent = (self.sent + n).min(self.queued);
        if self.sent == self.queued {
            (self.sent, self.queued) = (0, 0);
        }
    }

    /// Plaintext received and not yet taken.
    pub fn plain(&self) -> &[u8] {
        &self.plain[self.taken..]
    }

    /// `n` bytes of [`Tls::plain`] were taken.
    pub fn took(&mut self, n: usize) {
        self.taken = (self.taken + n).min(self.plain.len());
        if self.taken == self.plain.len() {
            self.plain.clear();
            self.taken = 0;
        }
    }

    /// The peer sent close_notify.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Process what was received (the handshake, then records whose
    /// plaintext lands in [`Tls::plain`]), queue handshake messages, and
    /// encrypt as much of `out` as one record and the outgoing buffer take.
    /// Returns how many bytes of `out` were encrypted, and how it went.
    ///
    /// Stops taking records while [`Tls::plain`] holds a record's worth, so
    /// a reader that does not keep up holds the rest as ciphertext.
    pub fn advance(&mut self, out: &[u8]) -> (usize, Progress) {
        let mut encrypted = 0;
        loop {
            let status = self
                .conn
                .process_tls_records(&mut self.incoming[..self.filled]);
            let mut discard = status.discard;
            let mut again = false;
            let progress = match status.state {
                Err(e) => {
                    log::debug!("TLS: {e}");
                    Some(Progress::Failed)
                }
                Ok(ConnectionState::ReadTraffic(mut records)) => {
                    while self.plain.len() - self.taken < RECORD {
                        match records.next_record() {
                            Some(Ok(r)) => {
                                discard += r.discard;
                                self.plain.extend_from_slice(r.payload);
                            }
                            Some(Err(e)) => {
                                log::debug!("TLS: {e}");
                                return (encrypted, Progress::Failed);
                            }
                            None => break,
                        }
                    }
                    // Records still held: go on once the reader took some.
                    again = records.peek_len().is_none();
                    None
                }
                Ok(ConnectionState::EncodeTlsData(mut data)) => {
                    loop {
                        match data.encode(&mut self.outgoing[self.queued..]) {
                            Ok(n) => {
                                self.queued += n;
                                break;
                            }
                            // Only the handshake grows the buffer.
                            Err(EncodeError::InsufficientSize(s)) => {
                                let need = self.queued + s.required_size;
                                self.outgoing.resize(need, 0);
                            }
                            Err(e) => {
                                log::debug!("TLS: {e}");
                                return (encrypted, Progress::Failed);
                            }
                        }
                    }
                    again = true;
                    None
                }
                // Queued in order ahead of anything later: as good as sent.
                Ok(ConnectionState::TransmitTlsData(t)) => {
                    t.done();
                    again = true;
                    None
                }
                Ok(ConnectionState::WriteTraffic(mut w)) => {
                    if self.sent > 0 {
                        self.outgoing.copy_within(self.sent..self.queued, 0);
                        (self.queued, self.sent) = (self.queued - self.sent, 0);
                    }
                    // A longer answer: room for whole records, once.
                    if out.len() + OVERHEAD > self.outgoing.len() - self.queued
                        && self.outgoing.len() < OUTGOING
                    {
                        self.outgoing.resize(OUTGOING, 0);
                    }
                    let room = self.outgoing.len() - self.queued;
                    let take = out.len().min(RECORD).min(room.saturating_sub(OVERHEAD));
                    if take > 0 && encrypted == 0 {
                        match w.encrypt(&out[..take], &mut self.outgoing[self.queued..]) {
                            Ok(n) => {
                                self.queued += n;
                                encrypted = take;
                            }
                            Err(EncryptError::InsufficientSize(_)) => {}
                            Err(e) => {
                                log::debug!("TLS: {e}");
                                return (encrypted, Progress::Failed);
                            }
                        }
                    }
                    Some(Progress::Open)
                }
                Ok(ConnectionState::PeerClosed) => {
                    self.peer_closed = true;
                    again = true;
                    None
                }
                Ok(ConnectionState::Closed) => {
                    self.peer_closed = true;
                    None
                }
                Ok(ConnectionState::BlockedHandshake) => Some(Progress::Open),
                // Early data is not enabled; anything else new is not ours.
                Ok(_) => Some(Progress::Open),
            };
            if discard > 0 {
                self.incoming.copy_within(discard..self.filled, 0);
                self.filled -= discard;
            }
            if let Some(p) = progress {
                return (encrypted, self.settle(p));
            }
            if !again {
                return (encrypted, self.settle(Progress::Open));
            }
        }
    }

    /// A full incoming buffer that yields nothing is a record larger than
    /// TLS allows.
    fn settle(&self, p: Progress) -> Progress {
        match p {
            Progress::Open if self.peer_closed => Progress::PeerClosed,
            Progress::Open if self.filled == INCOMING && self.plain().is_empty() => {
                Progress::Failed
            }
            p => p,
        }
    }
}

/// A test identity and a rustls client that trusts only it, for the
/// tests, the fuzz target and the benches (never in the server).
#[cfg(any(test, fuzzing, feature = "fake"))]
pub mod testing {
    use super::*;
    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection, RootCertStore};

    /// A self-signed certificate for `localhost` and 127.0.0.1 (PEM).
    pub const CERT: &[u8] = include_bytes!("test-cert.pem");
    /// Its key.
    pub const KEY: &[u8] = include_bytes!("test-key.pem");

    /// The server side of [`CERT`].
    pub fn identity() -> Identity {
        Identity::from_pem(CERT, KEY).unwrap()
    }

    /// A client configuration that trusts [`CERT`] only.
    pub fn client_config() -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(CERT) {
            roots.add(c.unwrap()).unwrap();
        }
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }

    /// A client of `config` for `localhost`.
    pub fn client_of(config: &Arc<ClientConfig>) -> ClientConnection {
        ClientConnection::new(config.clone(), ServerName::try_from("localhost").unwrap()).unwrap()
    }

    /// A fresh client that trusts [`CERT`].
    pub fn client() -> ClientConnection {
        client_of(&client_config())
    }
}

#[cfg(test)]
mod tests;
