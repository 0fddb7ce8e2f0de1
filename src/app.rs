//! The bundled demo app (see `app/main.rs`): a static binary for
//! `FROM scratch` images, used by `teal demo` and the tests.

/// The statically linked demo app, ready to copy into an image as `/app`.
pub static DEMO_APP: &[u8] = include_bytes!(env!("TEAL_DEMO_APP"));

/// Writes the demo app into `dir` as an executable file named `app` and
/// returns its path (for a docker build context, or to run it locally).
pub fn write_binary(dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("app");
    std::fs::write(&path, DEMO_APP)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

/// Spawns `cmd`, retrying briefly on "text file busy": a binary just
/// written can still be open for writing in a process another thread is
/// forking, until that process execs.
pub fn spawn_retrying(cmd: &mut std::process::Command) -> std::io::Result<std::process::Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}
