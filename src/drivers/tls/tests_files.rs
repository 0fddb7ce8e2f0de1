//! `read_files` on real files (some made by the `openssl` CLI, the way
//! people make them) and the `Store` round trip.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::testkit::*;
use super::*;

const SHOP: &[&str] = &["shop.example.com", "www.shop.example.com"];

fn hosts(h: &[&str]) -> Vec<String> {
    h.iter().map(|s| s.to_string()).collect()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn files_made_by_the_openssl_cli_are_read_and_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let san = "subjectAltName=DNS:shop.example.com,DNS:www.shop.example.com";
    let subj = "/CN=shop.example.com";
    openssl_cli(
        d,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rsa.key", "-out", "rsa.pem", "-subj", subj,
            "-addext", san, "-days", "30",
        ],
    );
    openssl_cli(d, &["rsa", "-traditional", "-in", "rsa.key", "-out", "rsa-trad.key"]);
    // `ecparam -genkey` writes an EC PARAMETERS block before the key.
    openssl_cli(d, &["ecparam", "-name", "prime256v1", "-genkey", "-out", "ec.key"]);
    openssl_cli(
        d,
        &[
            "req", "-x509", "-key", "ec.key", "-out", "ec.pem", "-subj", subj, "-addext", san, "-days", "30",
        ],
    );
    openssl_cli(d, &["genpkey", "-algorithm", "ed25519", "-out", "ed.key"]);
    openssl_cli(
        d,
        &[
            "req", "-x509", "-key", "ed.key", "-out", "ed.pem", "-subj", subj, "-addext", san, "-days", "30",
        ],
    );
    let text = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    assert!(text("rsa-trad.key").starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    assert!(text("ec.key").starts_with("-----BEGIN EC PARAMETERS-----"));
    let combined = write(d, "combined.pem", &format!("{}{}", text("ec.pem"), text("ec.key")));
    let cases = [
        ("rsa.pem", "rsa.key"),
        ("rsa.pem", "rsa-trad.key"),
        ("ec.pem", "ec.key"),
        ("ed.pem", "ed.key"),
        ("combined.pem", "combined.pem"),
    ];
    for (cert, key) in cases {
        let m = read_files(&d.join(cert), &d.join(key), &hosts(SHOP), now())
            .unwrap_or_else(|e| panic!("{cert} + {key}: {e}"));
        assert_eq!(m.info.subject, "CN=shop.example.com");
        assert_eq!(m.info.names, SHOP);
        assert!((m.info.not_after - now() - 30 * DAY).abs() < 60, "{cert}");
    }
    let wrong = read_files(&combined, &d.join("rsa.key"), &hosts(SHOP), now()).unwrap_err();
    let (c, k) = (combined.display(), d.join("rsa.key").display().to_string());
    assert!(
        wrong.to_string().starts_with(&format!(
            "{c}: the key in {k} does not match the certificate (subject CN=shop.example.com)"
        )),
        "{wrong}"
    );
}

#[test]
fn file_problems_name_the_file_at_fault() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let l = leaf(SHOP, Alg::Ec, None);
    let other = leaf(SHOP, Alg::Ec, None);
    let cert = write(d, "shop.pem", &l.cert_pem());
    let key = write(d, "shop.key", &l.key_pem());
    let two = write(d, "two.key", &format!("{}{}", l.key_pem(), other.key_pem()));
    let big = write(d, "big.pem", &format!("{}{}", l.cert_pem(), "#".repeat(1 << 20)));
    let empty = write(d, "empty.pem", "");
    let der = d.join("shop.der");
    std::fs::write(&der, l.cert.to_der().unwrap()).unwrap();
    let missing = d.join("missing.pem");
    let zero = PathBuf::from("/dev/zero");
    let p = |p: &Path| p.display().to_string();
    let cases: Vec<(&Path, &Path, String)> = vec![
        (&cert, &two, format!("{}: 2 private keys found, expected one", p(&two))),
        (&big, &key, format!("{}: larger than 1 MiB", p(&big))),
        (&cert, &big, format!("{}: larger than 1 MiB", p(&big))),
        (&zero, &key, "/dev/zero: larger than 1 MiB".into()),
        (&empty, &key, format!("{}: not PEM: it is empty", p(&empty))),
        (&der, &key, format!("{}: not PEM: not text (a DER file?", p(&der))),
        (
            &missing,
            &key,
            format!("{}: cannot open: No such file or directory", p(&missing)),
        ),
        (d, &key, format!("{}: cannot read: Is a directory", p(d))),
        (&cert, &cert, format!("{}: no private key found", p(&cert))),
        (&key, &key, format!("{}: no certificate found", p(&key))),
    ];
    for (c, k, want) in cases {
        let got = read_files(c, k, &hosts(SHOP), now()).unwrap_err().to_string();
        assert!(
            got.starts_with(&want),
            "{} + {}:\n got: {got}\nwant: {want}",
            p(c),
            p(k)
        );
    }
    read_files(&cert, &key, &hosts(SHOP), now()).unwrap();
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_store_keeps_combined_files_0600_in_a_0700_dir_and_reads_them_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state/certs");
    let store = Store::new(&dir);
    assert_eq!(
        store.list().unwrap(),
        Vec::<String>::new(),
        "no dir yet: nothing stored"
    );
    assert!(store.get("shop", None).unwrap().is_none());
    let l = leaf(SHOP, Alg::Rsa, None);
    let m = check(&l.cert_pem(), &l.key_pem(), &[], now(), "x").unwrap();
    let path = store.put("shop.example.com", &m).unwrap();
    assert_eq!(path, dir.join("shop.example.com.pem"));
    assert_eq!(store.path("shop.example.com"), path);
    assert_eq!((mode(&dir), mode(&path)), (0o700, 0o600));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{}{}", m.chain_pem, m.key_pem)
    );
    let back = store.get("shop.example.com", Some(now())).unwrap().unwrap();
    assert_eq!(
        (back.info, back.chain_pem, back.key_pem),
        (m.info.clone(), m.chain_pem.clone(), m.key_pem.clone())
    );

    // Replacing keeps one file, no temp file, and a loosened dir is made 0700 again.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let fallback = self_signed("fallback.teal.invalid").unwrap();
    store.put("shop.example.com", &fallback).unwrap();
    store.put("fallback", &fallback).unwrap();
    assert_eq!(mode(&dir), 0o700);
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(store.list().unwrap(), ["fallback", "shop.example.com"]);
    let got = store.get("shop.example.com", None).unwrap().unwrap();
    assert_eq!(got.info, fallback.info);

    store.remove("shop.example.com").unwrap();
    store.remove("shop.example.com").unwrap();
    assert_eq!(store.list().unwrap(), ["fallback"]);
    assert!(store.get("shop.example.com", None).unwrap().is_none());
}

#[test]
fn the_store_checks_what_it_reads_back_and_refuses_unsafe_names() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::new(tmp.path());
    let old = leaf_at(SHOP, Alg::Ec, None, now() - 100 * DAY, now() - DAY);
    let m = check(&old.cert_pem(), &old.key_pem(), &[], now() - 50 * DAY, "x").unwrap();
    store.put("old", &m).unwrap();
    assert_eq!(
        store.get("old", None).unwrap().unwrap().info,
        m.info,
        "None skips the dates"
    );
    let e = store.get("old", Some(now())).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}: the certificate expired on", store.path("old").display())),
        "{e}"
    );
    std::fs::write(store.path("junk"), "junk").unwrap();
    std::fs::write(tmp.path().join(".old.pem.1.0.tmp"), "left by a crash").unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "").unwrap();
    let e = store.get("junk", None).unwrap_err().to_string();
    assert!(e.contains("junk.pem: not PEM"), "{e}");
    assert_eq!(store.list().unwrap(), ["junk", "old"]);

    let long = "a".repeat(102);
    for bad in ["../x", "a/b", "", "Shop", ".hidden", "-x", "a b", "ü", &long] {
        let e = store.put(bad, &m).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{bad:?}: not a name teal stores")),
            "{bad:?}: {e}"
        );
        assert!(store.get(bad, None).is_err() && store.remove(bad).is_err(), "{bad:?}");
    }
    store.put(&"a".repeat(101), &m).unwrap();
    store.put("0.x_y-z", &m).unwrap();
    assert!(!tmp.path().join("x.pem").exists() && !tmp.path().parent().unwrap().join("x.pem").exists());
}
