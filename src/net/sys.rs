//! What the gateway needs from the operating system before glommio starts, checked with clear
//! messages instead of glommio's panics: locked memory, io_uring, and the signals that stop it.
#![allow(unsafe_code)]

use std::io;

/// glommio refuses to start below this soft RLIMIT_MEMLOCK.
pub const MIN_MEMLOCK: u64 = 512 * 1024;

/// Raises the soft RLIMIT_MEMLOCK to the hard limit. Returns (soft before, soft after, hard).
pub fn raise_memlock() -> io::Result<(u64, u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass; it has the layout libc declares.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let before = r.rlim_cur;
    if r.rlim_cur < r.rlim_max {
        r.rlim_cur = r.rlim_max;
        // SAFETY: setrlimit reads the struct we pass; raising soft up to hard needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &r) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((before, r.rlim_cur, r.rlim_max))
}

/// Raises the soft limit of open files to the hard limit (every connection is a descriptor).
/// Returns the new soft limit.
pub fn raise_nofile() -> io::Result<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: as in raise_memlock.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if r.rlim_cur < r.rlim_max {
        r.rlim_cur = r.rlim_max;
        // SAFETY: as in raise_memlock.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(r.rlim_cur)
}

/// Checks that io_uring can be used by creating (and closing) a small ring. glommio would
/// otherwise panic with a message that does not say what is wrong.
pub fn probe_io_uring() -> Result<(), String> {
    // struct io_uring_params is 120 bytes; zeroed is a valid request.
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup(2) takes an entry count and a pointer to io_uring_params, which
    // the buffer above is large enough to hold; it returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        let why = match e.raw_os_error() {
            Some(libc::ENOSYS) => "the kernel has no io_uring (Linux 5.8 or later is needed) or seccomp blocks it",
            Some(libc::EPERM) => "io_uring is not permitted: check sysctl kernel.io_uring_disabled (must be 0) or the container's seccomp profile",
            Some(libc::ENOMEM) => "the locked-memory limit is too low for an io_uring (raise RLIMIT_MEMLOCK, see tuning/README.md)",
            _ => "io_uring_setup failed",
        };
        return Err(format!("io_uring unavailable: {why} ({e})"));
    }
    // SAFETY: fd is a descriptor we own and use nowhere else.
    unsafe { libc::close(fd as i32) };
    Ok(())
}

/// The reload signal.
pub const SIGHUP: i32 = libc::SIGHUP;
pub const SIGUSR1: i32 = libc::SIGUSR1;

/// Blocks SIGINT, SIGTERM, SIGHUP and SIGUSR1 in this thread and the threads it starts afterwards, and
/// returns a function that waits for one of them (call it on a dedicated thread).
pub fn block_stop_signals() -> impl Fn() -> i32 + Send {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it; pthread_sigmask
    // changes only this thread's mask.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    move || {
        let mut sig: libc::c_int = 0;
        // SAFETY: sigwait waits for a signal of the initialised set and stores its number.
        unsafe { libc::sigwait(&set, &mut sig) };
        sig
    }
}

/// Whether `path` lies on tmpfs, which has no O_DIRECT (the message log says so at start).
pub fn on_tmpfs(path: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs is plain old data, for which all zeros is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a writable statfs of libc's layout.
    let r = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    r == 0 && st.f_type as i64 == libc::TMPFS_MAGIC
}

/// Ignores SIGXFSZ, so that a write past RLIMIT_FSIZE fails with EFBIG (which the message
/// log reports and survives) instead of killing the process.
pub fn ignore_sigxfsz() {
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
}

/// Serves allocations of 256 KiB and more from mappings of their own, given back to the
/// system when freed, unless the operator set glibc's `MALLOC_MMAP_THRESHOLD_`. Such blocks
/// are the flow's tables, grown by a backlog (a million messages held for an ESME): glibc's
/// default raises its threshold each time it frees a mapped block, so the tables that
/// replaced smaller ones come from the heap and what they leave when shrunk or replaced
/// stays in the process (measured: 25-35 octets per held message). Nothing on the per-message
/// path allocates that much. Call before the shards start.
pub fn return_large_blocks() {
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; any value is accepted or refused.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
    }
}

/// Opens (creating) `path` and takes an exclusive lock on it, without waiting; the lock lasts
/// as long as the returned file is open (and ends with the process, however it ends).
pub fn lock_exclusive(path: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::unix::io::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        return Err(if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is locked", path.display()),
            )
        } else {
            e
        });
    }
    Ok(f)
}

/// Whether the block device holding `path` completes polled IO (its queue's `io_poll` in
/// sysfs); `None` when that cannot be told (tmpfs, overlay, no sysfs).
pub fn device_polls_io(path: &std::path::Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path).ok()?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let dir = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
    // A partition's queue is its disk's.
    let read = |d: &std::path::Path| std::fs::read_to_string(d.join("queue/io_poll")).ok();
    let v = read(&dir).or_else(|| dir.parent().and_then(read))?;
    Some(v.trim() == "1")
}

/// A listening socket opened with std (no SO_REUSEPORT, unlike glommio's own listeners: a
/// second process on the address fails instead of sharing it) handed to glommio.
pub fn glommio_listener(l: std::net::TcpListener) -> io::Result<glommio::net::TcpListener> {
    use std::os::fd::{FromRawFd, IntoRawFd};
    l.set_nonblocking(true)?;
    // SAFETY: the descriptor is a listening TCP socket this function owns and gives away.
    Ok(unsafe { glommio::net::TcpListener::from_raw_fd(l.into_raw_fd()) })
}

/// The CPUs this process may run on (its affinity mask: taskset, systemd `CPUAffinity`,
/// a cgroup cpuset), in order; empty if it cannot be read.
pub fn allowed_cpus() -> Vec<usize> {
    let mut ids: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Reads what a non-blocking socket holds now: `None` when it holds nothing (EAGAIN).
pub fn recv_now(fd: std::os::fd::RawFd, buf: &mut [u8]) -> Option<io::Result<usize>> {
    // SAFETY: `buf` is valid for writes of its length; MSG_DONTWAIT never blocks.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    if n >= 0 {
        return Some(Ok(n as usize));
    }
    let e = io::Error::last_os_error();
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => None,
        _ => Some(Err(e)),
    }
}
