//! Classic pcap files (sans-IO): the global header and one record header
//! per frame, `DLT_EN10MB`, microsecond timestamps, little-endian.
//!
//! Written here: the format is two fixed little structures (24 and 16
//! bytes), which a crate would only wrap; the tests check them against
//! the layout `tcpdump -r` reads (and the integration tests run tcpdump).

use std::time::{Duration, SystemTime};

/// `DLT_EN10MB`: Ethernet frames.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Longest frame kept per record.
pub const SNAPLEN: u32 = 65_535;

/// The 24-byte file header.
pub fn file_header() -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    // thiszone and sigfigs stay 0.
    h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
    h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    h
}

/// Append one record (header and frame, cut at [`SNAPLEN`]) to `out`.
pub fn push_record(out: &mut Vec<u8>, at: SystemTime, frame: &[u8]) {
    let t = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let kept = frame.len().min(SNAPLEN as usize);
    out.extend_from_slice(&(t.as_secs() as u32).to_le_bytes());
    out.extend_from_slice(&t.subsec_micros().to_le_bytes());
    out.extend_from_slice(&(kept as u32).to_le_bytes());
    out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    out.extend_from_slice(&frame[..kept]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_record_layout() {
        let h = file_header();
        assert_eq!(&h[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian magic");
        assert_eq!(&h[20..], &[1, 0, 0, 0]);
        let mut out = Vec::new();
        let at = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 250_000_000);
        push_record(&mut out, at, &[0xab; 60]);
        assert_eq!(out.len(), 16 + 60);
        assert_eq!(
            u32::from_le_bytes(out[0..4].try_into().unwrap()),
            1_700_000_000
        );
        assert_eq!(u32::from_le_bytes(out[4..8].try_into().unwrap()), 250_000);
        assert_eq!(u32::from_le_bytes(out[8..12].try_into().unwrap()), 60);
        let mut big = Vec::new();
        push_record(&mut big, at, &vec![0; 70_000]);
        assert_eq!(u32::from_le_bytes(big[8..12].try_into().unwrap()), SNAPLEN);
        assert_eq!(u32::from_le_bytes(big[12..16].try_into().unwrap()), 70_000);
    }
}
