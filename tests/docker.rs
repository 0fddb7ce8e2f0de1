//! The Docker driver against the real engine on this machine.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::{app_image, docker_or_fail, unique, DockerGuard};
use teal::drivers::docker::{DockerDriver, DockerError};
use teal::plan::ObservedContainer;
use teal::spec::container::ContainerSpec;
use teal::spec::{Color, RestartPolicy};

struct Fixture {
    docker: DockerDriver,
    image: String,
    service: String,
    _guard: DockerGuard,
}

async fn fixture() -> Fixture {
    docker_or_fail();
    let network = unique("teal-test-net");
    let service = unique("svc");
    let docker = DockerDriver::connect(None, &network).await.expect("connect to Docker");
    docker.ensure_network().await.unwrap();
    let image = app_image(&docker).await;
    let guard = DockerGuard {
        services: vec![service.clone(), format!("{service}-other")],
        network,
    };
    Fixture {
        docker,
        image,
        service,
        _guard: guard,
    }
}

impl Fixture {
    fn spec(&self, color: Color, version: &str) -> ContainerSpec {
        ContainerSpec {
            service: self.service.clone(),
            color,
            image: self.image.clone(),
            port: 8080,
            env: BTreeMap::from([("VERSION".into(), version.into()), ("COLOR".into(), color.to_string())]),
            command: None,
            volumes: vec![],
            labels: BTreeMap::from([("com.example.team".into(), "shop".into())]),
            restart: RestartPolicy::UnlessStopped,
            network: None,
            secrets: Default::default(),
            env_key: Some(Default::default()),
            run_image: None,
            digest: None,
        }
    }
}

/// GET / on a container address, retrying while the app starts.
async fn get(addr: std::net::IpAddr) -> String {
    let url = format!("http://{addr}:8080/");
    let client = teal::health::http_client();
    for _ in 0..50 {
        if let Ok(r) = client.get(&url).send().await {
            return r.text().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not answer");
}

fn ids(cs: &[teal::plan::ObservedContainer]) -> Vec<String> {
    cs.iter().map(|c| inspect(&c.name, "{{.Id}}")).collect()
}

fn inspect(name: &str, format: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "-f", format, name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn ensure_color_runs_labelled_replicas_that_serve_and_is_idempotent() {
    let f = fixture().await;
    let spec = f.spec(Color::Green, "1.0");
    let cs = f.docker.ensure_color(&spec, 2, "abc123").await.unwrap();
    assert_eq!(
        cs.iter()
            .map(|c| (c.name.clone(), c.replica, c.running))
            .collect::<Vec<_>>(),
        [
            (format!("teal-{}-green-0", f.service), 0, true),
            (format!("teal-{}-green-1", f.service), 1, true),
        ]
    );
    for c in &cs {
        assert_eq!(c.spec_hash, spec.hash());
        assert_eq!(c.commit.as_deref(), Some("abc123"));
        assert_eq!(
            get(c.addr.expect("address on the managed network")).await,
            "1.0 green\n"
        );
    }
    assert_eq!(
        inspect(&cs[0].name, "{{index .Config.Labels \"com.example.team\"}}"),
        "shop"
    );
    assert_eq!(
        inspect(&cs[0].name, "{{.HostConfig.RestartPolicy.Name}}"),
        "unless-stopped"
    );
    let before = ids(&cs);
    let again = f.docker.ensure_color(&spec, 2, "abc123").await.unwrap();
    assert_eq!(ids(&again), before, "a second pass changes nothing");
    let observed = f.docker.observe().await.unwrap();
    assert_eq!(observed[&f.service].green.len(), 2);
    assert!(observed[&f.service].blue.is_empty());
    // A step reads its own service alone, as the whole listing has it.
    let other = ContainerSpec {
        service: format!("{}-other", f.service),
        ..spec.clone()
    };
    f.docker.ensure_color(&other, 1, "abc123").await.unwrap();
    let names = |cs: &[ObservedContainer]| cs.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    let one = f.docker.observe_service(&f.service).await.unwrap();
    let all = f.docker.observe().await.unwrap();
    assert_eq!(names(&one.green), names(&all[&f.service].green));
    assert!(one.blue.is_empty());
    assert_eq!(all[&other.service].green.len(), 1, "{all:?}");
    assert!(names(&one.green).iter().all(|n| !n.contains("-other-")), "{one:?}");
    // By name, as the listing has them, and only below the count asked.
    assert_eq!(f.docker.replicas(&f.service, 2).await.unwrap(), one);
    let first = f.docker.replicas(&f.service, 1).await.unwrap();
    assert_eq!(names(&first.green), names(&one.green[..1]));
    // A container of another owner under a replica's name is not teal's.
    let foreign = format!("teal-{}-blue-0", f.service);
    let created = Command::new("docker")
        .args(["create", "--name", &foreign, "--label"])
        .arg(format!("teal.service={}", f.service))
        .args(["--label", "teal.color=blue", "--label", "teal.replica=0", "--label"])
        .arg("teal.owner=someone-else")
        .arg(&f.image)
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let seen = f.docker.replicas(&f.service, 2).await.unwrap();
    assert!(seen.blue.is_empty(), "{seen:?}");
    assert_eq!(seen, one);
}

#[tokio::test]
async fn a_changed_spec_replaces_containers_and_a_stopped_one_is_started() {
    let f = fixture().await;
    let v1 = ids(&f
        .docker
        .ensure_color(&f.spec(Color::Blue, "1.0"), 1, "c1")
        .await
        .unwrap());
    let v2 = f
        .docker
        .ensure_color(&f.spec(Color::Blue, "2.0"), 1, "c2")
        .await
        .unwrap();
    assert_ne!(v1, ids(&v2), "env changed: replaced");
    assert_eq!(get(v2[0].addr.unwrap()).await, "2.0 blue\n");
    // Drift: someone stops it by hand; the next pass starts the same container.
    assert!(Command::new("docker")
        .args(["stop", "-t", "1", &v2[0].name])
        .status()
        .unwrap()
        .success());
    let obs = f.docker.observe().await.unwrap();
    assert!(!obs[&f.service].blue[0].running);
    let v3 = f
        .docker
        .ensure_color(&f.spec(Color::Blue, "2.0"), 1, "c2")
        .await
        .unwrap();
    assert_eq!(ids(&v3), ids(&v2));
    assert!(v3[0].running);
}

#[tokio::test]
async fn containers_teal_did_not_create_are_never_touched() {
    let f = fixture().await;
    let name = format!("teal-{}-blue-0", f.service);
    let made = Command::new("docker")
        .args(["create", "--name", &name, &f.image])
        .output()
        .unwrap();
    assert!(made.status.success());
    let _cleanup = scopeguard(name.clone());
    let err = f
        .docker
        .ensure_color(&f.spec(Color::Blue, "1.0"), 1, "c")
        .await
        .unwrap_err();
    assert!(matches!(err, DockerError::Foreign { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("container {name} exists but teal did not create it")),
        "{err}"
    );
    assert_eq!(inspect(&name, "{{.State.Status}}"), "created", "left alone");
    assert!(
        !f.docker.observe().await.unwrap().contains_key(&f.service),
        "observe ignores it"
    );
    f.docker.remove_service(&f.service).await.unwrap();
    assert_eq!(
        inspect(&name, "{{.Name}}"),
        format!("/{name}"),
        "remove_service left it alone"
    );
}

/// Removes a hand-made container on drop.
fn scopeguard(name: String) -> impl Drop {
    struct G(String);
    impl Drop for G {
        fn drop(&mut self) {
            let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
        }
    }
    G(name)
}

#[tokio::test]
async fn scale_down_stop_and_remove() {
    let f = fixture().await;
    f.docker.ensure_color(&f.spec(Color::Blue, "1"), 3, "c").await.unwrap();
    f.docker.ensure_color(&f.spec(Color::Green, "2"), 1, "c").await.unwrap();
    f.docker.remove_replicas(&f.service, Color::Blue, 1).await.unwrap();
    let obs = f.docker.observe().await.unwrap();
    assert_eq!(obs[&f.service].blue.iter().map(|c| c.replica).collect::<Vec<_>>(), [0]);
    f.docker.stop_color(&f.service, Color::Green).await.unwrap();
    let obs = f.docker.observe().await.unwrap();
    assert!(!obs[&f.service].green[0].running && obs[&f.service].green[0].addr.is_none());
    f.docker.remove_color(&f.service, Color::Green).await.unwrap();
    assert!(f.docker.observe().await.unwrap()[&f.service].green.is_empty());
    f.docker.remove_service(&f.service).await.unwrap();
    assert!(!f.docker.observe().await.unwrap().contains_key(&f.service));
}

#[tokio::test]
async fn a_missing_image_is_a_clear_error_and_creates_nothing() {
    let f = fixture().await;
    let image = "registry.invalid/shop/web:9.9.9";
    assert!(!f.docker.image_present(image).await.unwrap());
    let err = f.docker.pull(image, |_| {}).await.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "image {image} could not be pulled: the registry registry.invalid cannot be reached (Docker said: "
        )),
        "{err}"
    );
    let mut spec = f.spec(Color::Blue, "1");
    spec.image = image.into();
    let err = f.docker.ensure_color(&spec, 1, "c").await.unwrap_err().to_string();
    assert!(err.contains("create container") && err.contains(image), "{err}");
    assert!(!f.docker.observe().await.unwrap().contains_key(&f.service));
}

#[tokio::test]
async fn exec_returns_the_exit_code() {
    let f = fixture().await;
    let mut healthy = f.spec(Color::Blue, "1");
    let cs = f.docker.ensure_color(&healthy, 1, "c").await.unwrap();
    get(cs[0].addr.unwrap()).await;
    let check = vec!["/app".to_string(), "check".to_string()];
    assert_eq!(
        f.docker
            .exec(&cs[0].name, &check, Duration::from_secs(10))
            .await
            .unwrap(),
        0
    );
    healthy.env.insert("HEALTHY".into(), "0".into());
    let cs = f.docker.ensure_color(&healthy, 1, "c").await.unwrap();
    get(cs[0].addr.unwrap()).await;
    assert_eq!(
        f.docker
            .exec(&cs[0].name, &check, Duration::from_secs(10))
            .await
            .unwrap(),
        1
    );
}

/// Found by the fault soak (issue 24): dockerd stopped in the middle of a
/// start left a container that no start could run again ("task ...
/// already exists" after the restart), and the deploy retried that start
/// forever. Any stopped container of the right spec that cannot start is
/// created again; here it cannot because its network was made anew.
#[tokio::test]
async fn a_stopped_container_that_cannot_start_is_created_again() {
    let f = fixture().await;
    let spec = f.spec(Color::Blue, "1.0");
    let before = f.docker.ensure_color(&spec, 1, "c1").await.unwrap();
    let before_ids = ids(&before);
    let docker = |args: &[&str]| {
        let out = Command::new("docker").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    docker(&["stop", "-t", "1", &before[0].name]);
    docker(&["network", "rm", &f._guard.network]);
    f.docker.ensure_network().await.unwrap();
    let after = f.docker.ensure_color(&spec, 1, "c1").await.unwrap();
    assert_ne!(ids(&after), before_ids, "created again");
    assert!(after[0].running);
    assert_eq!(get(after[0].addr.unwrap()).await, "1.0 blue\n");
}

/// The fault soak found it: dockerd stopped in the middle of a start left
/// containerd's task of the container behind (a shim and its `runc
/// init`), which Docker no longer saw and `docker rm -f` did not end. It
/// kept the container's address on the bridge, Docker gave the address to
/// a later replica, and the proxy answered 503 for that replica. Here a
/// stand-in shim names the container's id (a process called
/// `containerd-shim-runc-v2` with `-id <id>`, and a child as its task),
/// and another names a different id: when the container that cannot
/// start is created again, its shim and task end and the other's do not.
#[tokio::test]
async fn the_task_docker_lost_of_a_container_created_again_is_ended() {
    let f = fixture().await;
    let spec = f.spec(Color::Blue, "1.0");
    let before = f.docker.ensure_color(&spec, 1, "c1").await.unwrap();
    let id = ids(&before).remove(0);
    let other = "0123456789abcdef".repeat(4);
    // As root (Docker's shims are), or as nobody: another user's process
    // naming the id is not one.
    let shim_as = |user: &str, id: &str| {
        Command::new("setpriv")
            .args([&format!("--reuid={user}"), &format!("--regid={user}"), "--clear-groups", "bash", "-c"])
            .arg(format!(
                "exec -a containerd-shim-runc-v2 bash -c 'sleep 300 & wait' shim -namespace moby -id {id} -address /run/none.sock"
            ))
            .spawn()
            .unwrap()
    };
    let shim = |id: &str| shim_as("0", id);
    // nobody's first: a search that took the first process naming the id would take it.
    let mut spoof = shim_as("65534", &id);
    let (mut lost, mut kept) = (shim(&id), shim(&other));
    let task_of = |pid: u32| {
        for _ in 0..100 {
            if let Some(t) = teal::drivers::managed::process::children(pid).first() {
                return *t;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the stand-in shim {pid} started no task");
    };
    let (lost_task, kept_task, spoof_task) = (task_of(lost.id()), task_of(kept.id()), task_of(spoof.id()));

    // A stopped container no start can run (here: its network is new).
    let docker = |args: &[&str]| Command::new("docker").args(args).output().unwrap();
    assert!(docker(&["stop", "-t", "1", &before[0].name]).status.success());
    assert!(docker(&["network", "rm", &f._guard.network]).status.success());
    f.docker.ensure_network().await.unwrap();
    let after = f.docker.ensure_color(&spec, 1, "c1").await.unwrap();
    assert_ne!(ids(&after)[0], id, "created again");
    assert_eq!(get(after[0].addr.unwrap()).await, "1.0 blue\n");

    let mut status = None;
    for _ in 0..100 {
        status = lost.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let Some(status) = status else {
        let _ = lost.kill();
        panic!("the shim naming {id} still runs");
    };
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "the shim naming {id} ended"
    );
    assert!(!teal::drivers::managed::process::alive(lost_task), "its task ended");
    assert!(kept.try_wait().unwrap().is_none(), "the shim naming another id lives");
    assert!(
        spoof.try_wait().unwrap().is_none(),
        "nobody's process naming the id lives"
    );
    for (mut child, task) in [(kept, kept_task), (spoof, spoof_task)] {
        assert!(teal::drivers::managed::process::alive(task));
        let _ = child.kill();
        let _ = child.wait();
        teal::drivers::managed::process::signal(task as i32, libc::SIGKILL);
    }
}
