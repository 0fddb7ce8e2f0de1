//! Reading the values of a commit's secrets on this host: age values
//! decrypted with `secrets.identity_file`, host files read from under
//! `policy.secret_files`. A service whose secrets cannot all be read is
//! not deployed (`Service::secret_error` names the secret and why); the
//! others go on. Blocking (files): call from `spawn_blocking`.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::drivers::age::{Identity, MAX_VALUE_BYTES};
use crate::policy::{self, Policy};
use crate::spec::secret::{SecretSource, SecretText};
use crate::spec::{Desired, Service};

/// Fills in the value of every secret of `desired`, with the identity in
/// `identity_file` (read only when some value is encrypted) and host
/// files under `policy`. Each service that fails gets its
/// `secret_error`.
pub fn resolve(desired: &mut Desired, identity_file: Option<&Path>, policy: &Policy) {
    let needs_identity = desired
        .services
        .values()
        .any(|s| s.secrets.values().any(|x| matches!(x.source, SecretSource::Age { .. })));
    let identity = match (needs_identity, identity_file) {
        (false, _) => Err(String::new()),
        (true, None) => Err("this host has no key to decrypt it (secrets.identity_file is not set in the host config): set it to the file of the age key whose recipient is in teal.yaml's secrets.recipients".to_string()),
        (true, Some(p)) => Identity::read(p).map_err(|e| e.to_string()),
    };
    for svc in desired.services.values_mut() {
        // Said once per commit by whoever plans it (a refusal), not here
        // at every poll.
        if let Err(why) = resolve_service(svc, identity.as_ref(), policy) {
            svc.secret_error = Some(why);
        }
    }
}

/// The values of one service's secrets; the first that cannot be read,
/// named with where it is written.
fn resolve_service(svc: &mut Service, identity: Result<&Identity, &String>, policy: &Policy) -> Result<(), String> {
    for (name, secret) in svc.secrets.iter_mut() {
        let value = match &secret.source {
            SecretSource::Age { file, armored } => identity
                .map_err(String::clone)
                .and_then(|id| id.decrypt(armored))
                .map_err(|why| format!("secret {name} ({file}): {why}")),
            SecretSource::File { path } => {
                read_file(path, policy).map_err(|why| format!("secret {name} ({}): {why}", svc.file))
            }
        }?;
        secret.value = Some(value);
    }
    Ok(())
}

/// A host file's text, at most `MAX_VALUE_BYTES`, trailing newline
/// trimmed. The policy was checked on admission; the file opened is
/// checked again by what the kernel opened (a symlink swapped in since
/// would otherwise be followed).
fn read_file(path: &str, policy: &Policy) -> Result<SecretText, String> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("cannot read {path}: {e}"))?;
    let meta = f.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err(format!("{path} is not a regular file"));
    }
    let opened = std::fs::read_link(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&f)))
        .map_err(|e| format!("cannot tell which file {path} is: {e}"))?;
    let host = policy::Host {
        docker_sockets: &[],
        resolve: &crate::drivers::paths::resolve,
        swarm: false,
    };
    if let Some(why) = policy::secret_file_refusal(&opened.to_string_lossy(), policy, &host) {
        return Err(format!("{path} is now {}: {why}", opened.display()));
    }
    let mut text = String::new();
    f.take(MAX_VALUE_BYTES as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {path}: {e}"))?;
    if text.len() > MAX_VALUE_BYTES {
        return Err(format!("{path} is larger than {MAX_VALUE_BYTES} bytes"));
    }
    let trimmed = text.strip_suffix('\n').unwrap_or(&text);
    Ok(SecretText::new(trimmed.strip_suffix('\r').unwrap_or(trimmed)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::secret::{Delivery, SecretSpec};

    fn policy(prefix: &Path) -> Policy {
        Policy {
            secret_files: Some(vec![format!("{}/", prefix.display())]),
            ..Default::default()
        }
    }

    #[test]
    fn host_files_are_read_inside_the_policy_only_even_when_swapped_for_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let allowed = base.join("secrets");
        std::fs::create_dir(&allowed).unwrap();
        std::fs::write(allowed.join("db"), "postgres://x\n").unwrap();
        std::fs::write(base.join("outside"), "host key").unwrap();
        let p = policy(&allowed);
        assert_eq!(
            read_file(allowed.join("db").to_str().unwrap(), &p).unwrap().expose(),
            "postgres://x"
        );
        // Admitted as allowed/db, then made a link to a file outside.
        std::fs::remove_file(allowed.join("db")).unwrap();
        std::os::unix::fs::symlink(base.join("outside"), allowed.join("db")).unwrap();
        let e = read_file(allowed.join("db").to_str().unwrap(), &p).unwrap_err();
        assert!(
            e.contains("outside this host's policy") && !e.contains("host key"),
            "{e}"
        );
        let e = read_file(base.join("none").to_str().unwrap(), &p).unwrap_err();
        assert!(e.starts_with("cannot read"), "{e}");
    }

    #[test]
    fn a_service_that_cannot_read_a_secret_says_which_and_why() {
        let mut desired = Desired::default();
        let mut svc = crate::spec::load(&{
            let mut f = crate::spec::RepoFiles {
                has_services_dir: true,
                ..Default::default()
            };
            f.files.insert(
                "services/web.yaml".into(),
                "active: blue\nblue: {image: web:1}\nport: 80\nroute: {host: a.example.com}\nhealth: {tcp: {}}\n"
                    .into(),
            );
            f
        })
        .unwrap()
        .services
        .remove("web")
        .unwrap();
        let armored = crate::drivers::age::encrypt(
            "v",
            &[crate::drivers::age::recipient(&age::x25519::Identity::generate().to_public().to_string()).unwrap()],
        )
        .unwrap();
        svc.secrets.insert(
            "DB".into(),
            SecretSpec {
                source: SecretSource::Age {
                    file: "secrets/web.yaml".into(),
                    armored,
                },
                delivery: Delivery::File,
                value: None,
            },
        );
        desired.services.insert("web".into(), svc);
        let mut without = desired.clone();
        resolve(&mut without, None, &Policy::default());
        let e = without.services["web"].secret_error.clone().unwrap();
        assert!(
            e.starts_with("secret DB (secrets/web.yaml): this host has no key") && e.contains("secrets.identity_file"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("age.key");
        std::fs::write(&key, format!("{}\n", age_key())).unwrap();
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        let mut shared = desired.clone();
        resolve(&mut shared, Some(&key), &Policy::default());
        let e = shared.services["web"].secret_error.clone().unwrap();
        assert!(e.contains("mode 644") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        resolve(&mut desired, Some(&key), &Policy::default());
        let e = desired.services["web"].secret_error.clone().unwrap();
        assert!(
            e.starts_with("secret DB (secrets/web.yaml): this host is not one of its recipients"),
            "{e}"
        );
    }

    fn age_key() -> String {
        use age::secrecy::ExposeSecret;
        age::x25519::Identity::generate()
            .to_string()
            .expose_secret()
            .to_string()
    }
}
