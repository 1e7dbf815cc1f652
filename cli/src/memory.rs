//! How much memory this process has needed: the peak resident set, which a
//! finished pretraining run reports (so a user sees what a streamed folder
//! saves, and the tests check that it stays bounded).

/// The most physical memory this process has held at once, in bytes
/// (Linux's `VmHWM` in `/proc/self/status`); `None` where the system does
/// not say.
pub fn peak_resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_peak(&status)
}

/// The `VmHWM:` line of a `/proc/<pid>/status` text, in bytes.
fn parse_peak(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let mut words = line.split_whitespace().skip(1);
    let value: u64 = words.next()?.parse().ok()?;
    match words.next()? {
        "kB" => Some(value * 1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_read_from_the_status_text() {
        let status = "Name:\tbyol\nVmPeak:\t  900 kB\nVmHWM:\t    2048 kB\nVmRSS:\t 1024 kB\n";
        assert_eq!(parse_peak(status), Some(2048 * 1024));
        assert_eq!(parse_peak("Name:\tbyol\n"), None);
        assert_eq!(parse_peak("VmHWM:\t12 MB\n"), None);
        if cfg!(target_os = "linux") {
            assert!(peak_resident_bytes().unwrap() > 0);
        }
    }
}
