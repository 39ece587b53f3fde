//! Telnet option handling and line tracking for console clients (sans-IO).
//!
//! [`Session::feed`] takes what a client sent and splits it into bytes for
//! VPCS, bytes to send back to that client (option replies), and whether the
//! client asked to leave. Line endings are normalised to one `\r`, which is
//! what VPCS's line editor takes as Enter, whether the client is a telnet in
//! character mode (`\r\0`, `\r\n`) or `nc` (`\n`).

use crate::limits::MAX_CONSOLE_LINE;

/// Telnet "interpret as command".
pub const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const SE: u8 = 240;
/// Telnet option: echo.
pub const ECHO: u8 = 1;
/// Telnet option: suppress go-ahead.
pub const SGA: u8 = 3;

/// Sent to every new client: the server echoes (VPCS does) and no go-ahead,
/// which puts a real telnet into character mode like a VPCS daemon would.
pub const GREETING: &[u8] = &[IAC, WILL, ECHO, IAC, WILL, SGA, IAC, DO, SGA];

/// Ctrl-U: clears the line we track for a client. VPCS's own editor ignores
/// it, so lines are erased with backspaces (see [`erase_line`]).
const KILL_LINE: u8 = 0x15;
/// Backspace, which VPCS's line editor honours (and ignores on an empty line).
const BACKSPACE: u8 = 0x08;
/// Cursor right, as VPCS's editor understands it.
const RIGHT: &[u8] = b"\x1b[C";

/// Bytes that erase a line of `len` characters in VPCS's editor. When the
/// line was edited in ways we could not follow (`len` is `None`), move to its
/// end and erase as much as a line can hold.
pub fn erase_line(len: Option<usize>, out: &mut Vec<u8>) {
    let n = match len {
        Some(n) => n,
        None => {
            for _ in 0..MAX_CONSOLE_LINE {
                out.extend_from_slice(RIGHT);
            }
            MAX_CONSOLE_LINE
        }
    };
    out.resize(out.len() + n, BACKSPACE);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Data,
    Cr,
    Iac,
    Verb(u8),
    Sub,
    SubIac,
}

/// What one client's input amounted to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Input {
    /// Bytes for VPCS.
    pub to_vpcs: Vec<u8>,
    /// Bytes for this client only.
    pub to_client: Vec<u8>,
    /// The client typed `disconnect`: close its session only.
    pub disconnect: bool,
}

/// One console client's protocol state.
#[derive(Debug, Default)]
pub struct Session {
    state: State,
    replied: [u64; 4],
    line: Vec<u8>,
    /// The line was edited with keys we cannot follow (history, completion).
    line_unknown: bool,
}

impl Session {
    /// A fresh client.
    pub fn new() -> Self {
        Self::default()
    }

    /// Process `input`. With `block_shell`, a line starting with `!` is erased
    /// instead of run (the fallback where the kernel cannot confine VPCS).
    pub fn feed(&mut self, input: &[u8], block_shell: bool) -> Input {
        let mut out = Input::default();
        for &b in input {
            if out.disconnect {
                break;
            }
            self.byte(b, block_shell, &mut out);
        }
        out
    }

    fn byte(&mut self, b: u8, block_shell: bool, out: &mut Input) {
        match (self.state, b) {
            (State::Data | State::Cr, IAC) => self.state = State::Iac,
            (State::Cr, b'\n' | 0) => self.state = State::Data,
            (State::Data | State::Cr, b'\r' | b'\n') => {
                self.state = if b == b'\r' { State::Cr } else { State::Data };
                self.enter(block_shell, out);
            }
            (State::Data | State::Cr, _) => {
                self.state = State::Data;
                self.track(b);
                out.to_vpcs.push(b);
            }
            (State::Iac, IAC) => {
                self.state = State::Data;
                self.line_unknown = true;
                out.to_vpcs.push(IAC);
            }
            (State::Iac, WILL | WONT | DO | DONT) => self.state = State::Verb(b),
            (State::Iac, SB) => self.state = State::Sub,
            (State::Iac, _) => self.state = State::Data,
            (State::Verb(verb), opt) => {
                self.state = State::Data;
                self.negotiate(verb, opt, out);
            }
            (State::Sub, IAC) => self.state = State::SubIac,
            (State::Sub, _) => {}
            (State::SubIac, SE) => self.state = State::Data,
            (State::SubIac, _) => self.state = State::Sub,
        }
    }

    /// Answer each option once, so two agreeing peers never loop.
    fn negotiate(&mut self, verb: u8, opt: u8, out: &mut Input) {
        let reply = match (verb, opt) {
            (DO, ECHO | SGA) | (WILL, SGA) | (WONT | DONT, _) => return,
            (DO, _) => WONT,
            (WILL, _) => DONT,
            _ => return,
        };
        let (word, bit) = (opt as usize / 64, 1u64 << (opt % 64));
        if self.replied[word] & bit == 0 {
            self.replied[word] |= bit;
            out.to_client.extend_from_slice(&[IAC, reply, opt]);
        }
    }

    fn track(&mut self, b: u8) {
        match b {
            0x20..=0x7e if self.line.len() < MAX_CONSOLE_LINE => self.line.push(b),
            0x20..=0x7e => self.line_unknown = true,
            0x08 | 0x7f => {
                self.line.pop();
            }
            KILL_LINE | 0x03 => {
                self.line.clear();
                self.line_unknown = false;
            }
            _ => self.line_unknown = true,
        }
    }

    fn enter(&mut self, block_shell: bool, out: &mut Input) {
        let line = std::mem::take(&mut self.line);
        let known = !std::mem::replace(&mut self.line_unknown, false);
        let text = String::from_utf8_lossy(&line);
        let cmd = text.trim();
        let len = known.then_some(line.len());
        if known && cmd == "disconnect" {
            erase_line(len, &mut out.to_vpcs);
            out.to_client.extend_from_slice(b"\r\n\r\nGood-bye\r\n");
            out.disconnect = true;
        } else if block_shell && (cmd.starts_with('!') || !known) {
            erase_line(len, &mut out.to_vpcs);
            out.to_client.extend_from_slice(
                b"\r\nHost shell commands are disabled on this server (line not run).\r\n",
            );
            out.to_vpcs.push(b'\r');
        } else {
            out.to_vpcs.push(b'\r');
        }
    }
}

/// Escape bytes going to a telnet client (a literal 255 is doubled).
pub fn escape_into(data: &[u8], out: &mut Vec<u8>) {
    let mut rest = data;
    while let Some(i) = rest.iter().position(|&b| b == IAC) {
        out.extend_from_slice(&rest[..=i]);
        out.push(IAC);
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_endings_become_one_cr() {
        for input in [
            &b"ip 1.2.3.4\r\n"[..],
            b"ip 1.2.3.4\r\0",
            b"ip 1.2.3.4\n",
            b"ip 1.2.3.4\r",
        ] {
            let mut s = Session::new();
            assert_eq!(s.feed(input, false).to_vpcs, b"ip 1.2.3.4\r", "{input:?}");
        }
        let mut s = Session::new();
        assert_eq!(s.feed(b"\r\n\r\n", false).to_vpcs, b"\r\r");
    }

    #[test]
    fn options_are_stripped_and_answered_once() {
        let mut s = Session::new();
        let i = s.feed(
            &[
                IAC, DO, ECHO, IAC, WILL, 31, b'a', IAC, SB, 24, 0, b'x', IAC, SE, b'b',
            ],
            false,
        );
        assert_eq!(i.to_vpcs, b"ab");
        assert_eq!(i.to_client, vec![IAC, DONT, 31]);
        assert!(
            s.feed(&[IAC, WILL, 31], false).to_client.is_empty(),
            "no reply loop"
        );
        assert_eq!(s.feed(&[IAC, DO, 24], false).to_client, vec![IAC, WONT, 24]);
        assert_eq!(s.feed(&[IAC, IAC], false).to_vpcs, vec![IAC]);
    }

    #[test]
    fn options_split_across_reads() {
        let mut s = Session::new();
        let mut all = Input::default();
        for b in [IAC, WILL, 31, b'x', b'\r', 0] {
            let i = s.feed(&[b], false);
            all.to_vpcs.extend(i.to_vpcs);
            all.to_client.extend(i.to_client);
        }
        assert_eq!(
            (all.to_vpcs, all.to_client),
            (b"x\r".to_vec(), vec![IAC, DONT, 31])
        );
    }

    #[test]
    fn disconnect_closes_only_this_session_and_erases_the_line() {
        let mut s = Session::new();
        let i = s.feed(b"disconnect\r\nip 1.1.1.1\r", false);
        assert!(i.disconnect);
        assert_eq!(
            i.to_vpcs,
            b"disconnect\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08"
        );
        assert!(String::from_utf8_lossy(&i.to_client).contains("Good-bye"));
        let mut s = Session::new();
        assert!(
            s.feed(b"disconnectx\x08\r", false).disconnect,
            "backspace is followed"
        );
        assert!(!Session::new().feed(b"echo disconnect\r", false).disconnect);
    }

    #[test]
    fn shell_lines_are_erased_when_blocked() {
        let mut s = Session::new();
        let i = s.feed(b"! touch /tmp/x\r", true);
        let mut want = b"! touch /tmp/x".to_vec();
        want.extend_from_slice(&[BACKSPACE; 14]);
        want.push(b'\r');
        assert_eq!(i.to_vpcs, want);
        let i = s.feed(b"! touch /tmp/x\r", false);
        assert_eq!(i.to_vpcs, b"! touch /tmp/x\r");
        // History recall (escape sequences) cannot be followed: refused when blocking.
        let i = s.feed(b"\x1b[A\r", true);
        assert!(i.to_vpcs.ends_with(&[BACKSPACE, BACKSPACE, b'\r']));
        assert!(
            i.to_vpcs.windows(3).any(|w| w == RIGHT),
            "moves to the end first"
        );
    }

    #[test]
    fn escape_doubles_iac() {
        let mut out = Vec::new();
        escape_into(&[1, IAC, 2, IAC], &mut out);
        assert_eq!(out, vec![1, IAC, IAC, 2, IAC, IAC]);
    }
}
