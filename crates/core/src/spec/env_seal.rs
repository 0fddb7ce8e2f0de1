//! Env values as a container's labels may show them: a keyed digest per
//! value, never the value. Labels are seen by anyone who can run `docker
//! inspect`, read `docker events` or a label exporter; the digest still
//! changes with the value (so a changed value restarts the color), but
//! without the host's key nobody can test guesses against it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What every sealed value starts with.
const PREFIX: &str = "hmac-sha256:";

/// The host's key for env digests (`state_dir/env.key`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EnvKey([u8; 32]);

impl std::fmt::Debug for EnvKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnvKey(<redacted>)")
    }
}

impl Default for EnvKey {
    /// A fixed, public key, for what never reaches a host: `teal diff`,
    /// `teal validate` and tests. Hosts use their own (`Desired::seal_env`).
    fn default() -> EnvKey {
        EnvKey([0; 32])
    }
}

impl EnvKey {
    pub fn new(bytes: [u8; 32]) -> EnvKey {
        EnvKey(bytes)
    }

    /// `hmac-sha256:<hex>` of the variable's name and value: the name is in
    /// it, so two variables with one value do not show as equal.
    pub fn seal(&self, name: &str, value: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any size");
        // Neither a name nor a value of the environment holds a NUL.
        mac.update(name.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
    }
}

/// Whether a label's env value is a digest (a label teal wrote since env
/// values are sealed) rather than a value in plain text (an older teal's).
pub fn is_sealed(value: &str) -> bool {
    value
        .strip_prefix(PREFIX)
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_change_with_key_name_and_value_and_never_hold_the_value() {
        let k = EnvKey::new([7; 32]);
        let d = k.seal("TOKEN", "s3cret");
        assert!(is_sealed(&d), "{d}");
        assert!(!d.contains("s3cret"));
        assert_eq!(d, k.seal("TOKEN", "s3cret"));
        assert_ne!(d, k.seal("TOKEN", "s3cret2"));
        assert_ne!(d, k.seal("OTHER", "s3cret"));
        assert_ne!(d, EnvKey::default().seal("TOKEN", "s3cret"));
        assert!(!is_sealed("s3cret"));
        assert!(!is_sealed("hmac-sha256:xyz"));
        assert_eq!(format!("{k:?}"), "EnvKey(<redacted>)");
    }
}
