//! Attacks on who may deploy, each reproduced against real git, gpg and
//! ssh-keygen: a symlink planted where the OpenPGP check writes its
//! temp file, allowed_signers options ssh-keygen honours, oversized blobs
//! and a lost or corrupt record of the applied commit. None needs Docker:
//! they call teal's admission (the library, as the daemon does) or the
//! `teal` binary.

mod common;

use std::path::Path;

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

/// When alice's commit was made: 2026-01-01 12:00:00 UTC.
const SIGNED_AT: &str = "@1767268800 +0000";

/// What git (2.x) and OpenSSH decide for a commit signed over `payload`
/// with `sig`: `git verify-commit` runs `ssh-keygen -Y find-principals`,
/// then `ssh-keygen -Y verify -n git -I <principal>` for each principal
/// found, with `-Overify-time=` the committer time; good when one verifies.
fn ssh_keygen_verdict(allowed: &Path, payload: &Path, sig: &Path, time: &str) -> bool {
    let verify_time = format!("-Overify-time={time}");
    let found = std::process::Command::new("ssh-keygen")
        .args(["-Y", "find-principals", "-f"])
        .arg(allowed)
        .arg("-s")
        .arg(sig)
        .arg(&verify_time)
        .output()
        .expect("ssh-keygen (apt-get install -y openssh-client)");
    let principals = String::from_utf8_lossy(&found.stdout).into_owned();
    principals.lines().filter(|p| !p.is_empty()).any(|p| {
        std::process::Command::new("ssh-keygen")
            .args(["-Y", "verify", "-n", "git", "-f"])
            .arg(allowed)
            .args(["-I", p, "-s"])
            .arg(sig)
            .arg(&verify_time)
            .stdin(std::fs::File::open(payload).unwrap())
            .output()
            .unwrap()
            .status
            .success()
    })
}

/// Each allowed_signers file (A: alice's key, B: bob's) decides alice's
/// commit the same way in teal as in ssh-keygen and in `git
/// verify-commit`: options, quotes, patterns, times, lines OpenSSH
/// skips. The expected verdict is in the table too, so a row documents
/// what the format means.
#[test]
fn allowed_signers_decide_as_ssh_keygen_and_git_decide() {
    let keys = tempfile::tempdir().unwrap();
    let alice = signing::ssh_key(keys.path(), "alice");
    let bob = signing::ssh_key(keys.path(), "bob");
    let public = |k: &Path| {
        let text = std::fs::read_to_string(k.with_extension("pub")).unwrap();
        text.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
    };
    let (a, b) = (public(&alice), public(&bob));
    let repo = Repo::new();
    let head = signing::commit(
        repo.path(),
        "by alice",
        &[("teal.yaml", "{}\n")],
        &signing::ssh_signing(&alice),
        &[],
        Some(SIGNED_AT),
    );
    let git = git2::Repository::open(repo.path()).unwrap();
    let head = git2::Oid::from_str(&head).unwrap();
    let (sig, payload) = git.extract_signature(&head, None).unwrap();
    let (sig_file, payload_file) = (keys.path().join("commit.sig"), keys.path().join("commit.payload"));
    std::fs::write(&sig_file, &sig[..]).unwrap();
    std::fs::write(&payload_file, &payload[..]).unwrap();
    #[rustfmt::skip]
    let rows: &[(&str, bool)] = &[
        ("alice@example.com A", true),
        ("bob@example.com B", false),
        ("alice@example.com namespaces=\"file,git\" A", true),
        ("alice@example.com namespaces=\"file\" A", false),
        ("alice@example.com namespaces=\"*\" A", true),
        ("alice@example.com namespaces=\"g?t\" A", true),
        ("alice@example.com namespaces=\"!git,*\" A", false),
        ("alice@example.com namespaces=\"file git\" A", false),
        ("alice@example.com namespaces=file,git A", false),
        ("alice@example.com NAMESPACES=\"git\" A alice's laptop", true),
        ("alice@example.com namespaces=\"git\",namespaces=\"git\" A", false),
        ("alice@example.com valid-after=\"20270101\" A", false),
        ("alice@example.com valid-after=\"20250101\" A", true),
        ("alice@example.com valid-before=\"20251231\" A", false),
        ("alice@example.com valid-before=\"20260101120000Z\" A", true),
        ("alice@example.com valid-before=\"202601011159Z\" A", false),
        ("alice@example.com valid-after=\"20260101120001Z\" A", false),
        ("alice@example.com valid-after=\"20260101120000Z\" A", true),
        ("alice@example.com valid-after=\"20250101\",valid-before=\"20270101Z\",namespaces=\"git\" A", true),
        ("alice@example.com valid-after=\"20270101\",valid-before=\"20250101\" A", false),
        ("alice@example.com valid-after=20250101 A", false),
        ("alice@example.com valid-after=\"2025\" A", false),
        ("alice@example.com valid-after=\"20270101\" A\nbob@example.com A", true),
        ("alice@example.com namespaces=\"file\" A\nbob@example.com A", false),
        ("\"alice@example.com deploy\" A", true),
        ("*@example.com A", true),
        ("alice@example.com,bob@example.com A", true),
        ("!*,alice@example.com A", false),
        ("!bob@example.com,* A", true),
        ("alice@example.com cert-authority A", false),
        ("bob@example.com cert-authority B\nalice@example.com A", true),
        ("alice@example.com bogus A\nalice@example.com A", true),
        ("alice@example.com bogus A", false),
        ("# alice@example.com A", false),
        ("\n   \n\talice@example.com\tA\n", true),
        ("alice@example.com B\nalice@example.com A", true),
    ];
    let allowed = keys.path().join("allowed_signers");
    let mut wrong = vec![];
    for (text, want) in rows {
        std::fs::write(
            &allowed,
            format!(
                "{}\n",
                text.replace(" A", &format!(" {a}"))
                    .replace(" B", &format!(" {b}"))
                    .replace("\tA", &format!("\t{a}"))
            ),
        )
        .unwrap();
        let v = Verify {
            allowed_signers: Some(allowed.clone()),
            gpg_keyring: None,
        };
        let teal = verify_commit(&git, head, &v);
        let openssh = ssh_keygen_verdict(&allowed, &payload_file, &sig_file, "20260101120000Z");
        let by_git = std::process::Command::new("git")
            .args(["-c", &format!("gpg.ssh.allowedSignersFile={}", allowed.display())])
            .args(["verify-commit", "HEAD"])
            .current_dir(repo.path())
            .output()
            .unwrap()
            .status
            .success();
        if (teal.is_ok(), openssh, by_git) != (*want, *want, *want) {
            wrong.push(format!(
                "{text:?}: want {want}, teal {teal:?}, ssh-keygen {openssh}, git verify-commit {by_git}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{} rows disagree:\n{}", wrong.len(), wrong.join("\n"));

    // A refusal says which line stood in the way and what it skipped.
    std::fs::write(
        &allowed,
        format!("alice@example.com valid-after=20250101 {a}\nalice@example.com valid-before=\"20251231Z\" {a}\n"),
    )
    .unwrap();
    let v = Verify {
        allowed_signers: Some(allowed.clone()),
        gpg_keyring: None,
    };
    let why = verify_commit(&git, head, &v).unwrap_err().0;
    let file = allowed.display();
    assert!(
        why.ends_with(&format!(
            ", whose key {file}:2 allows only until 2025-12-31T00:00:00Z (valid-before), at 2026-01-01T12:00:00Z (the commit time); \
             {file}:1 is skipped, as ssh-keygen skips it: bad options: missing start quote"
        )),
        "{why}"
    );
}
