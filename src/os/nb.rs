//! Non-blocking reads and writes, the way every socket of the loop is
//! read and written: one call, `EINTR` retried, the outcome as a value.

use std::io;

/// Whether an I/O error only means "try again later".
pub fn would_block(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::WouldBlock
}

/// What one non-blocking read or write did.
pub enum Moved {
    /// This many bytes.
    Bytes(usize),
    /// Nothing now (`WouldBlock`): readiness will tell.
    Later,
    /// End of stream, or the peer is gone.
    Closed,
}

/// One read, retried on `EINTR`.
pub fn read_some(mut from: impl io::Read, buf: &mut [u8]) -> Moved {
    loop {
        return match from.read(buf) {
            Ok(0) => Moved::Closed,
            Ok(n) => Moved::Bytes(n),
            Err(e) if would_block(&e) => Moved::Later,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => Moved::Closed,
        };
    }
}

/// One write, retried on `EINTR`.
pub fn write_some(mut to: impl io::Write, data: &[u8]) -> Moved {
    loop {
        return match to.write(data) {
            Ok(0) => Moved::Closed,
            Ok(n) => Moved::Bytes(n),
            Err(e) if would_block(&e) => Moved::Later,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => Moved::Closed,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_of_a_socket_pair() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 8];
        assert!(matches!(read_some(&a, &mut buf), Moved::Later));
        assert!(matches!(write_some(&b, b"hi"), Moved::Bytes(2)));
        assert!(matches!(read_some(&a, &mut buf), Moved::Bytes(2)));
        drop(b);
        assert!(matches!(read_some(&a, &mut buf), Moved::Closed));
        assert!(matches!(write_some(&a, b"x"), Moved::Closed));
    }
}
