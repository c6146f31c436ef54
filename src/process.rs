//! Facts about this process that the kernel keeps (Linux `/proc`).

/// Resident set size in KiB (`VmRSS` of `/proc/self/status`); `None` where `/proc` is missing.
/// Served as `process_resident_memory_bytes` on `/metrics`, and read by the leak test and the
/// benches that report memory per call.
pub fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_a_plausible_resident_set() {
        let kib = super::resident_kib().expect("Linux /proc");
        assert!(kib > 1024, "{kib} KiB");
    }
}
