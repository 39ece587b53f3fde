//! Ethernet II and IEEE 802.1Q framing (sans-IO): the addresses and the
//! VLAN tag of a frame, and adding or removing a tag. Every accessor checks
//! the length first and never panics on a short frame.

/// A MAC address.
pub type Mac = [u8; 6];

/// The 802.1Q tag protocol identifier.
pub const TPID_8021Q: u16 = 0x8100;
/// Smallest frame with addresses and an EtherType.
pub const MIN_HEADER: usize = 14;

/// The destination address.
pub fn dst(frame: &[u8]) -> Option<Mac> {
    frame.get(0..6)?.try_into().ok()
}

/// The source address.
pub fn src(frame: &[u8]) -> Option<Mac> {
    frame.get(6..12)?.try_into().ok()
}

/// Broadcast and multicast addresses (the group bit).
pub fn is_group(mac: &Mac) -> bool {
    mac[0] & 1 == 1
}

/// The VLAN id of an 802.1Q-tagged frame, `None` when untagged.
pub fn vlan(frame: &[u8]) -> Option<u16> {
    let tpid = u16::from_be_bytes(frame.get(12..14)?.try_into().ok()?);
    let tci = u16::from_be_bytes(frame.get(14..16)?.try_into().ok()?);
    (tpid == TPID_8021Q && frame.len() >= MIN_HEADER + 4).then_some(tci & 0x0fff)
}

/// The frame with an 802.1Q tag for `vid` inserted after the addresses
/// (outside any tag it already has: QinQ).
pub fn push_tag(frame: &[u8], vid: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(frame.len() + 4);
    let at = frame.len().min(12);
    out.extend_from_slice(&frame[..at]);
    out.extend_from_slice(&TPID_8021Q.to_be_bytes());
    out.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    out.extend_from_slice(&frame[at..]);
    out
}

/// The frame without its outer 802.1Q tag (as is when untagged).
pub fn pop_tag(frame: &[u8]) -> Vec<u8> {
    if vlan(frame).is_none() {
        return frame.to_vec();
    }
    let mut out = Vec::with_capacity(frame.len() - 4);
    out.extend_from_slice(&frame[..12]);
    out.extend_from_slice(&frame[16..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ARP request from 00:50:79:66:68:00 for 10.0.0.2, untagged.
    pub(crate) static ARP: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x50, 0x79, 0x66, 0x68, 0x00, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x00, 0x50, 0x79, 0x66, 0x68, 0x00, 10, 0, 0, 1,
        0, 0, 0, 0, 0, 0, 10, 0, 0, 2,
    ];

    #[test]
    fn addresses_and_tags_of_a_fixture() {
        assert_eq!(dst(&ARP), Some([0xff; 6]));
        assert_eq!(src(&ARP), Some([0x00, 0x50, 0x79, 0x66, 0x68, 0x00]));
        assert!(is_group(&dst(&ARP).unwrap()) && !is_group(&src(&ARP).unwrap()));
        assert_eq!(vlan(&ARP), None);
        let tagged = push_tag(&ARP, 20);
        assert_eq!(&tagged[12..16], &[0x81, 0x00, 0x00, 20]);
        assert_eq!(vlan(&tagged), Some(20));
        assert_eq!(pop_tag(&tagged), ARP.to_vec());
        let qinq = push_tag(&tagged, 300);
        assert_eq!((vlan(&qinq), vlan(&pop_tag(&qinq))), (Some(300), Some(20)));
    }

    #[test]
    fn short_frames_never_panic() {
        for n in 0..20 {
            let f = vec![0x81; n];
            let _ = (dst(&f), src(&f), vlan(&f), pop_tag(&f), push_tag(&f, 1));
        }
        assert_eq!(vlan(&[0u8; 15]), None);
    }
}
