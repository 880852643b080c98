//! What machine a run was on (host, CPU, cores, OS, kernel), for `run.json` and for keying
//! what is compiled per machine.

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct SystemInfo {
    pub host: String,
    pub cpu: String,
    pub cores: usize,
    pub os: String,
    pub kernel: String,
    pub arch: &'static str,
}

impl SystemInfo {
    /// Reads what Linux offers; fields it cannot read are empty.
    pub fn read() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name") || l.starts_with("Model"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default();
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default();
        Self {
            host: read("/proc/sys/kernel/hostname").trim().to_string(),
            cpu,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            os,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            arch: std::env::consts::ARCH,
        }
    }
}
