//! Test material: keys of each kind, CA -> intermediate -> leaf chains,
//! certificates with any dates, and the `openssl` CLI for files made the
//! way people make them.

use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::X509;

use super::generate::{build, Spec};

pub const DAY: i64 = 86_400;

#[derive(Clone, Copy, Debug)]
pub enum Alg {
    Rsa,
    Ec,
    Ed25519,
}

pub fn key(alg: Alg) -> PKey<Private> {
    match alg {
        Alg::Rsa => PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap(),
        Alg::Ec => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
            PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
        }
        Alg::Ed25519 => PKey::generate_ed25519().unwrap(),
    }
}

/// A certificate and its key.
pub struct Made {
    pub cert: X509,
    pub key: PKey<Private>,
}

impl Made {
    pub fn cert_pem(&self) -> String {
        String::from_utf8(self.cert.to_pem().unwrap()).unwrap()
    }
    pub fn key_pem(&self) -> String {
        pkcs8(&self.key)
    }
}

pub fn pkcs8(key: &PKey<Private>) -> String {
    String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap()
}

/// `-----BEGIN RSA PRIVATE KEY-----` / `EC PRIVATE KEY`.
pub fn traditional(key: &PKey<Private>) -> String {
    let pem = match key.rsa() {
        Ok(rsa) => rsa.private_key_to_pem(),
        Err(_) => key.ec_key().unwrap().private_key_to_pem(),
    };
    String::from_utf8(pem.unwrap()).unwrap()
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A self-signed CA (EC), valid from a year ago for ten.
pub fn ca(cn: &str) -> Made {
    let key = key(Alg::Ec);
    let spec = Spec {
        cn,
        names: &[],
        not_before: now() - 365 * DAY,
        not_after: now() + 3650 * DAY,
        ca: true,
    };
    Made {
        cert: build(&spec, &key, None).unwrap(),
        key,
    }
}

/// An intermediate CA signed by `by`.
pub fn intermediate(cn: &str, by: &Made) -> Made {
    let key = key(Alg::Ec);
    let spec = Spec {
        cn,
        names: &[],
        not_before: now() - 30 * DAY,
        not_after: now() + 365 * DAY,
        ca: true,
    };
    Made {
        cert: build(&spec, &key, Some((&by.cert, &by.key))).unwrap(),
        key,
    }
}

/// A server leaf for `names` (CN the first one), valid over [from, to],
/// signed by `by` or self-signed.
pub fn leaf_at(names: &[&str], alg: Alg, by: Option<&Made>, from: i64, to: i64) -> Made {
    let key = key(alg);
    let spec = Spec {
        cn: names[0],
        names,
        not_before: from,
        not_after: to,
        ca: false,
    };
    let cert = build(&spec, &key, by.map(|m| (&*m.cert, &*m.key))).unwrap();
    Made { cert, key }
}

/// A leaf valid from a day ago for 90 days.
pub fn leaf(names: &[&str], alg: Alg, by: Option<&Made>) -> Made {
    leaf_at(names, alg, by, now() - DAY, now() + 90 * DAY)
}

/// Runs Debian's `openssl` CLI in `dir`; a missing CLI fails the test,
/// saying how to get it (no silent skip).
pub fn openssl_cli(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `openssl` ({e}): install it with `apt-get install -y openssl`"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
