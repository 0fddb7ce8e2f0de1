//! `check` against real certificates and keys of each kind, and each way
//! the material can be wrong.

use openssl::pkey::PKey;

use super::testkit::*;
use super::*;

const SHOP: &[&str] = &["shop.example.com", "www.shop.example.com"];
const ORIGIN: &str = "/etc/teal/certs/shop.pem";

fn hosts(h: &[&str]) -> Vec<String> {
    h.iter().map(|s| s.to_string()).collect()
}

fn err(chain: &str, key: &str, h: &[&str]) -> String {
    match check(chain, key, &hosts(h), now(), ORIGIN) {
        Ok(m) => panic!("checked: {m:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_good_leaf_of_each_key_kind_and_format_is_accepted_with_its_info() {
    let rsa = leaf(SHOP, Alg::Rsa, None);
    let ec = leaf(SHOP, Alg::Ec, None);
    let ed = leaf(SHOP, Alg::Ed25519, None);
    let cases = [
        ("rsa pkcs8", &rsa, rsa.key_pem()),
        ("rsa traditional", &rsa, traditional(&rsa.key)),
        ("ec pkcs8", &ec, ec.key_pem()),
        ("ec traditional", &ec, traditional(&ec.key)),
        ("ed25519 pkcs8", &ed, ed.key_pem()),
    ];
    for (what, made, key) in cases {
        let m = check(&made.cert_pem(), &key, &hosts(SHOP), now(), ORIGIN).unwrap_or_else(|e| panic!("{what}: {e}"));
        let der_sha = hex::encode(openssl::sha::sha256(&made.cert.to_der().unwrap()));
        assert_eq!(m.info.subject, "CN=shop.example.com", "{what}");
        assert_eq!(m.info.issuer, "CN=shop.example.com", "{what}");
        assert_eq!(m.info.names, SHOP, "{what}");
        assert_eq!(m.info.sha256, der_sha, "{what}");
        assert!(
            m.info.not_before <= now() - DAY + 5 && m.info.not_before >= now() - DAY - 5,
            "{what}"
        );
        assert!((m.info.not_after - (now() + 90 * DAY)).abs() <= 5, "{what}");
        assert_eq!(
            m.chain_pem,
            made.cert_pem(),
            "{what}: the chain is the certificate's PEM"
        );
        assert!(
            m.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"),
            "{what}: the key is PKCS#8"
        );
        // Canonical material checks again as itself.
        check(&m.chain_pem, &m.key_pem, &hosts(SHOP), now(), ORIGIN).unwrap();
    }
}

#[test]
fn a_combined_file_a_full_chain_and_a_cn_only_certificate_are_accepted() {
    let root = ca("Teal Test Root");
    let mid = intermediate("Teal Test Intermediate", &root);
    let l = leaf(SHOP, Alg::Rsa, Some(&mid));
    let chain = format!("{}{}{}", l.cert_pem(), mid.cert_pem(), root.cert_pem());
    let combined = format!("{chain}{}", l.key_pem());
    let m = check(&combined, &combined, &hosts(&["WWW.shop.example.com."]), now(), ORIGIN).unwrap();
    assert_eq!(m.info.issuer, "CN=Teal Test Intermediate");
    assert_eq!(m.chain_pem, chain, "the key is not in the chain");
    assert_eq!(m.chain_pem.matches("BEGIN CERTIFICATE").count(), 3);

    let cn_key = key(Alg::Ec);
    let spec = super::generate::Spec {
        cn: "old.example.com",
        names: &[],
        not_before: now() - DAY,
        not_after: now() + DAY,
        ca: false,
    };
    let cert = super::generate::build(&spec, &cn_key, None).unwrap();
    let pem = String::from_utf8(cert.to_pem().unwrap()).unwrap();
    let m = check(&pem, &pkcs8(&cn_key), &hosts(&["old.example.com"]), now(), ORIGIN).unwrap();
    assert_eq!(m.info.names, ["old.example.com"]);
}

#[test]
fn a_wildcard_covers_exactly_one_label() {
    let w = leaf(&["*.example.com"], Alg::Ec, None);
    let (c, k) = (w.cert_pem(), w.key_pem());
    check(&c, &k, &hosts(&["shop.example.com", "API.example.com"]), now(), ORIGIN).unwrap();
    for host in ["a.b.example.com", "example.com", ".example.com", "shop.example.org"] {
        let e = err(&c, &k, &[host]);
        assert_eq!(
            e,
            format!("{ORIGIN}: the certificate covers *.example.com but not {host}")
        );
    }
}

#[test]
fn each_broken_material_is_refused_naming_the_origin_and_the_cause() {
    let good = leaf(SHOP, Alg::Rsa, None);
    let other = leaf(&["other.example.com"], Alg::Rsa, None);
    let expired = leaf_at(SHOP, Alg::Ec, None, 1_700_000_000, 1_767_312_000);
    let from = now() + 10 * DAY;
    let future = leaf_at(SHOP, Alg::Ec, None, from, from + 90 * DAY);
    let root = ca("Teal Test Root");
    let mid = intermediate("Teal Test Intermediate", &root);
    let chained = leaf(SHOP, Alg::Ec, Some(&mid));
    let dsa = PKey::from_dsa(openssl::dsa::Dsa::generate(1024).unwrap()).unwrap();
    let encrypted = String::from_utf8(
        good.key
            .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_128_cbc(), b"pw")
            .unwrap(),
    )
    .unwrap();
    let (c, k) = (good.cert_pem(), good.key_pem());
    let two_keys = format!("{k}{}", other.key_pem());
    let wrong_order = format!("{}{}{}", mid.cert_pem(), chained.cert_pem(), root.cert_pem());
    let cases: Vec<(&str, String, String, &[&str], String)> = vec![
        ("mismatch", other.cert_pem(), k.clone(), &[], format!("{ORIGIN}: the key does not match the certificate (subject CN=other.example.com); use the key the certificate was issued for")),
        ("expired", expired.cert_pem(), expired.key_pem(), SHOP, format!("{ORIGIN}: the certificate expired on 2026-01-02 00:00:00 UTC; renew it")),
        ("future", future.cert_pem(), future.key_pem(), SHOP, format!("{ORIGIN}: the certificate is not valid before {}", super::x509::utc(from))),
        ("not covered", c.clone(), k.clone(), &["shop.example.com", "api.example.com", "x.example.com"], format!("{ORIGIN}: the certificate covers shop.example.com, www.shop.example.com but not api.example.com, x.example.com")),
        ("garbage", "hello\nworld\n".into(), k.clone(), &[], format!("{ORIGIN}: not PEM: no \"-----BEGIN\" line")),
        ("empty", String::new(), k.clone(), &[], format!("{ORIGIN}: not PEM: it is empty")),
        ("key only", k.clone(), k.clone(), &[], format!("{ORIGIN}: no certificate found (expected PEM \"-----BEGIN CERTIFICATE-----\"")),
        ("no key", c.clone(), c.clone(), &[], format!("{ORIGIN}: no private key found")),
        ("two keys", c.clone(), two_keys, &[], format!("{ORIGIN}: 2 private keys found, expected one")),
        ("encrypted", c.clone(), encrypted, &[], format!("{ORIGIN}: the private key at line 1 is encrypted; teal needs it unencrypted")),
        ("dsa", c.clone(), pkcs8(&dsa), &[], format!("{ORIGIN}: the private key is DSA; teal serves RSA, EC or Ed25519 keys")),
        ("chain order", wrong_order, chained.key_pem(), &[], format!("{ORIGIN}: certificate 2 in the chain (CN=shop.example.com) did not sign certificate 1 (CN=Teal Test Intermediate)")),
        ("broken cert", "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n".into(), k.clone(), &[], format!("{ORIGIN}: the certificate at line 1 cannot be read: ")),
    ];
    for (what, chain, key, h, want) in cases {
        let got = err(&chain, &key, h);
        assert!(got.starts_with(&want), "{what}:\n got: {got}\nwant: {want}...");
    }
}

#[test]
fn no_error_about_a_key_quotes_any_of_its_lines() {
    let good = leaf(SHOP, Alg::Rsa, None);
    let key = good.key_pem();
    let lines: Vec<&str> = key.lines().collect();
    let body: String = lines[1..lines.len() - 1].concat();
    // Valid base64, broken DER: a middle line dropped (64 chars = 48 bytes).
    let truncated = [&lines[..5], &lines[6..]].concat().join("\n");
    let bad_base64 = key.replacen(&lines[3][..8], "!*!*!*!*", 1);
    let garbage = key.replace("-----", "");
    for (what, broken) in [
        ("truncated", truncated),
        ("bad base64", bad_base64),
        ("garbage", garbage),
    ] {
        let e = err(&good.cert_pem(), &broken, SHOP);
        assert!(e.starts_with(ORIGIN), "{what}: {e}");
        for line in broken
            .lines()
            .chain(key.lines())
            .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        {
            assert!(!e.contains(line), "{what}: the error quotes a key line: {e}");
        }
        for i in 0..body.len().saturating_sub(12) {
            assert!(!e.contains(&body[i..i + 12]), "{what}: the error quotes key bytes: {e}");
        }
    }
}

#[test]
fn debug_of_material_shows_the_info_and_never_the_key() {
    let m = self_signed("fallback.teal.invalid").unwrap();
    let shown = format!("{m:?}");
    assert!(
        shown.starts_with("Material { info: CertInfo { subject: \"CN=fallback.teal.invalid\""),
        "{shown}"
    );
    assert!(shown.ends_with("key: <redacted> }"), "{shown}");
    for line in m.key_pem.lines() {
        assert!(!shown.contains(line), "{shown}");
    }
}

#[test]
fn the_fallback_is_a_self_signed_p256_certificate_for_ten_years() {
    let m = self_signed("fallback.teal.invalid").unwrap();
    assert_eq!(m.info.subject, "CN=fallback.teal.invalid");
    assert_eq!(m.info.issuer, m.info.subject);
    assert_eq!(m.info.names, ["fallback.teal.invalid"]);
    assert!((m.info.not_after - m.info.not_before - (3650 * DAY + 3600)).abs() <= 5);
    let key = PKey::private_key_from_pem(m.key_pem.as_bytes()).unwrap();
    assert_eq!(
        key.ec_key().unwrap().group().curve_name(),
        Some(openssl::nid::Nid::X9_62_PRIME256V1)
    );
    check(&m.chain_pem, &m.key_pem, &hosts(&["fallback.teal.invalid"]), now(), "x").unwrap();
    assert_ne!(self_signed("fallback.teal.invalid").unwrap().info.sha256, m.info.sha256);
    for bad in ["", "a b", "a/b", &"a".repeat(65)] {
        let e = self_signed(bad).unwrap_err().to_string();
        assert!(e.contains("use 1 to 64 letters"), "{bad:?}: {e}");
    }
}
