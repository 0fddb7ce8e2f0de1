//! Reading a config repo's files from a work tree (`teal validate`,
//! `teal bump`), as `source` reads them from a git tree: the same files,
//! the same limits, errors naming the file.

use std::path::Path;

use crate::spec::limits::MAX_FILE_BYTES;
use crate::spec::load::{service_entry, RepoFiles, ServiceEntry, REPO_FILE, SECRETS_DIR, SERVICES_DIR};
use crate::spec::Diagnostic;

/// Reads `teal.yaml`, `services/*.yaml` and `secrets/*.yaml` under `dir`, within the
/// limits on a repo (`spec::limits`), as a git tree is read.
pub fn read(dir: &Path) -> std::io::Result<RepoFiles> {
    let mut files = RepoFiles::default();
    match read_text(&dir.join(REPO_FILE), REPO_FILE) {
        Ok(t) => files.insert(REPO_FILE, t).map_err(refused)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let services = dir.join(SERVICES_DIR);
    files.has_services_dir = services.is_dir();
    if files.has_services_dir {
        for entry in std::fs::read_dir(&services)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !entry.file_type()?.is_file() {
                continue;
            }
            let path = format!("{SERVICES_DIR}/{name}");
            if service_entry(&name) == ServiceEntry::Service {
                files.room(&path, entry.metadata()?.len()).map_err(refused)?;
                let text = read_text(&entry.path(), &path)?;
                files.insert(&path, text).map_err(refused)?;
            } else {
                files.insert(&path, String::new()).map_err(refused)?;
            }
        }
    }
    let secrets = dir.join(SECRETS_DIR);
    if secrets.is_dir() {
        for entry in std::fs::read_dir(&secrets)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type()?.is_file() && service_entry(&name) == ServiceEntry::Service {
                let path = format!("{SECRETS_DIR}/{name}");
                files.room(&path, entry.metadata()?.len()).map_err(refused)?;
                let text = read_text(&entry.path(), &path)?;
                files.insert(&path, text).map_err(refused)?;
            }
        }
    }
    Ok(files)
}

/// A limit crossed while reading a directory, as an IO error that names
/// the file.
fn refused(d: Diagnostic) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, d.to_string())
}

/// A config file's text, read no further than the limit on one file (a
/// `teal.yaml` that is a link to `/dev/zero` ends there); an error names
/// the file (`services/web.yaml: not UTF-8 text`), as reading it out of
/// git does.
fn read_text(file: &Path, shown: &str) -> std::io::Result<String> {
    use std::io::Read;
    let named = |e: std::io::Error| {
        let why = match e.kind() {
            std::io::ErrorKind::InvalidData => "not UTF-8 text".to_string(),
            _ => e.to_string(),
        };
        std::io::Error::new(e.kind(), format!("{shown}: {why}"))
    };
    let mut bytes = vec![];
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes))
        .map_err(named)?;
    if bytes.len() > MAX_FILE_BYTES {
        // Cut at the limit, perhaps inside a character: `load` refuses it
        // for its size, with its name.
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    }
    String::from_utf8(bytes).map_err(|_| named(std::io::ErrorKind::InvalidData.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::load::load;

    const GOOD: &str = "active: blue\nblue:\n  image: web:1\nport: 8080\nroute: {host: shop.example.com}\nhealth:\n  http: {path: /healthz}\n";

    #[test]
    fn a_file_in_services_that_teal_would_not_read_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let services = dir.path().join("services");
        std::fs::create_dir_all(services.join("old")).unwrap();
        for (name, text) in [
            ("web.yml", GOOD),
            ("api.YAML", GOOD),
            ("notes.txt", "x"),
            (".gitkeep", ""),
            ("old/skipped.yml", ""),
        ] {
            std::fs::write(services.join(name), text).unwrap();
        }
        let files = read(dir.path()).unwrap();
        let mut from_git = RepoFiles::default();
        for p in [
            "services/web.yml",
            "services/api.YAML",
            "services/notes.txt",
            "services/.gitkeep",
        ] {
            from_git.insert(p, "x".into()).unwrap();
        }
        assert_eq!(files.misnamed, from_git.misnamed, "a directory and a git tree agree");
        assert_eq!(
            load(&files).unwrap_err().to_string(),
            "services/api.YAML: teal reads only files ending in .yaml in services/: rename it to services/api.yaml\n\
             services/notes.txt: not a service file: services/ holds one <name>.yaml per service; rename it to end in .yaml if it is one, or move it out of services/\n\
             services/web.yml: teal reads only files ending in .yaml in services/: rename it to services/web.yaml"
        );
    }

    #[test]
    fn bundled_example_is_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/config-repo");
        let d = load(&read(&dir).unwrap()).unwrap_or_else(|e| panic!("examples/config-repo:\n{e}"));
        let names: Vec<&str> = d.services.keys().map(String::as_str).collect();
        assert_eq!(names, ["admin", "api", "search", "web"]);
        assert_eq!(d.services["web"].strategy.name(), "canary");
        assert_eq!(d.services["search"].strategy.name(), "rolling");
        assert_eq!(d.services["web"].health.deadline, std::time::Duration::from_secs(90));
        assert_eq!(
            d.services["api"].health.interval,
            std::time::Duration::from_secs(1),
            "from teal.yaml"
        );
    }
}
