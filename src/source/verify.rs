//! Who may deploy: the head commit must carry a good signature by a key the
//! host's owner allows, and (optionally) descend from the commit applied
//! before. As in Argo CD and Flux, the head commit is what is verified: its
//! tree is what gets applied, so its signer vouches for the whole tree.
//!
//! SSH signatures are verified in Rust with RustCrypto's `ssh-key` (SSHSIG
//! for ed25519, ECDSA P-256/P-384 and RSA keys), against an
//! `allowed_signers` file in ssh-keygen's format, matched as git has
//! ssh-keygen match it (`signers`): no process per check and no
//! dependence on the host's OpenSSH version. OpenPGP signatures go to
//! `gpgv --keyring`, the verifier GnuPG ships for exactly this: a Rust
//! OpenPGP stack would be a large dependency for one call.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use git2::{Oid, Repository};
use ssh_key::{HashAlg, PublicKey, SshSig};

use crate::commit::ShortCommit;

pub mod signers;

/// What the host config asks of the head commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verify {
    /// `ssh-keygen` allowed-signers file: SSH signatures by its keys.
    pub allowed_signers: Option<PathBuf>,
    /// OpenPGP keyring: signatures by its keys (checked with gpgv).
    pub gpg_keyring: Option<PathBuf>,
}

impl Verify {
    pub fn required(&self) -> bool {
        self.allowed_signers.is_some() || self.gpg_keyring.is_some()
    }
}

/// Why a head commit is not applied: "no signature", "signed by ... which
/// is not in ...", "history rewound ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// Checks the signature of `commit`; Ok names the signer.
pub fn verify_commit(repo: &Repository, commit: Oid, v: &Verify) -> Result<String, Refusal> {
    let (sig, data) = match repo.extract_signature(&commit, None) {
        Ok((sig, data)) => (sig.to_vec(), data.to_vec()),
        Err(e) if e.code() == git2::ErrorCode::NotFound => return Err(Refusal("no signature".into())),
        Err(e) => return Err(Refusal(format!("unreadable signature: {}", e.message()))),
    };
    let sig = String::from_utf8_lossy(&sig).to_string();
    if sig.contains("-----BEGIN SSH SIGNATURE-----") {
        let Some(file) = &v.allowed_signers else {
            return Err(Refusal(
                "an SSH signature, but repo.verify has no allowed_signers to check it against".into(),
            ));
        };
        // The time git hands ssh-keygen (-Overify-time): the committer's.
        let time = repo
            .find_commit(commit)
            .map(|c| u64::try_from(c.committer().when().seconds()).unwrap_or(0))
            .map_err(|e| Refusal(format!("unreadable commit: {}", e.message())))?;
        verify_ssh(&sig, &data, file, time)
    } else if sig.contains("-----BEGIN PGP SIGNATURE-----") {
        let Some(keyring) = &v.gpg_keyring else {
            return Err(Refusal(
                "an OpenPGP signature, but repo.verify has no gpg_keyring to check it against".into(),
            ));
        };
        verify_gpg(&sig, &data, keyring)
    } else {
        Err(Refusal("a signature of an unknown kind".into()))
    }
}

fn verify_ssh(sig: &str, data: &[u8], file: &Path, time: u64) -> Result<String, Refusal> {
    let sig = SshSig::from_pem(sig.trim()).map_err(|e| Refusal(format!("unreadable SSH signature: {e}")))?;
    let fingerprint = sig.public_key().fingerprint(HashAlg::Sha256);
    let text = std::fs::read_to_string(file).map_err(|e| Refusal(format!("{}: {e}", file.display())))?;
    let allowed = signers::parse(&text);
    let principal = allowed
        .vouch(sig.public_key(), "git", time)
        .map_err(|why| Refusal(not_vouched(why, &fingerprint, file, &allowed.skipped, time)))?;
    PublicKey::from(sig.public_key().clone())
        .verify("git", data, &sig)
        .map_err(|_| Refusal(format!("bad signature by {fingerprint}: the commit does not match it")))?;
    Ok(format!("{principal} ({fingerprint})"))
}

/// Why `file` vouches for no signature by `fingerprint` made at `time`,
/// with the lines it skipped (a typo there is the usual cause).
fn not_vouched(
    why: signers::NoSigner,
    fingerprint: &ssh_key::Fingerprint,
    file: &Path,
    skipped: &[(usize, String)],
    time: u64,
) -> String {
    let at = |t: u64| humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t));
    let shown = file.display();
    let mut text = match why {
        signers::NoSigner::NotListed => {
            format!("signed by {fingerprint} which is not in {shown} for the git namespace")
        }
        signers::NoSigner::NotYetValid { line, after } => format!(
            "signed by {fingerprint}, whose key {shown}:{line} allows only from {} (valid-after), at {} (the commit time)",
            at(after),
            at(time)
        ),
        signers::NoSigner::Expired { line, before } => format!(
            "signed by {fingerprint}, whose key {shown}:{line} allows only until {} (valid-before), at {} (the commit time)",
            at(before),
            at(time)
        ),
    };
    for (line, reason) in skipped {
        text.push_str(&format!(
            "; {shown}:{line} is skipped, as ssh-keygen skips it: {reason}"
        ));
    }
    text
}

fn verify_gpg(sig: &str, data: &[u8], keyring: &Path) -> Result<String, Refusal> {
    // gpgv reads a detached signature from a file, the data from stdin.
    // The file goes in a fresh dir only this user can enter, under a
    // random name: at a guessable path in the shared /tmp another local
    // user could plant a symlink and have the daemon write through it.
    let dir = private_dir().map_err(|e| Refusal(format!("a private temp dir for gpgv's signature file: {e}")))?;
    let sig_path = dir.path().join("commit.sig");
    write_new(&sig_path, sig.as_bytes()).map_err(|e| Refusal(format!("{}: {e}", sig_path.display())))?;
    let mut child = Command::new("gpgv")
        .arg("--keyring")
        .arg(keyring)
        .arg(&sig_path)
        .arg("-")
        .env("LANG", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Refusal(format!(
                "cannot run gpgv ({e}): install it with `apt-get install -y gpgv`"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(data);
    }
    let out = child.wait_with_output().map_err(|e| Refusal(format!("gpgv: {e}")))?;
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    let key = text
        .lines()
        .find_map(|l| l.split("using ").nth(1))
        .map(|k| k.trim().to_string())
        .unwrap_or_else(|| "an unknown key".into());
    if out.status.success() {
        let who = text
            .lines()
            .find_map(|l| l.split("Good signature from ").nth(1))
            .map(|w| w.trim().trim_matches('"').to_string())
            .unwrap_or_default();
        return Ok(format!("{who} ({key})"));
    }
    if text.contains("No public key") {
        return Err(Refusal(format!(
            "signed by {key} which is not in {}",
            keyring.display()
        )));
    }
    Err(Refusal(format!("bad OpenPGP signature by {key}: {}", text.trim())))
}

/// A new temp dir (random name, mode 0700), removed on drop.
fn private_dir() -> std::io::Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix("teal-gpgv-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
}

/// Writes a file that must not exist yet (no symlink is followed).
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

/// The head must descend from (or be) the applied commit.
pub fn fast_forward(repo: &Repository, head: Oid, applied: Oid) -> Result<(), Refusal> {
    if head == applied {
        return Ok(());
    }
    match repo.graph_descendant_of(head, applied) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Refusal(format!(
            "history rewound, it does not descend from the applied {}",
            ShortCommit::git(&applied.to_string())
        ))),
        Err(e) => Err(Refusal(format!(
            "cannot tell whether it descends from the applied {}: {}",
            ShortCommit::git(&applied.to_string()),
            e.message()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpgv_s_signature_file_is_in_a_dir_only_its_owner_can_enter() {
        use std::os::unix::fs::PermissionsExt;
        let (a, b) = (private_dir().unwrap(), private_dir().unwrap());
        assert_ne!(a.path(), b.path(), "random names");
        assert_eq!(std::fs::metadata(a.path()).unwrap().permissions().mode() & 0o777, 0o700);
        let f = a.path().join("commit.sig");
        write_new(&f, b"sig").unwrap();
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(write_new(&f, b"again").is_err(), "never an existing file");
    }
}
