//! The host's load, read from `/proc` and `statvfs`, for `/statistics` and
//! the notification channel's `ping`. The parsers are pure (and tested);
//! [`Meter`] keeps the previous CPU sample, as `psutil.cpu_percent` does,
//! so each reading covers the time since the last one.

use crate::api::answer::{Load, Machine, Statistics};
use std::path::Path;

/// CPU time counters from `/proc/stat`'s first line: (busy, total) jiffies.
pub fn parse_cpu(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 4 {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest is in user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Memory and swap from `/proc/meminfo`, in bytes:
/// (total, available, free, swap total, swap free).
pub fn parse_meminfo(meminfo: &str) -> Option<(u64, u64, u64, u64, u64)> {
    let field = |name: &str| -> Option<u64> {
        let line = meminfo.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line[name.len()..].split_whitespace().next()?.parse().ok()?;
        Some(kib * 1024)
    };
    let total = field("MemTotal:")?;
    let free = field("MemFree:")?;
    let available = field("MemAvailable:").unwrap_or(free);
    Some((
        total,
        available,
        free,
        field("SwapTotal:").unwrap_or(0),
        field("SwapFree:").unwrap_or(0),
    ))
}

/// The 1, 5 and 15 minute load averages from `/proc/loadavg`.
pub fn parse_loadavg(loadavg: &str) -> Option<[f64; 3]> {
    let mut it = loadavg.split_whitespace().map(|x| x.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// `part` of `whole` in percent, rounded to one decimal, within 0–100.
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    let p = part as f64 * 100.0 / whole as f64;
    (p.clamp(0.0, 100.0) * 10.0).round() / 10.0
}

/// Reads the host's load; remembers the last CPU sample.
#[derive(Debug, Default)]
pub struct Meter {
    last_cpu: Option<(u64, u64)>,
    /// The machine, read once: CPUs, memory and the disk's size do not
    /// change while nanolab runs (a capabilities request reads no file).
    machine: Option<Machine>,
}

impl Meter {
    /// CPU busy percent since the last call (since boot on the first).
    pub fn cpu_percent(&mut self) -> f64 {
        let Some(now) = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| parse_cpu(&s))
        else {
            return 0.0;
        };
        let (busy0, total0) = self.last_cpu.replace(now).unwrap_or((0, 0));
        percent(now.0.saturating_sub(busy0), now.1.saturating_sub(total0))
    }

    /// CPU and memory in use, in percent: the notification channel's ping.
    pub fn load(&mut self) -> Load {
        let mem = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| parse_meminfo(&s));
        Load {
            cpu_usage_percent: self.cpu_percent(),
            memory_usage_percent: mem.map_or(0.0, |(t, a, ..)| percent(t - a.min(t), t)),
            disk_usage_percent: 0.0,
        }
    }

    /// [`machine`], read the first time only.
    pub fn machine(&mut self, dir: &Path) -> Machine {
        *self.machine.get_or_insert_with(|| machine(dir))
    }

    /// Everything `/statistics` reports; the disk is the one holding `dir`.
    pub fn statistics(&mut self, dir: &Path) -> Statistics {
        let load = self.load();
        let (total, available, _free, swap_total, swap_free) =
            std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|s| parse_meminfo(&s))
                .unwrap_or_default();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let loadavg = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| parse_loadavg(&s))
            .unwrap_or_default()
            .map(|l| (l / cpus * 1000.0).round() / 10.0);
        let disk = disk_percent(dir);
        Statistics {
            memory_total: total,
            memory_free: available,
            memory_used: total - available.min(total),
            swap_total,
            swap_free,
            swap_used: swap_total - swap_free.min(swap_total),
            cpu_usage_percent: load.cpu_usage_percent,
            memory_usage_percent: load.memory_usage_percent,
            swap_usage_percent: percent(swap_total - swap_free.min(swap_total), swap_total),
            disk_usage_percent: disk,
            load_average_percent: loadavg,
        }
    }
}

/// How full the disk holding `dir` is (the root's when `dir` is not
/// there), 0–100.
pub fn disk_percent(dir: &Path) -> f64 {
    crate::sys::disk_space(dir)
        .or_else(|_| crate::sys::disk_space(Path::new("/")))
        .map_or(0.0, |(t, avail)| percent(t - avail.min(t), t))
}

/// The machine as GNS3 3.0's capabilities describe it: logical CPUs,
/// physical memory, and the size of the disk holding `dir`.
pub fn machine(dir: &Path) -> Machine {
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| parse_meminfo(&s))
        .map_or(0, |(total, ..)| total);
    Machine {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory,
        disk_size: crate::sys::disk_space(dir)
            .or_else(|_| crate::sys::disk_space(Path::new("/")))
            .map_or(0, |(total, _)| total),
    }
}

/// The host's interfaces as GNS3 2.2 lists them: name, first IPv4 address
/// and netmask (or empty), MAC (or empty), and `tap` or `ethernet`.
pub fn interfaces() -> std::io::Result<Vec<crate::api::answer::Interface>> {
    let addrs = crate::sys::ipv4_addresses()?;
    Ok(crate::sys::interface_names()?
        .into_iter()
        .map(|name| {
            let (ip, mask) = addrs
                .iter()
                .find(|(n, ..)| *n == name)
                .map(|(_, ip, mask)| (ip.to_string(), mask.to_string()))
                .unwrap_or_default();
            let mac = std::fs::read_to_string(format!("/sys/class/net/{name}/address"))
                .map(|m| m.trim().to_string())
                .unwrap_or_default();
            crate::api::answer::Interface {
                // A TUN/TAP device has tun_flags, whatever its name.
                kind: if name.starts_with("tap")
                    || Path::new(&format!("/sys/class/net/{name}/tun_flags")).exists()
                {
                    "tap"
                } else {
                    "ethernet"
                },
                name,
                ip_address: ip,
                netmask: mask,
                mac_address: mac,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse() {
        let stat = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n";
        assert_eq!(parse_cpu(stat), Some((150, 1000)));
        let mi = "MemTotal:       1000 kB\nMemFree:         200 kB\nMemAvailable:    400 kB\nSwapTotal:         0 kB\nSwapFree:          0 kB\n";
        assert_eq!(parse_meminfo(mi), Some((1_024_000, 409_600, 204_800, 0, 0)));
        assert_eq!(
            parse_loadavg("0.50 1.00 2.25 1/100 42\n"),
            Some([0.5, 1.0, 2.25])
        );
        assert_eq!(parse_loadavg("x"), None);
        assert_eq!(percent(1, 3), 33.3);
        assert_eq!(percent(5, 0), 0.0);
        assert_eq!(percent(7, 5), 100.0);
    }

    #[test]
    fn real_readings_are_percentages() {
        let mut m = Meter::default();
        let s = m.statistics(Path::new("/"));
        assert!(s.memory_total > 0 && s.memory_used <= s.memory_total);
        for p in [
            s.cpu_usage_percent,
            s.memory_usage_percent,
            s.disk_usage_percent,
            s.swap_usage_percent,
        ] {
            assert!((0.0..=100.0).contains(&p), "{p}");
        }
        assert!(m.load().memory_usage_percent > 0.0);
    }
}
