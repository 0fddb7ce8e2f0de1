//! Attacks on who may deploy, each reproduced against real git, gpg and
//! ssh-keygen: a symlink planted where the OpenPGP check writes its
//! temp file, allowed_signers options ssh-keygen honours, oversized blobs
//! and a lost or corrupt record of the applied commit. None needs Docker:
//! they call teal's admission (the library, as the daemon does) or the
//! `teal` binary.

mod common;

use std::path::Path;

use common::signing::{self, ssh_keygen_verdict, Gpg, SignedRepo};
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

/// A 50 MiB service file committed to git is refused by the size in its
/// object header, before git inflates it (the unit test in src/source.rs
/// shows that only the header is read); the error names the file and
/// its size. (Files on disk are bounded by `spec::load`.)
#[test]
fn a_50_mib_service_file_is_refused_with_its_name_and_size() {
    let repo = Repo::new();
    let big = "# padding\n".repeat(5 << 20);
    repo.commit("big", &[("services/web.yaml", Some(&big))]);
    let r = common::teal(repo.path(), &["validate", "--repo", ".", "--rev", "HEAD"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("HEAD:services/web.yaml: file is 52428800 bytes, more than the 1048576 teal reads"),
        "{}{}",
        r.stdout,
        r.stderr
    );
}

/// When alice's commit was made: 2026-01-01 12:00:00 UTC.
const SIGNED_AT: &str = "@1767268800 +0000";

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

/// Before: `fast_forward_only` was off unless set, so with `verify` on, a
/// branch force-pushed back to an older commit, still carrying its good
/// signature, was applied: an old vulnerable version came back.
#[test]
fn with_verify_on_a_branch_rewound_to_an_older_signed_commit_is_refused_by_default() {
    let r = SignedRepo::new("");
    // A fresh host whose first head is refused still takes the first
    // signed one as its baseline.
    r.commit("registry.example.com/web:0", false);
    let e = r.fetch().unwrap_err();
    assert!(e.contains("no signature"), "{e}");
    let c1 = r.commit("registry.example.com/web:1", true);
    assert_eq!(r.fetch(), Ok(c1.clone()), "the first signed head of a fresh host");
    let c2 = r.commit("registry.example.com/web:2", true);
    assert_eq!(r.fetch(), Ok(c2.clone()));
    r.repo.git(&["reset", "-q", "--hard", &c1]);
    let e = r.fetch().unwrap_err();
    assert_eq!(
        e,
        format!(
            "refused {}: history rewound, it does not descend from the applied {}",
            &c1[..7],
            &c2[..7]
        )
    );

    // Turned off on purpose, the rewind is applied.
    let off = SignedRepo::new(", fast_forward_only: false");
    let c1 = off.commit("registry.example.com/web:1", true);
    off.fetch().unwrap();
    off.commit("registry.example.com/web:2", true);
    off.fetch().unwrap();
    off.repo.git(&["reset", "-q", "--hard", &c1]);
    assert_eq!(off.fetch(), Ok(c1));
}

/// Before: with `fast_forward_only` on, a missing, empty (a write torn by
/// a crash) or garbled record of the applied commit switched the check
/// off, and any signed head was applied. Now each refuses the head and
/// says to run `teal trust reset`, which shows the head and records it.
#[test]
fn a_lost_or_damaged_applied_record_refuses_the_head_until_teal_trust_reset() {
    let r = SignedRepo::new(", fast_forward_only: true");
    let c1 = r.commit("registry.example.com/web:1", true);
    assert_eq!(r.fetch(), Ok(c1.clone()));
    assert_eq!(std::fs::read_to_string(r.record()).unwrap(), format!("{c1}\n"));
    let c2 = r.commit("registry.example.com/web:2", true);
    for (damage, says) in [
        ("", "is empty"),
        ("not a commit\n", "is not a commit id"),
        ("-", "is missing"),
    ] {
        if damage == "-" {
            std::fs::remove_file(r.record()).unwrap();
        } else {
            std::fs::write(r.record(), damage).unwrap();
        }
        let e = r.fetch().unwrap_err();
        assert!(
            e.starts_with(&format!("refused {}: ", &c2[..7]))
                && e.contains(says)
                && e.contains(&r.record().display().to_string()),
            "{damage:?}: {e}"
        );
        assert!(e.contains("run `teal trust reset`"), "{e}");
    }
    let config = r.config.to_str().unwrap();
    // An unsigned head is not accepted by hand either.
    let unsigned = r.commit("registry.example.com/web:3", false);
    let out = common::teal(r.repo.path(), &["trust", "reset", "--config", config]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&format!("{}: no signature", &unsigned[..10])),
        "{}",
        out.stderr
    );
    assert!(!r.record().exists(), "nothing recorded");

    let out = common::teal(r.repo.path(), &["trust", "reset", "--config", config, "--rev", &c2]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    for want in [
        c2.as_str(),
        "registry.example.com/web:2",
        "signed by alice@example.com (SHA256:",
        "before: none (the record is missing)",
    ] {
        assert!(out.stdout.contains(want), "{want}:\n{}", out.stdout);
    }
    assert!(
        out.stdout
            .contains(&format!("note: the branch head {} descends from it", &unsigned[..10])),
        "{}",
        out.stdout
    );
    assert_eq!(std::fs::read_to_string(r.record()).unwrap(), format!("{c2}\n"));
    let e = r.fetch().unwrap_err();
    assert!(e.ends_with("no signature"), "the head is still checked: {e}");
    let c4 = r.commit("registry.example.com/web:4", true);
    assert_eq!(r.fetch(), Ok(c4));
}

/// The record is written to a fresh temp file, fsynced, renamed over the
/// old one, and the directory fsynced: the system calls `teal trust
/// reset` makes, in that order, as strace sees them. Before, the file
/// was renamed without either fsync: a crash could leave it empty.
#[test]
fn the_applied_record_is_fsynced_renamed_and_its_directory_fsynced() {
    let r = SignedRepo::new("");
    r.commit("registry.example.com/web:1", true);
    let log = r.keys.path().join("strace.log");
    let out = std::process::Command::new("strace")
        .args(["-f", "-o"])
        .arg(&log)
        .args(["-e", "trace=openat,fsync,fdatasync,rename,renameat,renameat2"])
        .arg(common::teal_bin())
        .args(["trust", "reset", "--config", r.config.to_str().unwrap()])
        .output()
        .unwrap_or_else(|e| panic!("strace: {e} (apt-get install -y strace)"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let calls = std::fs::read_to_string(&log).unwrap();
    let dir = r.state_dir().display().to_string();
    // Each step's line, found in order after the one before.
    let mut rest = calls.as_str();
    let mut after = |what: &str, pred: &dyn Fn(&str) -> bool| -> String {
        let at = rest
            .lines()
            .position(pred)
            .unwrap_or_else(|| panic!("no {what} in:\n{calls}"));
        let line = rest.lines().nth(at).unwrap().to_string();
        let skip: usize = rest.lines().take(at + 1).map(|l| l.len() + 1).sum();
        rest = &rest[skip.min(rest.len())..];
        line
    };
    let fd = |line: &str| line.rsplit("= ").next().unwrap().trim().to_string();
    let tmp = after("temp file opened", &|l| {
        l.contains(&format!("\"{dir}/.applied-commit.")) && l.contains("O_EXCL")
    });
    let tmp_fd = fd(&tmp);
    after("fsync of the temp file", &|l| l.contains(&format!("fsync({tmp_fd})")));
    after("rename over the record", &|l| {
        l.contains("rename") && l.contains(&format!("\"{dir}/applied-commit\") = 0"))
    });
    let opened = after("directory opened", &|l| {
        l.contains(&format!("openat(AT_FDCWD, \"{dir}\", O_RDONLY"))
    });
    let dir_fd = fd(&opened);
    after("fsync of the directory", &|l| l.contains(&format!("fsync({dir_fd})")));
}
