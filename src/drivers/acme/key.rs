//! A fresh private key and a certificate signing request per order, with
//! openssl (already linked for native-tls).

use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::stack::Stack;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509NameBuilder, X509ReqBuilder};

/// The longest common name X.509 allows (RFC 5280 ub-common-name).
const MAX_CN: usize = 64;

/// A new ECDSA P-256 key (PKCS#8 PEM) and a DER CSR naming every one of
/// `names` as a DNS SAN, the first also as the subject's CN when it fits.
pub(crate) fn key_and_csr(names: &[String]) -> Result<(String, Vec<u8>), ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let mut req = X509ReqBuilder::new()?;
    if let Some(primary) = names.first().filter(|n| n.len() <= MAX_CN) {
        let mut subject = X509NameBuilder::new()?;
        subject.append_entry_by_nid(Nid::COMMONNAME, primary)?;
        req.set_subject_name(&subject.build())?;
    }
    req.set_pubkey(&key)?;
    let mut san = SubjectAlternativeName::new();
    for name in names {
        san.dns(name);
    }
    let mut extensions = Stack::new()?;
    extensions.push(san.build(&req.x509v3_context(None))?)?;
    req.add_extensions(&extensions)?;
    req.sign(&key, MessageDigest::sha256())?;
    let csr = req.build().to_der()?;
    let pem = String::from_utf8(key.private_key_to_pem_pkcs8()?).expect("PEM is ASCII");
    Ok((pem, csr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::x509::X509Req;

    #[test]
    fn the_csr_names_every_host_and_is_signed_by_the_key() {
        let names = vec!["a.example".to_string(), "b.example".to_string()];
        let (pem, der) = key_and_csr(&names).unwrap();
        let req = X509Req::from_der(&der).unwrap();
        let key = PKey::private_key_from_pem(pem.as_bytes()).unwrap();
        assert!(req.verify(&key).unwrap());
        let cn = req.subject_name().entries_by_nid(Nid::COMMONNAME).next().unwrap();
        assert_eq!(cn.data().to_string().unwrap(), "a.example");
        let exts = req.extensions().unwrap();
        let text = String::from_utf8(req.to_text().unwrap()).unwrap();
        assert_eq!(exts.len(), 1);
        assert!(text.contains("DNS:a.example, DNS:b.example"), "{text}");
    }

    #[test]
    fn each_call_makes_a_new_key() {
        let names = vec!["a.example".to_string()];
        assert_ne!(key_and_csr(&names).unwrap().0, key_and_csr(&names).unwrap().0);
    }

    #[test]
    fn a_name_too_long_for_a_cn_is_only_a_san() {
        let long = format!("{}.example", "a".repeat(60));
        let (_, der) = key_and_csr(std::slice::from_ref(&long)).unwrap();
        let req = X509Req::from_der(&der).unwrap();
        assert_eq!(req.subject_name().entries().count(), 0);
        let text = String::from_utf8(req.to_text().unwrap()).unwrap();
        assert!(text.contains(&format!("DNS:{long}")), "{text}");
    }
}
