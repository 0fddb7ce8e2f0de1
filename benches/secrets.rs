//! Decrypting 1,000 age secrets in one pass, as a host does for each
//! commit it admits: 10 services of 100 secrets each, every value a
//! 64-byte token encrypted to the host's X25519 key and to a second
//! recipient (a person), read with `secrets.identity_file`.
//! Run: `cargo bench --bench secrets`. Prints min/median/max wall time.

use std::time::{Duration, Instant};

use age::secrecy::ExposeSecret;
use teal::drivers::age::{encrypt, recipient};
use teal::spec::secret::{Delivery, SecretSource, SecretSpec};

const SERVICES: usize = 10;
const PER_SERVICE: usize = 100;
const RUNS: usize = 15;

fn main() {
    let host = age::x25519::Identity::generate();
    let person = age::x25519::Identity::generate();
    let to = [
        recipient(&host.to_public().to_string()).unwrap(),
        recipient(&person.to_public().to_string()).unwrap(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("age.key");
    std::fs::write(&key, format!("{}\n", host.to_string().expose_secret())).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut files = teal::spec::RepoFiles {
        has_services_dir: true,
        ..Default::default()
    };
    for i in 0..SERVICES {
        files.files.insert(
            format!("services/svc{i}.yaml"),
            format!("active: blue\nblue: {{image: web:1}}\nport: 80\nroute: {{host: svc{i}.example.com}}\nhealth: {{tcp: {{}}}}\n"),
        );
    }
    let mut desired = teal::spec::load(&files).unwrap();
    for (i, svc) in desired.services.values_mut().enumerate() {
        for n in 0..PER_SERVICE {
            let value = format!("{:064x}", i * PER_SERVICE + n);
            let armored = encrypt(&value, &to).unwrap();
            let source = SecretSource::Age {
                file: format!("secrets/svc{i}.yaml"),
                armored,
            };
            let spec = SecretSpec {
                source,
                delivery: Delivery::File,
                value: None,
            };
            svc.secrets.insert(format!("S{n}"), spec);
        }
    }
    let policy = teal::policy::Policy::default();
    let mut times = vec![];
    for _ in 0..RUNS {
        let mut d = desired.clone();
        let t = Instant::now();
        teal::reconcile::secrets::resolve(&mut d, Some(&key), &policy);
        times.push(t.elapsed());
        assert!(d
            .services
            .values()
            .all(|s| s.secret_error.is_none() && s.secrets.values().all(|x| x.value.is_some())));
    }
    times.sort();
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    println!(
        "decrypt {} secrets ({SERVICES} services x {PER_SERVICE}), {RUNS} runs: min {}, median {}, max {} ({:.0} us per secret at the median)",
        SERVICES * PER_SERVICE,
        ms(times[0]),
        ms(times[RUNS / 2]),
        ms(times[RUNS - 1]),
        times[RUNS / 2].as_secs_f64() * 1e6 / (SERVICES * PER_SERVICE) as f64
    );
}
