//! RFC 6455 websockets, sans-IO: the handshake's accept key, and a frame
//! codec for the server side (client frames must be masked; server frames
//! are not), with fragmentation, control frames, the close handshake and a
//! size limit. Bytes in, messages out; no socket, no clock.
//!
//! The handshake's SHA-1 and base64 come from `sha1_smol` and `base64`.

pub use crate::limits::MAX_WS_MESSAGE as MAX_MESSAGE;
use base64::Engine;

/// The GUID every accept key is made with (RFC 6455, 1.3).
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub fn accept_key(client_key: &str) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(client_key.trim().as_bytes());
    sha.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes())
}

/// Check a client's handshake as RFC 6455 (4.2.1) requires: version 13
/// (else 426, which names the version to use) and a key that is 16 bytes
/// in base64 (else 400).
pub fn check_handshake(key: &str, version: Option<&str>) -> Result<(), crate::error::ApiError> {
    use crate::error::ApiError;
    if version.map(str::trim) != Some("13") {
        return Err(ApiError::UpgradeRequired(format!(
            "Websocket version {} is not supported: send 'Sec-WebSocket-Version: 13'",
            version.unwrap_or("(none)")
        )));
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(key.trim());
    if decoded.map(|k| k.len()) != Ok(16) {
        return Err(ApiError::bad(format!(
            "Sec-WebSocket-Key '{key}' is not 16 bytes in base64"
        )));
    }
    Ok(())
}

/// Whether a close code may be sent by a peer (RFC 6455, 7.4): 1005, 1006
/// and 1015 are only for reporting, others below 3000 are reserved unless
/// registered, and none is 5000 or more.
fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Frame opcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// A continuation of a fragmented message.
    Continuation,
    /// UTF-8 text.
    Text,
    /// Bytes.
    Binary,
    /// Close (with an optional code and reason).
    Close,
    /// Ping.
    Ping,
    /// Pong.
    Pong,
}

impl Opcode {
    fn from_bits(b: u8) -> Option<Self> {
        Some(match b {
            0 => Opcode::Continuation,
            1 => Opcode::Text,
            2 => Opcode::Binary,
            8 => Opcode::Close,
            9 => Opcode::Ping,
            10 => Opcode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0,
            Opcode::Text => 1,
            Opcode::Binary => 2,
            Opcode::Close => 8,
            Opcode::Ping => 9,
            Opcode::Pong => 10,
        }
    }

    fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// What a client sent, whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping: answer with a pong carrying the same bytes.
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// The client closes: echo a close, then close the connection.
    Close(Option<u16>, String),
}

/// Why the connection must be closed, with the close code to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsError {
    /// 1002: a frame breaks the protocol.
    Protocol(&'static str),
    /// 1007: text that is not UTF-8.
    InvalidData,
    /// 1009: a message larger than the limit.
    TooBig,
}

impl WsError {
    /// The close code to send.
    pub fn code(self) -> u16 {
        match self {
            WsError::Protocol(_) => 1002,
            WsError::InvalidData => 1007,
            WsError::TooBig => 1009,
        }
    }
}

/// Server-side decoder of client frames.
#[derive(Debug, Default)]
pub struct Decoder {
    /// A fragmented message in progress: its opcode and bytes so far.
    partial: Option<(Opcode, Vec<u8>)>,
}

impl Decoder {
    /// A decoder with nothing in progress.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decode the next whole message from `buf`: `Ok(None)` when more bytes
    /// are needed; otherwise how many bytes were used and the message, if a
    /// frame completed one (a fragment alone completes none).
    pub fn feed(&mut self, buf: &[u8]) -> Result<Option<(usize, Option<Message>)>, WsError> {
        let Some((used, fin, op, payload)) = frame(buf)? else {
            return Ok(None);
        };
        let message = if op.is_control() {
            if !fin {
                return Err(WsError::Protocol("fragmented control frame"));
            }
            Some(control(op, payload)?)
        } else {
            self.data(fin, op, payload)?
        };
        Ok(Some((used, message)))
    }

    fn data(
        &mut self,
        fin: bool,
        op: Opcode,
        payload: Vec<u8>,
    ) -> Result<Option<Message>, WsError> {
        let (kind, mut bytes) = match (op, self.partial.take()) {
            (Opcode::Continuation, Some(p)) => p,
            (Opcode::Continuation, None) => {
                return Err(WsError::Protocol("continuation without a message"));
            }
            (_, Some(_)) => return Err(WsError::Protocol("new message inside a fragmented one")),
            (kind, None) => (kind, Vec::new()),
        };
        if bytes.len() + payload.len() > MAX_MESSAGE {
            return Err(WsError::TooBig);
        }
        bytes.extend_from_slice(&payload);
        if !fin {
            self.partial = Some((kind, bytes));
            return Ok(None);
        }
        Ok(Some(match kind {
            Opcode::Text => {
                Message::Text(String::from_utf8(bytes).map_err(|_| WsError::InvalidData)?)
            }
            _ => Message::Binary(bytes),
        }))
    }
}

fn control(op: Opcode, payload: Vec<u8>) -> Result<Message, WsError> {
    Ok(match op {
        Opcode::Ping => Message::Ping(payload),
        Opcode::Pong => Message::Pong(payload),
        _ => match payload.len() {
            0 => Message::Close(None, String::new()),
            1 => return Err(WsError::Protocol("close frame of one byte")),
            _ => {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                if !valid_close_code(code) {
                    return Err(WsError::Protocol("close code not allowed on the wire"));
                }
                let reason =
                    String::from_utf8(payload[2..].to_vec()).map_err(|_| WsError::InvalidData)?;
                Message::Close(Some(code), reason)
            }
        },
    })
}

/// One client frame from `buf`: (bytes used, FIN, opcode, unmasked payload).
type Frame = (usize, bool, Opcode, Vec<u8>);

fn frame(buf: &[u8]) -> Result<Option<Frame>, WsError> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(WsError::Protocol("reserved bits set"));
    }
    let op = Opcode::from_bits(b0 & 0x0f).ok_or(WsError::Protocol("unknown opcode"))?;
    if b1 & 0x80 == 0 {
        return Err(WsError::Protocol("client frame not masked"));
    }
    let (len, mut at) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(b) => (u16::from_be_bytes([b[0], b[1]]) as u64, 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => (u64::from_be_bytes(b.try_into().unwrap_or_default()), 10),
            None => return Ok(None),
        },
        n => (n as u64, 2),
    };
    if op.is_control() && len > 125 {
        return Err(WsError::Protocol("control frame longer than 125 bytes"));
    }
    if len > MAX_MESSAGE as u64 {
        return Err(WsError::TooBig);
    }
    let Some(mask) = buf.get(at..at + 4) else {
        return Ok(None);
    };
    let mask = [mask[0], mask[1], mask[2], mask[3]];
    at += 4;
    let Some(data) = buf.get(at..at + len as usize) else {
        return Ok(None);
    };
    let payload = data
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    Ok(Some((at + len as usize, b0 & 0x80 != 0, op, payload)))
}

/// Append one unfragmented server frame to `out`.
pub fn encode(out: &mut Vec<u8>, op: Opcode, payload: &[u8]) {
    out.push(0x80 | op.bits());
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= u16::MAX as usize => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// A close frame with `code` and `reason`.
pub fn encode_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
    encode(out, Opcode::Close, &payload);
}

/// One server-side websocket, sans-IO: what was received goes in, whole
/// data messages come out; pings are answered, a close is echoed, a
/// protocol error closes with its code; what waits to be written is
/// bounded by [`MAX_WS_OUTBOX`](crate::limits::MAX_WS_OUTBOX).
#[derive(Debug, Default)]
pub struct Session {
    decoder: Decoder,
    /// Received bytes not yet decoded.
    input: Vec<u8>,
    /// Frames waiting to be written.
    out: Vec<u8>,
    /// A close frame is queued: nothing more is read or sent.
    closing: bool,
}

impl Session {
    /// A session whose first bytes to write are `out` (the handshake's 101).
    pub fn new(out: Vec<u8>) -> Self {
        Session {
            out,
            ..Default::default()
        }
    }

    /// Bytes arrived: the payloads of the whole data messages (text or
    /// binary) they completed, in order.
    pub fn receive(&mut self, data: &[u8]) -> Vec<Vec<u8>> {
        let mut messages = Vec::new();
        if self.closing {
            return messages;
        }
        self.input.extend_from_slice(data);
        while !self.closing {
            let message = match self.decoder.feed(&self.input) {
                Ok(None) => break,
                Ok(Some((used, m))) => {
                    self.input.drain(..used);
                    m
                }
                Err(e) => {
                    encode_close(&mut self.out, e.code(), "");
                    self.closing = true;
                    break;
                }
            };
            match message {
                None | Some(Message::Pong(_)) => {}
                Some(Message::Ping(p)) => encode(&mut self.out, Opcode::Pong, &p),
                Some(Message::Close(code, _)) => {
                    encode_close(&mut self.out, code.unwrap_or(1000), "");
                    self.closing = true;
                }
                Some(Message::Text(t)) => messages.push(t.into_bytes()),
                Some(Message::Binary(b)) => messages.push(b),
            }
        }
        if self.closing {
            self.input.clear();
        }
        messages
    }

    /// Queue a message; refused (false) once closing.
    pub fn send(&mut self, op: Opcode, payload: &[u8]) -> bool {
        if self.closing {
            return false;
        }
        encode(&mut self.out, op, payload);
        true
    }

    /// Bytes held: input not yet a whole frame, and output not yet
    /// written (for the memory budget).
    pub fn buffered(&self) -> usize {
        self.input.len() + self.out.len()
    }

    /// What waits to be written.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// `n` bytes of the output were written.
    pub fn consumed(&mut self, n: usize) {
        self.out.drain(..n.min(self.out.len()));
    }

    /// The peer does not read: more than the bound waits for it.
    pub fn stalled(&self) -> bool {
        self.out.len() > crate::limits::MAX_WS_OUTBOX
    }

    /// Closed and everything written: the connection can go.
    pub fn finished(&self) -> bool {
        self.closing && self.out.is_empty()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A masked client frame, as a browser sends it.
    pub(crate) fn client(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut f = vec![if fin { 0x80 } else { 0 } | op];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n <= 65535 => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    #[test]
    fn the_rfc_example_accept_key() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn the_rfc_masked_hello_and_a_fragmented_message_with_a_ping_between() {
        // RFC 6455 5.7: a single-frame masked text message "Hello".
        let hello = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let mut d = Decoder::new();
        assert_eq!(d.feed(&hello[..5]), Ok(None), "need more bytes");
        assert_eq!(
            d.feed(&hello),
            Ok(Some((11, Some(Message::Text("Hello".into())))))
        );
        let mut all = client(false, 1, b"Hel");
        all.extend(client(true, 9, b"hi"));
        all.extend(client(true, 0, b"lo"));
        let (n, m) = d.feed(&all).unwrap().unwrap();
        assert_eq!(m, None, "a fragment completes nothing");
        let (n2, m) = d.feed(&all[n..]).unwrap().unwrap();
        assert_eq!(
            m,
            Some(Message::Ping(b"hi".to_vec())),
            "control frames may interleave"
        );
        let (_, m) = d.feed(&all[n + n2..]).unwrap().unwrap();
        assert_eq!(m, Some(Message::Text("Hello".into())));
    }

    #[test]
    fn broken_frames_get_the_right_close_code() {
        let mut d = Decoder::new();
        assert_eq!(
            d.feed(&[0x81, 0x05, b'h', b'e', b'l', b'l', b'o'])
                .unwrap_err()
                .code(),
            1002,
            "unmasked"
        );
        assert_eq!(
            Decoder::new()
                .feed(&client(true, 3, b""))
                .unwrap_err()
                .code(),
            1002,
            "opcode"
        );
        assert_eq!(
            Decoder::new()
                .feed(&client(false, 9, b""))
                .unwrap_err()
                .code(),
            1002,
            "fragmented ping"
        );
        assert_eq!(
            Decoder::new()
                .feed(&client(true, 9, &[0; 126]))
                .unwrap_err()
                .code(),
            1002
        );
        assert_eq!(
            Decoder::new()
                .feed(&client(true, 1, &[0xff]))
                .unwrap_err()
                .code(),
            1007
        );
        assert_eq!(
            Decoder::new()
                .feed(&client(true, 0, b"x"))
                .unwrap_err()
                .code(),
            1002
        );
        let mut big = client(true, 2, &[]);
        big[1] = 0x80 | 127;
        big.splice(2..2, (MAX_MESSAGE as u64 + 1).to_be_bytes());
        assert_eq!(Decoder::new().feed(&big).unwrap_err().code(), 1009);
        let close = client(true, 8, &[0x03, 0xe8, b'b', b'y', b'e']);
        assert_eq!(
            Decoder::new().feed(&close).unwrap().unwrap().1,
            Some(Message::Close(Some(1000), "bye".into()))
        );
    }

    #[test]
    fn server_frames_are_unmasked_with_the_shortest_length() {
        let mut out = Vec::new();
        encode(&mut out, Opcode::Text, b"ok");
        assert_eq!(out, [0x81, 2, b'o', b'k']);
        out.clear();
        encode(&mut out, Opcode::Binary, &[0; 300]);
        assert_eq!(&out[..4], &[0x82, 126, 1, 44]);
        out.clear();
        encode(&mut out, Opcode::Binary, &[0; 70_000]);
        assert_eq!(&out[..2], &[0x82, 127]);
        out.clear();
        encode_close(&mut out, 1009, "too big");
        assert_eq!(&out[..4], &[0x88, 9, 0x03, 0xf1]);
    }

    #[test]
    fn a_session_answers_pings_echoes_close_and_closes_on_errors() {
        let mut s = Session::new(b"HTTP/1.1 101 ...\r\n\r\n".to_vec());
        let n = s.output().len();
        s.consumed(n);
        let mut input = client(true, 0x9, b"hi");
        input.extend(client(true, 0x1, b"ls\n"));
        input.extend(client(true, 0x2, &[1, 2]));
        assert_eq!(s.receive(&input), [b"ls\n".to_vec(), vec![1, 2]]);
        assert_eq!(
            s.output(),
            [0x8a, 2, b'h', b'i'],
            "a pong with the ping's bytes"
        );
        s.consumed(4);
        assert!(s.send(Opcode::Text, b"{}"));
        s.consumed(4);
        assert_eq!(
            s.receive(&client(true, 0x8, &1000u16.to_be_bytes())),
            Vec::<Vec<u8>>::new()
        );
        assert!(!s.finished(), "the echoed close is still to write");
        assert!(!s.send(Opcode::Text, b"late"));
        let n = s.output().len();
        s.consumed(n);
        assert!(s.finished());
        // A protocol error: close 1002, nothing read after it.
        let mut s = Session::new(Vec::new());
        let mut bad = client(false, 0x9, b"x");
        bad.extend(client(true, 0x1, b"after"));
        assert!(s.receive(&bad).is_empty());
        assert_eq!(&s.output()[..4], &[0x88, 2, 0x03, 0xea]);
        // A peer that never reads is noticed.
        let mut s = Session::new(Vec::new());
        while !s.stalled() {
            s.send(Opcode::Binary, &[0; 65536]);
        }
    }

    #[test]
    fn handshakes_and_close_codes_as_rfc_6455_requires() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        assert!(check_handshake(key, Some("13")).is_ok());
        assert_eq!(check_handshake(key, Some("8")).unwrap_err().status(), 426);
        assert_eq!(check_handshake(key, None).unwrap_err().status(), 426);
        assert_eq!(check_handshake("", Some("13")).unwrap_err().status(), 400);
        assert_eq!(
            check_handshake("c2hvcnQ=", Some("13"))
                .unwrap_err()
                .status(),
            400
        );
        for (code, ok) in [
            (1000, true),
            (1001, true),
            (1011, true),
            (3000, true),
            (4999, true),
            (999, false),
            (1004, false),
            (1005, false),
            (1006, false),
            (1015, false),
            (2999, false),
            (5000, false),
        ] {
            let mut s = Session::new(Vec::new());
            let payload = u16::to_be_bytes(code);
            s.receive(&client(true, 8, &payload));
            let expect = u16::to_be_bytes(if ok { code } else { 1002 });
            assert_eq!(s.output(), [0x88, 2, expect[0], expect[1]], "{code}");
        }
    }
}
