//! Console proxy on the loop: the public telnet listener of each VM, its
//! clients, and the fan-out of what VPCS prints.

use super::{Entry, Server, would_block};
use crate::console::Outbox;
use crate::console::telnet::{GREETING, Session};
use crate::limits::{MAX_CONSOLE_CLIENTS, READ_BUDGET};
use mio::Interest;
use mio::net::TcpStream;
use std::io::{Read, Write};

/// One telnet client of a VM console.
pub(super) struct Client {
    stream: TcpStream,
    vm: usize,
    session: Session,
    outbox: Outbox,
    /// Close once the outbox is written (the client typed `disconnect`).
    closing: bool,
}

impl Server {
    pub(super) fn accept_console(&mut self, key: usize) {
        loop {
            let Some((_, listener)) = self.vms.get(key).and_then(|s| s.console_listener.as_ref())
            else {
                return;
            };
            let (stream, peer) = match listener.accept() {
                Ok(s) => s,
                Err(e) if would_block(&e) => return,
                Err(e) => {
                    // Out of descriptors: retry soon (see accept_http).
                    log::warn!("vm {}: console accept failed: {e}", self.vms[key].vm.id);
                    let at = std::time::Instant::now() + crate::limits::ACCEPT_RETRY;
                    self.timers
                        .schedule(at, super::TimerKey::ConsoleAccept(key));
                    return;
                }
            };
            if self.vms[key].clients.len() >= MAX_CONSOLE_CLIENTS {
                log::warn!(
                    "vm {}: console client {peer} refused: {MAX_CONSOLE_CLIENTS} attached",
                    self.vms[key].vm.id
                );
                continue;
            }
            self.attach(key, stream);
        }
    }

    fn attach(&mut self, key: usize, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let mut outbox = Outbox::default();
        outbox.push_raw(GREETING);
        let slot = &self.vms[key];
        if slot.proc.is_none() {
            let note = format!(
                "VPCS {} is not running; the console will show it once it starts.\r\n",
                slot.vm.name
            );
            outbox.push_output(note.as_bytes());
        }
        outbox.push_output(&slot.history.contents());
        let client = Client {
            stream,
            vm: key,
            session: Session::new(),
            outbox,
            closing: false,
        };
        let token = self.entries.insert(Entry::ConsoleClient(Box::new(client)));
        let Some(Entry::ConsoleClient(c)) = self.entries.get_mut(token) else {
            unreachable!()
        };
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut c.stream, mio::Token(token), interest)
        {
            log::warn!(
                "vm {}: cannot register console client: {e}",
                self.vms[key].vm.id
            );
            self.entries.remove(token);
            return;
        }
        self.vms[key].clients.push(token);
        log::debug!(
            "vm {}: console client {token} attached",
            self.vms[key].vm.id
        );
        self.flush_console_client(token);
    }

    fn client(&mut self, token: usize) -> Option<&mut Client> {
        match self.entries.get_mut(token) {
            Some(Entry::ConsoleClient(c)) => Some(c),
            _ => None,
        }
    }

    pub(super) fn on_console_client(&mut self, token: usize, readable: bool, writable: bool) {
        if writable {
            self.flush_console_client(token);
        }
        if readable {
            self.read_console_client(token);
        }
    }

    fn read_console_client(&mut self, token: usize) {
        let mut buf = [0u8; 4096];
        let mut total = 0;
        while total < READ_BUDGET {
            let Some(c) = self.client(token) else { return };
            if c.closing {
                return;
            }
            let n = match c.stream.read(&mut buf) {
                Ok(0) => return self.close_console_client(token),
                Ok(n) => n,
                Err(e) if would_block(&e) => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return self.close_console_client(token),
            };
            total += n;
            let vm = c.vm;
            let block_shell = self.shell_filtered(vm);
            let Some(c) = self.client(token) else { return };
            let input = c.session.feed(&buf[..n], block_shell);
            c.outbox.push_raw(&input.to_client);
            c.closing = input.disconnect;
            if !input.to_vpcs.is_empty() {
                self.console_input(vm, &input.to_vpcs);
            }
            self.flush_console_client(token);
        }
        self.again.push(token);
    }

    /// Write the client's outbox; close it when it asked to leave and all is written.
    fn flush_console_client(&mut self, token: usize) {
        let Some(c) = self.client(token) else { return };
        while !c.outbox.pending().is_empty() {
            match c.stream.write(c.outbox.pending()) {
                Ok(0) => return self.close_console_client(token),
                Ok(n) => c.outbox.consumed(n),
                Err(e) if would_block(&e) => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return self.close_console_client(token),
            }
        }
        if c.closing {
            self.close_console_client(token);
        }
    }

    pub(super) fn close_console_client(&mut self, token: usize) {
        let Some(Entry::ConsoleClient(mut c)) = self.entries.try_remove(token) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut c.stream);
        if let Some(slot) = self.vms.get_mut(c.vm) {
            slot.clients.retain(|&t| t != token);
            log::debug!("vm {}: console client {token} detached", slot.vm.id);
        }
    }

    /// Send console output to every client; one that has fallen too far
    /// behind is dropped so that it cannot hold the others back.
    pub(super) fn broadcast(&mut self, key: usize, data: &[u8]) {
        for token in self.vms[key].clients.clone() {
            let Some(c) = self.client(token) else {
                continue;
            };
            if c.outbox.push_output(data) {
                self.flush_console_client(token);
            } else {
                log::warn!(
                    "vm {}: console client {token} is not reading: dropped",
                    self.vms[key].vm.id
                );
                self.close_console_client(token);
            }
        }
    }
}
