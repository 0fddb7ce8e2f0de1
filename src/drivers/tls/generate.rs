//! Makes certificates: the fallback the proxies present when no route's
//! certificate matches a client's SNI (a TLS listener needs one), and, in
//! tests, whole chains.

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, PKeyRef, Private};
use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509Name, X509Ref, X509};

use super::check::{check_at, Origins};
use super::error::{reasons, TlsError};
use super::material::Material;

const TEN_YEARS: i64 = 10 * 365 * 86_400;

/// A self-signed certificate for `name` (EC P-256, valid from an hour ago
/// for 10 years; the hour absorbs clock skew), with `name` as CN and as its
/// one DNS SAN. `name` is 1 to 64 letters, digits, '.', '-', '_' or '*'.
pub fn self_signed(name: &str) -> Result<Material, TlsError> {
    let what = format!("a self-signed certificate for {name:?}");
    let fine = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '*');
    if name.is_empty() || name.len() > 64 || !name.chars().all(fine) {
        let detail = "use 1 to 64 letters, digits, '.', '-', '_' or '*' (a DNS name)".into();
        return Err(TlsError::Failed { what, detail });
    }
    let made = || -> Result<(X509, PKey<Private>), ErrorStack> {
        let key = PKey::from_ec_key(EcKey::generate(&*EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?)?)?;
        let now = now();
        let spec = Spec {
            cn: name,
            names: &[name],
            not_before: now - 3600,
            not_after: now + TEN_YEARS,
            ca: false,
        };
        Ok((build(&spec, &key, None)?, key))
    };
    let (cert, key) = made().map_err(|e| TlsError::Failed {
        what: what.clone(),
        detail: reasons(&e),
    })?;
    let pem = |r: Result<Vec<u8>, ErrorStack>| {
        r.map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| TlsError::Failed {
                what: what.clone(),
                detail: reasons(&e),
            })
    };
    let (chain, key) = (pem(cert.to_pem())?, pem(key.private_key_to_pem_pkcs8())?);
    check_at(
        &chain,
        &key,
        &[],
        None,
        &Origins {
            cert: &what,
            key: &what,
        },
    )
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// What a certificate [`build`] makes says.
pub(super) struct Spec<'a> {
    pub cn: &'a str,
    /// DNS SANs; none leaves the extension out.
    pub names: &'a [&'a str],
    pub not_before: i64,
    pub not_after: i64,
    /// A CA (may sign others) or a TLS server leaf.
    pub ca: bool,
}

/// A certificate for `key`, signed by `issuer` (its certificate and key),
/// or by `key` itself when `issuer` is None.
pub(super) fn build(
    spec: &Spec,
    key: &PKeyRef<Private>,
    issuer: Option<(&X509Ref, &PKeyRef<Private>)>,
) -> Result<X509, ErrorStack> {
    let mut subject = X509Name::builder()?;
    subject.append_entry_by_nid(Nid::COMMONNAME, spec.cn)?;
    let subject = subject.build();
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    b.set_serial_number(&*serial.to_asn1_integer()?)?;
    b.set_subject_name(&subject)?;
    b.set_issuer_name(issuer.map_or(&*subject, |(c, _)| c.subject_name()))?;
    b.set_pubkey(key)?;
    b.set_not_before(&*time(spec.not_before)?)?;
    b.set_not_after(&*time(spec.not_after)?)?;
    if spec.ca {
        b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        b.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().build()?)?;
    } else {
        b.append_extension(BasicConstraints::new().critical().build()?)?;
        b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
        b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    }
    if !spec.names.is_empty() {
        let mut san = SubjectAlternativeName::new();
        for n in spec.names {
            san.dns(n);
        }
        let ext = san.build(&b.x509v3_context(issuer.map(|(c, _)| c), None))?;
        b.append_extension(ext)?;
    }
    let signer = issuer.map_or(key, |(_, k)| k);
    // Ed25519 signs the message itself: no separate digest.
    let digest = if signer.id() == Id::ED25519 {
        MessageDigest::null()
    } else {
        MessageDigest::sha256()
    };
    b.sign(signer, digest)?;
    Ok(b.build())
}

fn time(unix: i64) -> Result<Asn1Time, ErrorStack> {
    Asn1Time::from_unix(unix as libc::time_t)
}
