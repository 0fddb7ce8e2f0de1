//! A task Docker lost. dockerd stopped in the middle of a container's
//! start can leave containerd's task of it behind: a shim, and the task's
//! `runc init` waiting to be started. The restarted dockerd no longer
//! sees it, so no start can run the container again (`id already in
//! use`) and `docker rm -f` does not end it. The task keeps the network
//! namespace it was given, with the container's address, and its end of
//! the bridge, with the MAC Docker derives from that address. Docker
//! gives the address to a later container; the bridge then sends that
//! container's traffic to the lost task, and the proxy answers 503 for a
//! replica Docker says runs (the fault soak found it so).
//!
//! When teal removes a container Docker says does not run (one no start
//! could run, before it is created again; an idle color's), it ends such
//! a task as `docker rm -f` would have: the shim's processes, then the
//! shim.
//! Only a shim in teal's own pid namespace, run by teal's user, that
//! names the container's full id counts: a container's process, or
//! another user's, cannot pass for one; and teal in a container of its
//! own sees none (it then says so).

use crate::drivers::managed::process;

/// The shim of container `id` among `procs` (pid and argv): a
/// `containerd-shim*` program with `-id <id>`.
pub fn shim_of(id: &str, procs: &[(u32, Vec<String>)]) -> Option<u32> {
    procs.iter().find_map(|(pid, argv)| {
        let program = argv.first()?.rsplit('/').next()?;
        let named = argv.windows(2).any(|w| w[0] == "-id" && w[1] == id);
        (program.starts_with("containerd-shim") && named).then_some(*pid)
    })
}

/// Ends the task Docker lost of container `id` (its full id, of a
/// container Docker says does not run), if this host shows one to teal:
/// a shim that still has processes (the task's init, which holds the
/// network namespace). A shim without any is one ending after a stop,
/// and is left alone. Returns the pids ended: the processes, the shim.
pub fn end(id: &str) -> Vec<u32> {
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return vec![];
    }
    let Some(shim) = shim_of(id, &same_namespace()) else {
        return vec![];
    };
    let mut ended = process::children(shim);
    if ended.is_empty() {
        return vec![];
    }
    ended.push(shim);
    for pid in &ended {
        process::signal(*pid as i32, libc::SIGKILL);
    }
    ended
}

/// Every process in teal's pid namespace and of teal's user, with its argv.
fn same_namespace() -> Vec<(u32, Vec<String>)> {
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let Some(mine) = ns("self") else {
        return vec![];
    };
    let me = process::euid(std::process::id());
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| ns(&pid.to_string()).as_ref() == Some(&mine) && process::euid(*pid) == me)
        .filter_map(|pid| Some((pid, process::argv(pid)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn the_shim_is_found_by_the_full_id_it_names() {
        let id = "40a5ddd5576fda7c905b4f7dd77659867f6d38174f88484df76b95e4b2e880b2";
        let procs = vec![
            (
                10,
                argv(&format!(
                    "/usr/bin/containerd-shim-runc-v2 -namespace moby -id {}",
                    &id[..12]
                )),
            ),
            (11, argv(&format!("/usr/bin/sleep -id {id}"))),
            (
                12,
                argv(&format!(
                    "containerd-shim-runc-v2 -namespace moby -id {id} -address /run/c.sock"
                )),
            ),
        ];
        assert_eq!(shim_of(id, &procs), Some(12));
        assert_eq!(shim_of(id, &procs[..2]), None, "a prefix or another program is not it");
    }

    #[test]
    fn an_id_that_is_not_a_full_docker_id_ends_nothing() {
        assert!(end("").is_empty());
        assert!(end("-namespace").is_empty());
    }
}
