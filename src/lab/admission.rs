//! Which API connections the server takes (plain data, no I/O): at most a
//! cap in all, and at most a share of it from one client address, so one
//! address cannot take every slot. The reactor asks before it keeps a
//! connection and says when one goes.

use crate::limits::ADDRESS_SHARE;
use std::collections::HashMap;
use std::net::IpAddr;

/// Open API connections, in all and by client address.
#[derive(Debug)]
pub struct Admission {
    cap: usize,
    open: usize,
    by_address: HashMap<IpAddr, usize>,
}

impl Admission {
    /// At most `cap` connections.
    pub fn new(cap: usize) -> Self {
        Admission {
            cap,
            open: 0,
            by_address: HashMap::new(),
        }
    }

    /// Take a connection from `ip`, or say (for its 503) which limit it met.
    pub fn admit(&mut self, ip: IpAddr) -> Result<(), String> {
        let cap = self.cap;
        let share = (cap * ADDRESS_SHARE.0 / ADDRESS_SHARE.1).max(1);
        let held = self.by_address.get(&ip).copied().unwrap_or(0);
        if self.open >= cap {
            return Err(format!(
                "{cap} connections are open, the most this server takes (--max-connections); try again later"
            ));
        }
        if held >= share {
            return Err(format!(
                "{ip} holds {share} connections, the most one address may ({}/{} of --max-connections {cap}); close some first",
                ADDRESS_SHARE.0, ADDRESS_SHARE.1
            ));
        }
        self.open += 1;
        *self.by_address.entry(ip).or_default() += 1;
        Ok(())
    }

    /// A connection from `ip` closed (or became a websocket).
    pub fn gone(&mut self, ip: IpAddr) {
        self.open = self.open.saturating_sub(1);
        if let Some(n) = self.by_address.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.by_address.remove(&ip);
            }
        }
    }

    /// Connections open.
    pub fn open(&self) -> usize {
        self.open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_gets_three_quarters_and_the_cap_holds_for_all() {
        let (a, b) = (IpAddr::from([127, 0, 0, 1]), IpAddr::from([127, 0, 0, 2]));
        let mut m = Admission::new(4);
        for _ in 0..3 {
            m.admit(a).unwrap();
        }
        assert!(m.admit(a).unwrap_err().contains("holds 3 connections"));
        m.admit(b).unwrap();
        assert!(m.admit(b).unwrap_err().contains("--max-connections"));
        m.gone(a);
        m.admit(a).unwrap();
        assert_eq!(m.open(), 4);
        for _ in 0..4 {
            m.gone(a);
        }
        m.gone(b);
        assert_eq!((m.open(), m.by_address.len()), (0, 0));
    }
}
