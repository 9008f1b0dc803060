//! Sending POSIX signals to servers the tests started (mariadbd nodes, rwproxy).

use std::path::Path;

use rustix::process::{kill_process, Pid, Signal};

use crate::error::{Result, TestkitError};

/// The signals tests use to break or poke a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestSignal {
    /// SIGKILL: die now, no cleanup.
    Kill,
    /// SIGTERM: orderly shutdown.
    Term,
    /// SIGSTOP: freeze (the process keeps its sockets but never answers).
    Stop,
    /// SIGCONT: resume a frozen process.
    Cont,
    /// SIGHUP: rwproxy reloads its configuration.
    Hup,
}

impl TestSignal {
    fn name(self) -> &'static str {
        match self {
            TestSignal::Kill => "SIGKILL",
            TestSignal::Term => "SIGTERM",
            TestSignal::Stop => "SIGSTOP",
            TestSignal::Cont => "SIGCONT",
            TestSignal::Hup => "SIGHUP",
        }
    }

    fn raw(self) -> Signal {
        match self {
            TestSignal::Kill => Signal::KILL,
            TestSignal::Term => Signal::TERM,
            TestSignal::Stop => Signal::STOP,
            TestSignal::Cont => Signal::CONT,
            TestSignal::Hup => Signal::HUP,
        }
    }
}

/// Send `signal` to `pid`.
pub fn send_signal(pid: i32, signal: TestSignal) -> Result<()> {
    let target = Pid::from_raw(pid).ok_or_else(|| TestkitError::Signal {
        signal: signal.name(),
        pid,
        reason: "not a valid process id".to_string(),
    })?;
    kill_process(target, signal.raw()).map_err(|errno| TestkitError::Signal {
        signal: signal.name(),
        pid,
        reason: errno.to_string(),
    })
}

/// Read the process id that a server wrote to its pid file.
pub fn read_pid_file(path: &Path) -> Result<i32> {
    let text = std::fs::read_to_string(path).map_err(|source| TestkitError::File {
        action: "reading pid file",
        path: path.to_path_buf(),
        source,
    })?;
    let trimmed = text.trim();
    match trimmed.parse::<i32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => Err(TestkitError::Protocol(format!(
            "pid file {} holds {trimmed:?}, not a process id",
            path.display()
        ))),
    }
}

/// True while a process with this id exists (zombies included).
pub fn process_exists(pid: i32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}
