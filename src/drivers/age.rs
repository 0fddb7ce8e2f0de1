//! age encryption of secrets (the `age` crate): this host's identity from
//! `secrets.identity_file` (an age-keygen file or an OpenSSH ed25519
//! key), decrypting the repo's ASCII-armored values with it, and
//! encrypting a value to the repo's recipients (`teal secret set`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::spec::secret::SecretText;

/// Largest plain text a secret may have: a secret is a key or a URL, not
/// a file store (and an attacker's ciphertext must not fill memory).
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// This host's age identities, read once from `secrets.identity_file`.
pub struct Identity {
    path: PathBuf,
    keys: Vec<Box<dyn age::Identity + Send + Sync>>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.path.display())
    }
}

/// Why an identity file cannot be used; says what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[error("secrets.identity_file {path}: {message}")]
pub struct IdentityError {
    pub path: String,
    pub message: String,
}

impl Identity {
    /// Reads `path`: refused when others than its owner may read it (a
    /// key anyone on the host can read decrypts every secret), when it
    /// is a passphrase-protected SSH key, or holds no key.
    pub fn read(path: &Path) -> Result<Identity, IdentityError> {
        use std::os::unix::fs::PermissionsExt;
        let err = |message: String| IdentityError {
            path: path.display().to_string(),
            message,
        };
        let meta = std::fs::metadata(path).map_err(|e| {
            err(format!(
                "{e}: set it to this host's age key (age-keygen -o FILE, chmod 600)"
            ))
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(err(format!(
                "mode {mode:03o} lets others than its owner read it: chmod 600 {}",
                path.display()
            )));
        }
        let mut text = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(1 << 20).read_to_end(&mut text))
            .map_err(|e| err(e.to_string()))?;
        let keys = parse(&text).map_err(err)?;
        Ok(Identity {
            path: path.to_path_buf(),
            keys,
        })
    }

    /// An identity from text in memory (tests, benches).
    pub fn from_text(text: &str) -> Result<Identity, String> {
        Ok(Identity {
            path: PathBuf::from("(memory)"),
            keys: parse(text.as_bytes())?,
        })
    }

    /// The file it came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The plain text of an armored age value; `Err` says why not, in
    /// words for a person (not a recipient, damaged, not age).
    pub fn decrypt(&self, armored: &str) -> Result<SecretText, String> {
        let reader = age::armor::ArmoredReader::new(armored.trim().as_bytes());
        let d = age::Decryptor::new_buffered(std::io::BufReader::new(reader)).map_err(|e| why(&e))?;
        let mut stream = d
            .decrypt(self.keys.iter().map(|k| k.as_ref() as &dyn age::Identity))
            .map_err(|e| why(&e))?;
        let mut out = Vec::new();
        (&mut stream)
            .take(MAX_VALUE_BYTES as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("the ciphertext is damaged ({e})"))?;
        if out.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "the value is larger than {MAX_VALUE_BYTES} bytes: a secret is a key or a URL, not a file"
            ));
        }
        String::from_utf8(out)
            .map(SecretText::new)
            .map_err(|_| "the value is not UTF-8 text".to_string())
    }
}

/// The keys of an identity file: an OpenSSH private key, or age-keygen's
/// format (comments and AGE-SECRET-KEY-1 lines).
fn parse(text: &[u8]) -> Result<Vec<Box<dyn age::Identity + Send + Sync>>, String> {
    if text.starts_with(b"-----BEGIN OPENSSH PRIVATE KEY-----") {
        let id = age::ssh::Identity::from_buffer(text, None).map_err(|e| format!("not an SSH key age can use: {e}"))?;
        return match id {
            age::ssh::Identity::Unencrypted(_) => Ok(vec![Box::new(id)]),
            age::ssh::Identity::Encrypted(_) => Err("the SSH key is protected by a passphrase, which a daemon cannot type: use the host key or a key without one".into()),
            age::ssh::Identity::Unsupported(k) => Err(format!("an SSH key of a kind age does not use ({k:?}): use an ed25519 or RSA key")),
        };
    }
    let file = age::IdentityFile::from_buffer(text).map_err(|e| format!("not an age identity file: {e}"))?;
    let keys = file
        .into_identities()
        .map_err(|e| format!("not an age identity file: {e}"))?;
    if keys.is_empty() {
        return Err("holds no key: write one with age-keygen -o FILE".into());
    }
    Ok(keys)
}

/// An age decryption error in words a person can act on.
fn why(e: &age::DecryptError) -> String {
    match e {
        age::DecryptError::NoMatchingKeys => "this host is not one of its recipients (it was not encrypted to this host's key): re-encrypt it with this host's recipient in teal.yaml's secrets.recipients (`teal secret set`)".into(),
        age::DecryptError::InvalidHeader | age::DecryptError::UnknownFormat => "not an age ciphertext (a damaged or truncated header)".into(),
        age::DecryptError::InvalidMac | age::DecryptError::DecryptionFailed => "the ciphertext is damaged: it does not decrypt to what was encrypted".into(),
        age::DecryptError::Io(io) => format!("the ciphertext is damaged ({io})"),
        other => format!("{other}"),
    }
}

/// A recipient as teal.yaml writes it: `age1...` or an SSH public key.
pub fn recipient(text: &str) -> Result<Box<dyn age::Recipient + Send>, String> {
    let t = text.trim();
    if t.starts_with("age1") {
        return t
            .parse::<age::x25519::Recipient>()
            .map(|r| Box::new(r) as _)
            .map_err(|e| format!("not an age recipient: {e}"));
    }
    t.parse::<age::ssh::Recipient>()
        .map(|r| Box::new(r) as _)
        .map_err(|e| format!("neither an age recipient (age1...) nor an SSH public key (ssh-ed25519 ...): {e:?}"))
}

/// `value` encrypted to `recipients`, ASCII-armored as `age -a` writes it.
pub fn encrypt(value: &str, recipients: &[Box<dyn age::Recipient + Send>]) -> Result<String, String> {
    let e = age::Encryptor::with_recipients(recipients.iter().map(|r| r.as_ref() as &dyn age::Recipient))
        .map_err(|e| format!("{e}"))?;
    let mut out = Vec::new();
    let armor =
        age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor).map_err(|e| e.to_string())?;
    let mut w = e.wrap_output(armor).map_err(|e| e.to_string())?;
    w.write_all(value.as_bytes()).map_err(|e| e.to_string())?;
    w.finish().and_then(|a| a.finish()).map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_decrypts_for_its_recipients_only_and_damage_is_named() {
        let me = age::x25519::Identity::generate();
        let other = age::x25519::Identity::generate();
        let id = Identity::from_text(&me.to_string().expose_secret_for_test()).unwrap();
        let to_me = encrypt(
            "postgres://u:pw@db/shop",
            &[recipient(&me.to_public().to_string()).unwrap()],
        )
        .unwrap();
        assert!(crate::spec::secret::is_armored(&to_me), "{to_me}");
        assert_eq!(id.decrypt(&to_me).unwrap().expose(), "postgres://u:pw@db/shop");
        let to_other = encrypt("x", &[recipient(&other.to_public().to_string()).unwrap()]).unwrap();
        let e = id.decrypt(&to_other).unwrap_err();
        assert!(e.starts_with("this host is not one of its recipients"), "{e}");
        // One character of the body changed.
        let lines: Vec<&str> = to_me.lines().collect();
        let mut body = lines[1].to_string();
        let c = if body.starts_with('A') { "B" } else { "A" };
        body.replace_range(0..1, c);
        let damaged = [lines[0], &body]
            .into_iter()
            .chain(lines[2..].iter().copied())
            .collect::<Vec<_>>()
            .join("\n");
        let e = id.decrypt(&damaged).unwrap_err();
        assert!(e.contains("damaged") || e.contains("not an age ciphertext"), "{e}");
        assert!(recipient("nope").is_err());
    }

    trait Expose {
        fn expose_secret_for_test(&self) -> String;
    }
    impl Expose for age::secrecy::SecretString {
        fn expose_secret_for_test(&self) -> String {
            use age::secrecy::ExposeSecret;
            self.expose_secret().to_string()
        }
    }
}
