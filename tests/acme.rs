//! The ACME client (`drivers::acme`) against a real ACME server: Debian's
//! pebble, validating HTTP-01 over the network against a challenge server
//! the test runs (pebble resolves every name to 127.0.0.1 through the
//! test's DNS answerer). Needs `pebble` and `openssl`
//! (`apt-get install -y pebble openssl`).

mod common;

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::acme::{start_pebble, Answer, ChallengeServer, MapChallenges, Pebble};
use openssl::pkey::PKey;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509StoreContext, X509};
use teal::drivers::acme::{issue, AcmeError, AcmeSettings, Issued};

fn settings(directory: String, ca_file: Option<&Path>, state: &Path) -> AcmeSettings {
    AcmeSettings {
        directory,
        email: Some("ops@teal.test".to_string()),
        ca_file: ca_file.map(Path::to_path_buf),
        dir: state.join("acme"),
        timeout: Duration::from_secs(20),
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A pebble validating against a challenge server, and what `issue` needs.
struct Setup {
    server: ChallengeServer,
    pebble: Pebble,
    challenges: MapChallenges,
    state: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let server = ChallengeServer::start();
        let pebble = start_pebble(server.port);
        let challenges = MapChallenges {
            tokens: server.tokens.clone(),
            ..Default::default()
        };
        let state = tempfile::tempdir().unwrap();
        Setup {
            server,
            pebble,
            challenges,
            state,
        }
    }

    fn settings(&self) -> AcmeSettings {
        settings(self.pebble.directory(), Some(&self.pebble.ca_file()), self.state.path())
    }

    async fn issue(&self, hosts: &[&str]) -> Result<Issued, AcmeError> {
        issue(&self.settings(), &names(hosts), &self.challenges).await
    }

    async fn issue_ok(&self, hosts: &[&str]) -> Issued {
        self.issue(hosts)
            .await
            .unwrap_or_else(|e| panic!("{e}\npebble:\n{}", self.pebble.log()))
    }

    fn account_file(&self) -> std::path::PathBuf {
        self.state.path().join("acme/account.json")
    }

    fn published(&self) -> usize {
        self.challenges.published.lock().unwrap().len()
    }

    fn still_served(&self) -> usize {
        self.server.tokens.lock().unwrap().len()
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The leaf's DNS SANs, sorted.
fn sans(leaf: &X509) -> Vec<String> {
    let mut out: Vec<String> = leaf
        .subject_alt_names()
        .expect("a SAN extension")
        .iter()
        .filter_map(|n| n.dnsname().map(str::to_string))
        .collect();
    out.sort();
    out
}

/// Whether `chain` (leaf first) verifies under `root` alone.
fn verifies(chain: &[X509], root: &X509) -> bool {
    let mut store = X509StoreBuilder::new().unwrap();
    store.add_cert(root.clone()).unwrap();
    let store = store.build();
    let mut rest = Stack::new().unwrap();
    for c in &chain[1..] {
        rest.push(c.clone()).unwrap();
    }
    let mut ctx = X509StoreContext::new().unwrap();
    ctx.init(&store, &chain[0], &rest, |c| c.verify_cert()).unwrap()
}

#[tokio::test]
async fn issues_one_certificate_for_two_names_that_verifies_under_pebbles_root() {
    let t = Setup::new();
    let issued = t.issue_ok(&["shop.teal.test", "www.shop.teal.test"]).await;

    let chain = X509::stack_from_pem(issued.chain_pem.as_bytes()).unwrap();
    assert!(chain.len() >= 2, "leaf and intermediate, got {}", chain.len());
    assert_eq!(sans(&chain[0]), ["shop.teal.test", "www.shop.teal.test"]);
    let key = PKey::private_key_from_pem(issued.key_pem.as_bytes()).unwrap();
    assert!(
        chain[0].public_key().unwrap().public_eq(&key),
        "the key is the certificate's"
    );
    let root = X509::from_pem(t.pebble.root_pem().await.as_bytes()).unwrap();
    assert!(verifies(&chain, &root), "the chain verifies under pebble's root");
    let other_root = X509::from_pem(&std::fs::read(t.pebble.ca_file()).unwrap()).unwrap();
    assert!(!verifies(&chain, &other_root), "and not under any root");

    // Pebble fetched each name's challenge from the test's server.
    let hosts = t.server.hosts.lock().unwrap().clone();
    for name in ["shop.teal.test", "www.shop.teal.test"] {
        assert!(
            hosts.iter().any(|h| h.split(':').next() == Some(name)),
            "{name} validated: {hosts:?}"
        );
    }
    assert_eq!(t.published(), 2, "one HTTP-01 answer per name");
    assert_eq!(t.still_served(), 0, "every challenge withdrawn after the order");
    assert!(!format!("{issued:?}").contains("PRIVATE KEY"), "Debug hides the key");
}

#[tokio::test]
async fn a_second_order_reuses_the_stored_account_with_a_new_certificate_key() {
    let t = Setup::new();
    let first = t.issue_ok(&["api.teal.test"]).await;
    let account = std::fs::read(t.account_file()).unwrap();
    assert_eq!(mode(&t.account_file()), 0o600);
    assert_eq!(mode(&t.state.path().join("acme")), 0o700);

    // A name of its own: pebble (Debian's 2.4.0) sometimes hands a second
    // order for the same name the first one's valid authorization, even
    // with PEBBLE_AUTHZREUSE=0, and then nothing is validated again.
    let second = t.issue_ok(&["api2.teal.test"]).await;
    assert_eq!(std::fs::read(t.account_file()).unwrap(), account, "no new account");
    assert_eq!(mode(&t.account_file()), 0o600);
    assert_ne!(first.key_pem, second.key_pem, "a fresh key per order");
    assert_ne!(first.chain_pem, second.chain_pem);
    let leftovers: Vec<_> = std::fs::read_dir(t.state.path().join("acme"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["account.json"], "no temp files");
    assert_eq!(t.published(), 2, "the second order validated its name");
    assert_eq!(t.still_served(), 0);
}

#[tokio::test]
async fn an_account_the_server_forgot_is_replaced_and_the_order_still_succeeds() {
    let mut t = Setup::new();
    t.issue_ok(&["app.teal.test"]).await;
    let account = std::fs::read(t.account_file()).unwrap();
    // Same directory URL, but a fresh pebble: it knows no account.
    t.pebble = t.pebble.restart();
    let issued = t.issue_ok(&["app.teal.test"]).await;
    assert_ne!(
        std::fs::read(t.account_file()).unwrap(),
        account,
        "a new account stored"
    );
    let root = X509::from_pem(t.pebble.root_pem().await.as_bytes()).unwrap();
    let chain = X509::stack_from_pem(issued.chain_pem.as_bytes()).unwrap();
    assert!(verifies(&chain, &root), "issued by the new pebble");
}

/// A failed validation names the domain and pebble's reason, and the
/// challenge is withdrawn all the same.
async fn refused(answer: Answer, reason: &str) {
    let t = Setup::new();
    t.server.set_answer(answer);
    let err = t.issue(&["bad.teal.test"]).await.expect_err("validation must fail");
    let text = err.to_string();
    assert!(
        matches!(err, AcmeError::Invalid { ref domain, .. } if domain == "bad.teal.test"),
        "{text}"
    );
    assert!(text.contains("ACME order at https://127.0.0.1:"), "{text}");
    assert!(text.contains("failed for bad.teal.test: "), "{text}");
    assert!(text.contains("(unauthorized)"), "pebble's problem type: {text}");
    assert!(text.contains(reason), "pebble's detail, {reason:?}: {text}");
    assert!(text.contains("port 80 on it reaches teal's proxy"), "{text}");
    assert_eq!(t.published(), 1);
    assert_eq!(t.still_served(), 0, "withdrawn after the failed order");
}

#[tokio::test]
async fn a_wrong_key_authorization_fails_naming_the_domain_and_the_reason() {
    refused(Answer::Wrong, "not-the-key-authorization").await;
}

#[tokio::test]
async fn a_404_challenge_fails_naming_the_domain_and_the_reason() {
    refused(Answer::NotFound, "404").await;
}

#[tokio::test]
async fn a_closed_port_is_unreachable_naming_the_url() {
    let port = common::free_port();
    let state = tempfile::tempdir().unwrap();
    let directory = format!("https://127.0.0.1:{port}/dir");
    let s = settings(directory.clone(), None, state.path());
    let err = issue(&s, &names(&["x.teal.test"]), &MapChallenges::default())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, AcmeError::Unreachable { .. }), "{text}");
    assert!(
        text.starts_with(&format!("ACME directory {directory} is unreachable: ")),
        "{text}"
    );
    assert!(text.contains("Connection refused"), "{text}");
    assert!(text.ends_with("; check acme.directory in the host config"), "{text}");
    assert!(!state.path().join("acme").exists(), "nothing stored");
}

#[tokio::test]
async fn a_directory_that_never_answers_fails_within_the_timeout() {
    // Connections queue in the backlog; nothing ever answers the TLS hello.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let directory = format!("https://{}/dir", silent.local_addr().unwrap());
    let state = tempfile::tempdir().unwrap();
    let mut s = settings(directory.clone(), None, state.path());
    s.timeout = Duration::from_secs(2);
    let start = Instant::now();
    let err = issue(&s, &names(&["x.teal.test"]), &MapChallenges::default())
        .await
        .unwrap_err();
    let took = start.elapsed();
    let text = err.to_string();
    assert!(matches!(err, AcmeError::Unreachable { .. }), "{text}");
    assert!(text.contains(&directory), "{text}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "took {took:?}"
    );
}

#[tokio::test]
async fn an_untrusted_directory_certificate_points_at_acme_ca_file() {
    let t = Setup::new();
    let s = settings(t.pebble.directory(), None, t.state.path());
    let err = issue(&s, &names(&["x.teal.test"]), &t.challenges).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, AcmeError::Untrusted { .. }), "{text}");
    assert!(text.contains(&t.pebble.directory()), "{text}");
    assert!(text.contains("set acme.ca_file"), "{text}");
    assert!(!t.account_file().exists());
}

#[tokio::test]
async fn a_ca_file_that_is_no_certificate_is_named() {
    let state = tempfile::tempdir().unwrap();
    let bad = state.path().join("ca.pem");
    std::fs::write(&bad, "not a certificate\n").unwrap();
    let s = settings("https://127.0.0.1:9/dir".into(), Some(&bad), state.path());
    let err = issue(&s, &names(&["x.teal.test"]), &MapChallenges::default())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, AcmeError::CaFile { .. }), "{text}");
    assert!(text.starts_with(&format!("acme.ca_file {}: ", bad.display())), "{text}");
}

#[tokio::test]
async fn a_wildcard_is_refused_before_any_network_call() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let state = tempfile::tempdir().unwrap();
    let s = settings(
        format!("https://{}/dir", listener.local_addr().unwrap()),
        None,
        state.path(),
    );
    let challenges = MapChallenges::default();
    let hosts = names(&["shop.teal.test", "*.teal.test"]);
    let err = issue(&s, &hosts, &challenges).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, AcmeError::Wildcard { .. }), "{text}");
    assert!(
        text.starts_with("*.teal.test: a wildcard cannot be validated over HTTP-01"),
        "{text}"
    );
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "no connection was made: {accepted:?}"
    );
    assert!(challenges.published.lock().unwrap().is_empty());
}
