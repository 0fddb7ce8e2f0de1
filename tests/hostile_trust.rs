//! Attacks on who may deploy, each reproduced against real git, gpg and
//! ssh-keygen: a symlink planted where the OpenPGP check writes its
//! temp file, allowed_signers options ssh-keygen honours, oversized blobs
//! and a lost or corrupt record of the applied commit. None needs Docker:
//! they call teal's admission (the library, as the daemon does) or the
//! `teal` binary.

mod common;

use common::signing::{self, Gpg};
use common::Repo;
use teal::source::verify::{verify_commit, Verify};

/// A repo with one commit signed by the OpenPGP key of
/// deployer@example.com, the keyring that holds that key, and the commit.
fn gpg_signed_repo() -> (Repo, Gpg, std::path::PathBuf, git2::Oid) {
    let gpg = Gpg::new();
    gpg.key("Deployer <deployer@example.com>");
    let keyring = gpg.export("deployer@example.com");
    let repo = Repo::new();
    let head = signing::commit(
        repo.path(),
        "signed",
        &[("teal.yaml", "{}\n")],
        &gpg.signing("deployer@example.com"),
        &[("GNUPGHOME", gpg.home.path())],
        None,
    );
    (repo, gpg, keyring, git2::Oid::from_str(&head).unwrap())
}

/// Before: the detached signature went to `$TMPDIR/teal-<pid>-<hash>.sig`,
/// a name anyone could compute from the commit, written through any
/// symlink found there: a local user could make the daemon (root)
/// overwrite a file of their choice.
#[test]
fn the_openpgp_check_does_not_write_through_a_symlink_planted_at_a_guessable_temp_path() {
    let (repo, _gpg, keyring, head) = gpg_signed_repo();
    let git = git2::Repository::open(repo.path()).unwrap();
    let (sig, _) = git.extract_signature(&head, None).unwrap();
    let guessed = std::env::temp_dir().join(format!("teal-{}-{}.sig", std::process::id(), {
        use sha2::Digest;
        hex::encode(&sha2::Sha256::digest(&sig[..])[..8])
    }));
    let victims = tempfile::tempdir().unwrap();
    let victim = victims.path().join("precious");
    std::fs::write(&victim, "the operator's file\n").unwrap();
    let _ = std::fs::remove_file(&guessed);
    std::os::unix::fs::symlink(&victim, &guessed).unwrap();
    let v = Verify {
        allowed_signers: None,
        gpg_keyring: Some(keyring),
    };
    let verdict = verify_commit(&git, head, &v);
    let _ = std::fs::remove_file(&guessed);
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "the operator's file\n",
        "the check wrote through the planted symlink"
    );
    let who = verdict.expect("a good signature by the deployer");
    assert!(who.starts_with("Deployer <deployer@example.com>"), "{who}");
}

/// The verdict itself is unchanged by where the signature is written.
#[test]
fn a_stranger_s_openpgp_signature_is_still_refused() {
    let gpg = Gpg::new();
    gpg.key("Deployer <deployer@example.com>");
    gpg.key("Stranger <stranger@example.com>");
    let keyring = gpg.export("deployer@example.com");
    let repo = Repo::new();
    let head = signing::commit(
        repo.path(),
        "by a stranger",
        &[("teal.yaml", "{}\n")],
        &gpg.signing("stranger@example.com"),
        &[("GNUPGHOME", gpg.home.path())],
        None,
    );
    let git = git2::Repository::open(repo.path()).unwrap();
    let v = Verify {
        allowed_signers: None,
        gpg_keyring: Some(keyring.clone()),
    };
    let err = verify_commit(&git, git2::Oid::from_str(&head).unwrap(), &v).unwrap_err();
    assert!(
        err.0.ends_with(&format!("which is not in {}", keyring.display())),
        "{err}"
    );
}

/// A 50 MiB service file is refused by its size before it is read: from
/// the object header in git (the unit test in src/source.rs shows that
/// only the header is read), from its metadata on disk; a teal.yaml that
/// never ends (a symlink to /dev/zero) stops at the limit. Each error
/// names the file and its size.
#[test]
fn a_50_mib_service_file_is_refused_with_its_name_and_size() {
    let repo = Repo::new();
    let big = "# padding\n".repeat(5 << 20);
    repo.commit("big", &[("services/web.yaml", Some(&big))]);
    let said = |args: &[&str]| {
        let r = common::teal(repo.path(), args);
        assert_eq!(r.code, 1, "{args:?}: {}{}", r.stdout, r.stderr);
        format!("{}{}", r.stdout, r.stderr)
    };
    let out = said(&["validate", "--repo", ".", "--rev", "HEAD"]);
    assert!(
        out.contains("HEAD:services/web.yaml: file is 52428800 bytes, more than the 1048576 teal reads"),
        "{out}"
    );
    let out = said(&["validate", "--repo", "."]);
    assert!(
        out.contains("/services/web.yaml: file is 52428800 bytes, more than the 1048576 teal reads"),
        "{out}"
    );
    std::fs::remove_file(repo.path().join("services/web.yaml")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", repo.path().join("teal.yaml")).unwrap();
    let out = said(&["validate", "--repo", "."]);
    assert!(
        out.contains("/teal.yaml: file is at least 1048577 bytes, more than the 1048576 teal reads"),
        "{out}"
    );
}
