//! Reading and checking certificate material: the chain parses, leaf
//! first; exactly one key, of a kind the proxies serve, matching the leaf;
//! valid now; covering every host of the route.

use std::io::Read;
use std::path::Path;

use openssl::pkey::{Id, PKey, Private};
use openssl::x509::X509;

use super::error::{reasons, TlsError};
use super::material::Material;
use super::pem::{blocks, Kind};
use super::x509::{info, name, utc};

/// The most teal reads of a certificate or key file.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Where the chain and the key came from, for errors.
pub(super) struct Origins<'a> {
    pub cert: &'a str,
    pub key: &'a str,
}

/// Parses and checks PEM text: at least one certificate (leaf first, then
/// intermediates, each signed by the next), exactly one private key (RSA,
/// EC or Ed25519; PKCS#8 or traditional; not encrypted), the key matches
/// the leaf, `now` (unix seconds) within the leaf's validity, and every
/// name in `hosts` covered by the leaf (an exact DNS SAN, or a `*.` SAN
/// covering exactly one label). Certificates are taken from `chain_pem` and
/// the key from `key_pem`, other blocks ignored, so one combined PEM text
/// may be passed as both. `origin` names where the text came from (a file,
/// or "ACME order for shop.example.com") and starts every error; no error
/// quotes the key.
pub fn check(chain_pem: &str, key_pem: &str, hosts: &[String], now: i64, origin: &str) -> Result<Material, TlsError> {
    let origins = Origins {
        cert: origin,
        key: origin,
    };
    check_at(chain_pem, key_pem, hosts, Some(now), &origins)
}

/// Reads a certificate file and a key file (which may be the same combined
/// PEM file), each at most 1 MiB, then [`check`]s them. Errors name the file
/// at fault. Blocking: call it off the async runtime.
pub fn read_files(cert: &Path, key: &Path, hosts: &[String], now: i64) -> Result<Material, TlsError> {
    let chain = read_capped(cert)?;
    let key_text = if key == cert { chain.clone() } else { read_capped(key)? };
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    check_at(&chain, &key_text, hosts, Some(now), &Origins { cert: &c, key: &k })
}

/// [`check`], with `now: None` skipping the validity check (a stored
/// certificate is read back to be shown or renewed, expired or not).
pub(super) fn check_at(
    chain_pem: &str,
    key_pem: &str,
    hosts: &[String],
    now: Option<i64>,
    o: &Origins,
) -> Result<Material, TlsError> {
    let certs = certificates(chain_pem, o.cert)?;
    let key = private_key(key_pem, o.key)?;
    chain_order(&certs, o.cert)?;
    let leaf = &certs[0];
    let info = info(leaf).map_err(|e| openssl(o.cert, "reading the certificate", &e))?;
    let leaf_key = leaf.public_key().map_err(|e| TlsError::BadCertificate {
        origin: o.cert.into(),
        line: 1,
        detail: format!("its public key: {}", reasons(&e)),
    })?;
    if !leaf_key.public_eq(&key) {
        return Err(TlsError::KeyMismatch {
            origin: o.cert.into(),
            key: (o.key != o.cert).then(|| o.key.to_string()),
            subject: info.subject.clone(),
        });
    }
    if let Some(now) = now {
        if now < info.not_before {
            return Err(TlsError::NotYetValid {
                origin: o.cert.into(),
                at: utc(info.not_before),
            });
        }
        if now > info.not_after {
            return Err(TlsError::Expired {
                origin: o.cert.into(),
                at: utc(info.not_after),
            });
        }
    }
    let missing: Vec<String> = hosts.iter().filter(|h| !covers(&info.names, h)).cloned().collect();
    if !missing.is_empty() {
        return Err(TlsError::NotCovered {
            origin: o.cert.into(),
            covers: info.names,
            missing,
        });
    }
    Ok(Material {
        chain_pem: chain_text(&certs, o.cert)?,
        key_pem: key_text(&key, o.key)?,
        info,
    })
}

/// Whether a certificate with these names serves `host`: an exact match, or
/// `*.rest` for `label.rest` (one label only, as TLS clients match).
pub(super) fn covers(names: &[String], host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let wildcard = |rest: &str| {
        host.split_once('.')
            .is_some_and(|(first, tail)| !first.is_empty() && tail == rest)
    };
    names
        .iter()
        .any(|n| *n == host || n.strip_prefix("*.").is_some_and(wildcard))
}

fn not_pem(origin: &str, detail: String) -> TlsError {
    TlsError::NotPem {
        origin: origin.into(),
        detail,
    }
}

fn openssl(origin: &str, what: &str, e: &openssl::error::ErrorStack) -> TlsError {
    TlsError::Failed {
        what: format!("{origin}: {what}"),
        detail: reasons(e),
    }
}

fn certificates(text: &str, origin: &str) -> Result<Vec<X509>, TlsError> {
    let mut out = Vec::new();
    for b in blocks(text).map_err(|d| not_pem(origin, d))? {
        if b.kind == Kind::Certificate {
            let cert = X509::from_der(&b.der).map_err(|e| TlsError::BadCertificate {
                origin: origin.into(),
                line: b.line,
                detail: reasons(&e),
            })?;
            out.push(cert);
        }
    }
    if out.is_empty() {
        return Err(TlsError::NoCertificate { origin: origin.into() });
    }
    Ok(out)
}

fn private_key(text: &str, origin: &str) -> Result<PKey<Private>, TlsError> {
    let all = blocks(text).map_err(|d| not_pem(origin, d))?;
    let keys: Vec<_> = all
        .into_iter()
        .filter(|b| matches!(b.kind, Kind::Key | Kind::EncryptedKey))
        .collect();
    let block = match keys.as_slice() {
        [] => return Err(TlsError::NoKey { origin: origin.into() }),
        [one] => one,
        more => {
            return Err(TlsError::KeyCount {
                origin: origin.into(),
                count: more.len(),
            })
        }
    };
    if block.kind == Kind::EncryptedKey {
        return Err(TlsError::EncryptedKey {
            origin: origin.into(),
            line: block.line,
        });
    }
    // DER, not PEM: OpenSSL's PEM reader would prompt on the terminal for
    // an encrypted key's passphrase.
    let key = PKey::private_key_from_der(&block.der).map_err(|e| TlsError::BadKey {
        origin: origin.into(),
        line: block.line,
        detail: reasons(&e),
    })?;
    let kind = match key.id() {
        Id::RSA | Id::EC | Id::ED25519 => return Ok(key),
        Id::DSA => "DSA".to_string(),
        Id::ED448 => "Ed448".to_string(),
        Id::RSA_PSS => "RSA-PSS".to_string(),
        other => format!("of OpenSSL type {}", other.as_raw()),
    };
    Err(TlsError::UnsupportedKey {
        origin: origin.into(),
        kind,
    })
}

/// Each certificate is signed by the one after it: clients need the
/// intermediates in order, and a wrong order fails only some of them.
fn chain_order(certs: &[X509], origin: &str) -> Result<(), TlsError> {
    for (i, pair) in certs.windows(2).enumerate() {
        let signed = pair[1].public_key().and_then(|k| pair[0].verify(&k)).unwrap_or(false);
        if !signed {
            return Err(TlsError::ChainOrder {
                origin: origin.into(),
                index: i + 2,
                subject: name(pair[0].subject_name()),
                issuer: name(pair[1].subject_name()),
            });
        }
    }
    Ok(())
}

fn chain_text(certs: &[X509], origin: &str) -> Result<String, TlsError> {
    let mut out = String::new();
    for c in certs {
        let pem = c.to_pem().map_err(|e| openssl(origin, "writing the certificate", &e))?;
        out.push_str(&String::from_utf8_lossy(&pem));
    }
    Ok(out)
}

fn key_text(key: &PKey<Private>, origin: &str) -> Result<String, TlsError> {
    let pem = key
        .private_key_to_pem_pkcs8()
        .map_err(|e| openssl(origin, "writing the key", &e))?;
    String::from_utf8(pem).map_err(|_| TlsError::Failed {
        what: format!("{origin}: writing the key"),
        detail: "OpenSSL wrote PEM that is not UTF-8".into(),
    })
}

/// The file's text, refusing more than [`MAX_FILE_BYTES`]: by its size, and
/// by the bytes read (a device or a growing file lies about its size).
pub(super) fn read_capped(path: &Path) -> Result<String, TlsError> {
    let shown = path.display().to_string();
    let io = |action| {
        move |source| TlsError::Io {
            path: path.display().to_string(),
            action,
            source,
        }
    };
    let file = std::fs::File::open(path).map_err(io("open"))?;
    if file.metadata().map_err(io("read the size of"))?.len() > MAX_FILE_BYTES {
        return Err(TlsError::TooBig { path: shown });
    }
    let mut buf = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(io("read"))?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(TlsError::TooBig { path: shown });
    }
    String::from_utf8(buf).map_err(|_| {
        not_pem(
            &shown,
            "not text (a DER file? convert it with `openssl x509 -inform der`)".into(),
        )
    })
}
