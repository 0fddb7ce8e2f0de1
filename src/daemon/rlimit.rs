//! The daemon's process limits. The open-file limit: each connection to
//! the status API, each Docker call and each git fetch holds a file
//! descriptor; a distribution's default soft limit (1024) is low for that,
//! while the hard limit is usually far higher and may be had for the
//! asking. And malloc's arenas, which set how much freed memory an idle
//! daemon keeps.

/// Raises the soft RLIMIT_NOFILE to the hard limit; the soft limit after.
pub fn raise_nofile() -> std::io::Result<u64> {
    let mut lim = get()?;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit(2) with a struct that lives across the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(get()?.rlim_cur)
}

/// The soft open-file limit now.
pub fn nofile() -> std::io::Result<u64> {
    Ok(get()?.rlim_cur)
}

fn get() -> std::io::Result<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(lim)
}

/// Caps glibc's malloc arenas at two. By default each thread that
/// allocates may get an arena of its own (up to eight per core), and the
/// blocking pool's threads (fetches, file writes) each keep freed memory
/// in theirs. The daemon's allocations are small and not contended.
pub fn cap_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt(3) sets an allocator parameter; no memory is passed.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
