//! Starting and stopping the network's processes. They run in their own process group, so that
//! Ctrl-C in the terminal that ran `varde testnet up` does not stop the network, and they outlive
//! the command that started them. A pid is only acted on after /proc confirms that it is still
//! the process we started (pids are reused).

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::sys::signal::Signal;
use nix::sys::wait::WaitPidFlag;
use nix::unistd::Pid;

/// Starts `program args...` detached, appending its output to `log`; returns its pid.
pub fn spawn(program: &Path, args: &[&std::ffi::OsStr], log: &Path) -> anyhow::Result<u32> {
    let output = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open the log {}", log.display()))?;
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))?;
    Ok(child.id())
}

/// True when `pid` runs a command line that contains `marker` (a config path, say). A zombie
/// has an empty command line and counts as gone.
pub fn is_running(pid: u32, marker: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        text.contains(marker)
    })
}

fn signal(pid: u32, signal: Signal) -> anyhow::Result<()> {
    let pid = i32::try_from(pid).context("not a process id")?;
    match nix::sys::signal::kill(Pid::from_raw(pid), signal) {
        // A process that exited meanwhile is what we wanted anyway.
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(error) => Err(anyhow::anyhow!("cannot signal process {pid}: {error}")),
    }
}

/// Waits until the process is gone, up to `patience`.
fn wait_gone(pid: u32, marker: &str, patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    while is_running(pid, marker) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Collects the exit status of `pid` if this process started it, so that the validators a
/// long chaos run kills leave no zombies; any other pid is left alone.
fn reap(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
    }
}

/// SIGKILL, then waits until the process is gone.
pub fn kill(pid: u32, marker: &str) -> anyhow::Result<()> {
    if !is_running(pid, marker) {
        return Ok(());
    }
    signal(pid, Signal::SIGKILL)?;
    anyhow::ensure!(
        wait_gone(pid, marker, Duration::from_secs(10)),
        "process {pid} survived SIGKILL"
    );
    reap(pid);
    Ok(())
}

/// SIGSTOP: the process stops where it is; its peers' messages wait in the sockets.
pub fn pause(pid: u32, marker: &str) -> anyhow::Result<()> {
    if is_running(pid, marker) {
        signal(pid, Signal::SIGSTOP)?;
    }
    Ok(())
}

/// SIGCONT: a paused process goes on, and reads what arrived meanwhile.
pub fn resume(pid: u32, marker: &str) -> anyhow::Result<()> {
    if is_running(pid, marker) {
        signal(pid, Signal::SIGCONT)?;
    }
    Ok(())
}

/// SIGTERM, a grace period for a clean shutdown, then SIGKILL.
pub fn stop(pid: u32, marker: &str) -> anyhow::Result<()> {
    if !is_running(pid, marker) {
        return Ok(());
    }
    signal(pid, Signal::SIGTERM)?;
    // A paused process would hold the SIGTERM until it is continued.
    signal(pid, Signal::SIGCONT)?;
    if wait_gone(pid, marker, Duration::from_secs(10)) {
        reap(pid);
        return Ok(());
    }
    kill(pid, marker)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A spawned process is seen running under its marker, not under another, and is gone after
    // kill; its output goes to the log.
    #[test]
    fn spawn_detect_and_kill() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sleep.log");
        let pid = spawn(
            Path::new("/bin/sh"),
            &[
                "-c".as_ref(),
                "echo started; exec sleep 30 # varde-marker".as_ref(),
            ],
            &log,
        )
        .unwrap();
        // The shell's own command line already names `sleep 30`: wait for its output too, so
        // that the kill cannot land before the echo.
        let started = || {
            std::fs::read_to_string(&log).is_ok_and(|text| text.contains("started"))
                && is_running(pid, "sleep 30")
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !started() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(is_running(pid, "sleep 30"));
        assert!(!is_running(pid, "some other program"));
        kill(pid, "sleep 30").unwrap();
        assert!(!is_running(pid, "sleep 30"));
        assert!(std::fs::read_to_string(&log).unwrap().contains("started"));
    }
}
