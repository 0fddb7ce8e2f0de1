//! git2: resolve a revision and read the config files of its tree without
//! a working checkout (`read`), and fetch a remote branch into a bare mirror
//! in the state dir (`fetch`). Blocking: async callers use `spawn_blocking`.

pub mod dir;
pub mod fetch;
pub mod verify;

use std::path::Path;

use git2::{ObjectType, Repository, Tree};

use crate::spec::load::{service_entry, ServiceEntry};
use crate::spec::RepoFiles;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path} is not in a git repository: {message}")]
    NotARepo { path: String, message: String },
    #[error("revision {rev:?} not found in {repo}: {message}")]
    NoRevision { repo: String, rev: String, message: String },
    #[error("{rev}: no directory {path:?} in the tree; check --path (repo.path in the host config)")]
    NoPath { rev: String, path: String },
    #[error("{rev}:{path}: {message}")]
    Read { rev: String, path: String, message: String },
}

/// Opens the repository containing `dir` (a work tree or a bare repo),
/// searching upwards like git does.
pub fn open(dir: &Path) -> Result<Repository, SourceError> {
    Repository::discover(dir).map_err(|e| SourceError::NotARepo {
        path: dir.display().to_string(),
        message: e.message().to_string(),
    })
}

/// Resolves `rev` (`HEAD`, `HEAD~1`, a branch, tag or sha) to a commit id.
pub fn resolve(repo: &Repository, rev: &str) -> Result<git2::Oid, SourceError> {
    let not_found = |e: git2::Error| SourceError::NoRevision {
        repo: repo_name(repo),
        rev: rev.to_string(),
        message: e.message().to_string(),
    };
    let obj = repo.revparse_single(rev).map_err(not_found)?;
    let commit = obj.peel_to_commit().map_err(not_found)?;
    Ok(commit.id())
}

pub use crate::status::CommitInfo;

/// The subject, author and time of `rev` in `repo`.
pub fn commit_info(repo: &Repository, rev: &str) -> Result<CommitInfo, SourceError> {
    let oid = resolve(repo, rev)?;
    let c = repo.find_commit(oid).map_err(|e| read_err(rev, "", e))?;
    let author = c.author();
    let secs = u64::try_from(c.time().seconds()).unwrap_or(0);
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    Ok(CommitInfo {
        message: c.summary().unwrap_or("").to_string(),
        author: match (author.name(), author.email()) {
            (Some(n), Some(e)) => format!("{n} <{e}>"),
            (Some(n), None) => n.to_string(),
            (None, e) => e.unwrap_or("").to_string(),
        },
        time: humantime::format_rfc3339_seconds(time).to_string(),
    })
}

/// Reads `teal.yaml`, `services/*.yaml` and `secrets/*.yaml` under `path` (`/` or `""` for
/// the root) in the tree of `rev`, without touching any working tree.
pub fn read(repo: &Repository, rev: &str, path: &str) -> Result<RepoFiles, SourceError> {
    let oid = resolve(repo, rev)?;
    let commit = repo.find_commit(oid).map_err(|e| read_err(rev, path, e))?;
    let root = commit.tree().map_err(|e| read_err(rev, path, e))?;
    let sub = path.trim_matches('/');
    let tree = if sub.is_empty() {
        root
    } else {
        let entry = root.get_path(Path::new(sub)).map_err(|_| SourceError::NoPath {
            rev: rev.to_string(),
            path: path.to_string(),
        })?;
        let obj = entry.to_object(repo).map_err(|e| read_err(rev, path, e))?;
        obj.into_tree().map_err(|_| SourceError::NoPath {
            rev: rev.to_string(),
            path: path.to_string(),
        })?
    };
    let mut files = RepoFiles::default();
    if let Some(text) = blob_text(repo, &tree, crate::spec::load::REPO_FILE, rev)? {
        files
            .insert(crate::spec::load::REPO_FILE, text)
            .map_err(|d| refused(rev, d))?;
    }
    if let Some(entry) = tree.get_name(crate::spec::load::SERVICES_DIR) {
        if entry.kind() == Some(ObjectType::Tree) {
            files.has_services_dir = true;
            let services = repo.find_tree(entry.id()).map_err(|e| read_err(rev, "services", e))?;
            for e in services.iter() {
                let Some(name) = e.name() else { continue };
                if e.kind() != Some(ObjectType::Blob) {
                    continue;
                }
                let path = format!("services/{name}");
                match service_entry(name) {
                    ServiceEntry::Service => {
                        let text = blob(repo, e.id(), rev, &path)?;
                        files.insert(&path, text).map_err(|d| refused(rev, d))?;
                    }
                    // Named, not read: it may not even be text.
                    ServiceEntry::Misnamed => {
                        files.misnamed.insert(path);
                    }
                    ServiceEntry::Ignored => {}
                }
            }
        }
    }
    if let Some(entry) = tree.get_name(crate::spec::load::SECRETS_DIR) {
        if entry.kind() == Some(ObjectType::Tree) {
            let secrets = repo.find_tree(entry.id()).map_err(|e| read_err(rev, "secrets", e))?;
            for e in secrets.iter() {
                let Some(name) = e.name() else { continue };
                if e.kind() == Some(ObjectType::Blob) && service_entry(name) == ServiceEntry::Service {
                    let path = format!("secrets/{name}");
                    let text = blob(repo, e.id(), rev, &path)?;
                    files.insert(&path, text).map_err(|d| refused(rev, d))?;
                }
            }
        }
    }
    Ok(files)
}

/// Opens the repo at `repo_dir` and reads `rev` under `path`.
pub fn read_files(repo_dir: &Path, rev: &str, path: &str) -> Result<RepoFiles, SourceError> {
    read(&open(repo_dir)?, rev, path)
}

fn blob_text(repo: &Repository, tree: &Tree<'_>, name: &str, rev: &str) -> Result<Option<String>, SourceError> {
    match tree.get_name(name) {
        Some(e) if e.kind() == Some(ObjectType::Blob) => blob(repo, e.id(), rev, name).map(Some),
        _ => Ok(None),
    }
}

fn blob(repo: &Repository, id: git2::Oid, rev: &str, path: &str) -> Result<String, SourceError> {
    // The size is in the object's header: a blob of gigabytes is refused
    // before any of it is inflated, not after (spec::limits sees text).
    let (size, _) = repo
        .odb()
        .and_then(|odb| odb.read_header(id))
        .map_err(|e| read_err(rev, path, e))?;
    let max = crate::spec::limits::MAX_FILE_BYTES;
    if size > max {
        return Err(SourceError::Read {
            rev: rev.to_string(),
            path: path.to_string(),
            message: format!(
                "file is {size} bytes, more than the {max} teal reads: a config file this large is a mistake or an attack"
            ),
        });
    }
    let blob = repo.find_blob(id).map_err(|e| read_err(rev, path, e))?;
    String::from_utf8(blob.content().to_vec()).map_err(|_| SourceError::Read {
        rev: rev.to_string(),
        path: path.to_string(),
        message: "not UTF-8 text".into(),
    })
}

/// A file past the limits on a whole repo (`limits::MAX_SERVICES`,
/// `limits::MAX_REPO_BYTES`).
fn refused(rev: &str, d: crate::spec::Diagnostic) -> SourceError {
    SourceError::Read {
        rev: rev.to_string(),
        path: d.path,
        message: d.message,
    }
}

fn read_err(rev: &str, path: &str, e: git2::Error) -> SourceError {
    SourceError::Read {
        rev: rev.to_string(),
        path: path.to_string(),
        message: e.message().to_string(),
    }
}

fn repo_name(repo: &Repository) -> String {
    repo.workdir().unwrap_or_else(|| repo.path()).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loose object whose header says `size` bytes but that holds four:
    /// read in full it would be four bytes, so an error naming `size`
    /// proves that only the header was read. Written by hand: zlib with
    /// one stored (uncompressed) deflate block.
    fn lying_blob(repo: &Repository, size: usize) -> git2::Oid {
        let id = git2::Oid::hash_object(ObjectType::Blob, &vec![b'a'; size]).unwrap();
        let mut raw = format!("blob {size}\0").into_bytes();
        raw.extend_from_slice(b"aaaa");
        let len = raw.len() as u16;
        let mut z = vec![0x78, 0x01, 0x01];
        z.extend(len.to_le_bytes());
        z.extend((!len).to_le_bytes());
        z.extend(&raw);
        let (a, b) = raw.iter().fold((1u32, 0u32), |(a, b), &x| {
            let a = (a + u32::from(x)) % 65521;
            (a, (b + a) % 65521)
        });
        z.extend(((b << 16) | a).to_be_bytes());
        let hex = id.to_string();
        let file = repo.path().join("objects").join(&hex[..2]).join(&hex[2..]);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, z).unwrap();
        id
    }

    #[test]
    fn a_blob_over_the_limit_is_refused_from_its_header_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let big = lying_blob(&repo, 50 << 20);
        let mut services = repo.treebuilder(None).unwrap();
        services.insert("web.yaml", big, 0o100644).unwrap();
        let services = services.write().unwrap();
        let mut root = repo.treebuilder(None).unwrap();
        root.insert("services", services, 0o040000).unwrap();
        let tree = repo.find_tree(root.write().unwrap()).unwrap();
        let who = git2::Signature::now("t", "t@example.com").unwrap();
        repo.commit(Some("HEAD"), &who, &who, "big", &tree, &[]).unwrap();
        let err = read(&repo, "HEAD", "/").unwrap_err().to_string();
        assert_eq!(
            err,
            "HEAD:services/web.yaml: file is 52428800 bytes, more than the 1048576 teal reads: a config file this large is a mistake or an attack"
        );
    }
}
