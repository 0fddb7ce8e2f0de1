use std::os::unix::fs::PermissionsExt;

use super::*;

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn file(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    /// A `docker-credential-<name>` that records its stdin and arguments
    /// and prints `answer` (exiting with `code`).
    fn helper(&self, name: &str, answer: &str, code: i32) {
        let log = self.dir.path().join(format!("{name}.asked"));
        self.file(
            &format!("docker-credential-{name}"),
            &format!(
                "#!/bin/sh\necho \"args:$*\" > '{}'\ncat >> '{}'\nprintf '%s' '{answer}'\nexit {code}\n",
                log.display(),
                log.display()
            ),
            0o755,
        );
    }

    fn asked(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.asked"))).unwrap()
    }

    fn auth(&self, registries: Vec<Registry>, config: Option<&str>) -> RegistryAuth {
        RegistryAuth {
            registries,
            docker_config: Some(match config {
                Some(c) => self.file("config.json", c, 0o600),
                None => self.dir.path().join("absent.json"),
            }),
            // The helpers' directory first; the shell's tools after it.
            helper_path: Some(
                format!(
                    "{}:{}",
                    self.dir.path().display(),
                    std::env::var("PATH").unwrap_or_default()
                )
                .into(),
            ),
        }
    }
}

fn user_pass(f: &Found) -> (String, String) {
    let c = f.credentials.as_ref().expect("credentials");
    (c.username.clone().unwrap(), c.password.clone().unwrap())
}

#[tokio::test]
async fn the_host_config_comes_before_dockers_config() {
    let s = Setup::new();
    let pw = s.file("pw", "s3cret\n", 0o600);
    let reg = Registry {
        host: "127.0.0.1:5000".into(),
        username: "ci".into(),
        password_file: pw,
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode("other:pass");
    let config = format!(
        r#"{{"auths": {{"127.0.0.1:5000": {{"auth": "{b64}"}}, "https://index.docker.io/v1/": {{"auth": "{b64}"}}}}}}"#
    );
    let auth = s.auth(vec![reg], Some(&config));
    let f = auth.for_image("127.0.0.1:5000/shop/web:1").await.unwrap();
    assert_eq!(user_pass(&f), ("ci".into(), "s3cret".into()));
    assert_eq!(f.source, "registries[0] in the host config (user ci)");
    assert!(!format!("{f:?}").contains("s3cret"), "{f:?}");
    // Another registry: Docker's config, with the Hub's key for a bare name.
    let hub = auth.for_image("library/nginx:1").await.unwrap();
    assert_eq!(user_pass(&hub), ("other".into(), "pass".into()));
    assert!(
        hub.source.starts_with("auths in ") && hub.source.ends_with("(user other)"),
        "{}",
        hub.source
    );
    let unknown = auth.for_image("elsewhere.example.com/web:1").await.unwrap();
    assert!(unknown.credentials.is_none() && unknown.source.starts_with("none"));
}

#[tokio::test]
async fn an_unreadable_or_empty_password_file_is_named() {
    let s = Setup::new();
    let reg = |p: PathBuf| Registry {
        host: "r.example.com".into(),
        username: "ci".into(),
        password_file: p,
    };
    let missing = s.auth(vec![reg(s.dir.path().join("nope"))], None);
    let e = missing.for_image("r.example.com/web:1").await.unwrap_err();
    assert!(
        e.starts_with("registries[0].password_file ") && e.contains("nope"),
        "{e}"
    );
    let empty = s.auth(vec![reg(s.file("empty", " \n", 0o600))], None);
    let e = empty.for_image("r.example.com/web:1").await.unwrap_err();
    assert!(e.contains("the file is empty"), "{e}");
    let shared = s.auth(vec![reg(s.file("shared", "s3cret", 0o640))], None);
    let e = shared.for_image("r.example.com/web:1").await.unwrap_err();
    assert!(
        e.contains("mode 640 lets others than its owner read it: chmod 600"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
}

#[tokio::test]
async fn cred_helpers_then_creds_store_speak_the_helper_protocol() {
    let s = Setup::new();
    s.helper(
        "teal-one",
        r#"{"ServerURL":"r.example.com","Username":"robot","Secret":"tok-1"}"#,
        0,
    );
    s.helper(
        "teal-store",
        r#"{"ServerURL":"x","Username":"<token>","Secret":"idtok"}"#,
        0,
    );
    let auth = s.auth(
        vec![],
        Some(r#"{"credHelpers": {"r.example.com": "teal-one"}, "credsStore": "teal-store", "auths": {"r.example.com": {"auth": "eDp5"}}}"#),
    );
    let f = auth.for_image("r.example.com/shop/web:1.4").await.unwrap();
    assert_eq!(user_pass(&f), ("robot".into(), "tok-1".into()));
    assert_eq!(f.source, "docker-credential-teal-one (user robot)");
    // The registry goes on stdin; the only argument is `get`.
    assert_eq!(s.asked("teal-one"), "args:get\nr.example.com");
    let other = auth.for_image("other.example.com/web:1").await.unwrap();
    let c = other.credentials.unwrap();
    assert_eq!(c.identitytoken.as_deref(), Some("idtok"));
    assert!(c.username.is_none());
    assert_eq!(s.asked("teal-store"), "args:get\nother.example.com");
}

#[tokio::test]
async fn a_helper_without_credentials_means_anonymous_and_a_broken_one_is_an_error() {
    let s = Setup::new();
    s.helper("none", "credentials not found in native keychain", 1);
    s.helper("broken", "gpg: decryption failed", 2);
    s.helper("garbled", "not json", 0);
    let with = |h: &str| s.auth(vec![], Some(&format!(r#"{{"credsStore": "{h}"}}"#)));
    let f = with("none").for_image("r.example.com/web:1").await.unwrap();
    assert!(f.credentials.is_none());
    assert_eq!(f.source, "none (docker-credential-none has none for this registry)");
    let e = with("broken").for_image("r.example.com/web:1").await.unwrap_err();
    assert!(
        e.starts_with("docker-credential-broken get failed") && e.contains("decryption failed"),
        "{e}"
    );
    let e = with("garbled").for_image("r.example.com/web:1").await.unwrap_err();
    assert!(e.contains("not credentials JSON"), "{e}");
    let e = with("absent").for_image("r.example.com/web:1").await.unwrap_err();
    assert!(e.starts_with("docker-credential-absent: cannot run it"), "{e}");
}

#[tokio::test]
async fn a_helper_name_that_is_a_path_is_refused_before_running_anything() {
    let s = Setup::new();
    let auth = s.auth(vec![], Some(r#"{"credsStore": "../../tmp/x"}"#));
    let e = auth.for_image("r.example.com/web:1").await.unwrap_err();
    assert!(e.contains("is not a helper name"), "{e}");
}

#[tokio::test]
async fn a_docker_config_that_is_not_json_is_named() {
    let s = Setup::new();
    let auth = s.auth(vec![], Some("{auths"));
    let e = auth.for_image("r.example.com/web:1").await.unwrap_err();
    assert!(e.contains("config.json: not JSON"), "{e}");
}

#[test]
fn registry_of_references() {
    assert_eq!(registry_of("registry.example.com/shop/web:1"), "registry.example.com");
    assert_eq!(registry_of("localhost:5000/web"), "localhost:5000");
    assert_eq!(registry_of("shop/web:1"), "https://index.docker.io/v1/");
    assert_eq!(registry_of("web"), "https://index.docker.io/v1/");
}
