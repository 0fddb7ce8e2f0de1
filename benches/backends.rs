//! Backends of the cutover bench run by teal's own drivers, so a cutover
//! can be measured in front of real replicas: `containers` (engine mode,
//! addresses on the managed network) or `swarm` (docker.mode: swarm, each
//! color a Swarm service whose tasks publish their port on the node).
//! Both colors get 2 replicas of the bundled app; dropped with `remove`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use teal::drivers::docker::DockerDriver;
use teal::drivers::runtime::Runtime;
use teal::drivers::swarm::SwarmDriver;
use teal::spec::container::ContainerSpec;
use teal::spec::{Color, RestartPolicy};

pub struct Replicas {
    pub runtime: Runtime,
    pub service: String,
    /// Blue's and green's endpoints.
    pub addrs: [Vec<SocketAddr>; 2],
}

/// Starts both colors on `kind` (`containers` or `swarm`) and waits until
/// every replica answers.
pub async fn start(kind: &str) -> Replicas {
    let network = format!("teal-bench-{}", std::process::id());
    let docker = DockerDriver::connect(None, &network).await.expect("Docker");
    let tag = "teal-bench-app:cutover";
    if !docker.image_present(tag).await.unwrap() {
        docker
            .build_app_image(tag, teal::app::DEMO_APP, &[("VERSION", "bench")])
            .await
            .unwrap();
    }
    let runtime = match kind {
        "swarm" => Runtime::Swarm(SwarmDriver::on_manager(docker, "the local engine").await.expect(
            "the swarm variant needs this engine to be a Swarm manager: docker swarm init --advertise-addr 127.0.0.1",
        )),
        _ => {
            docker.ensure_network().await.unwrap();
            Runtime::Engine(docker)
        }
    };
    let service = format!("bench{}", std::process::id());
    for color in Color::ALL {
        let spec = ContainerSpec {
            service: service.clone(),
            color,
            image: tag.into(),
            port: 8080,
            env: BTreeMap::new(),
            command: None,
            volumes: vec![],
            labels: BTreeMap::new(),
            restart: RestartPolicy::UnlessStopped,
            network: None,
            secrets: Default::default(),
            env_key: Some(Default::default()),
            run_image: None,
            digest: None,
        };
        runtime.ensure_color(&spec, 2, &BTreeMap::new(), "bench").await.unwrap();
    }
    let start = Instant::now();
    loop {
        let all = runtime.observe().await.unwrap();
        let of = |c: Color| -> Vec<SocketAddr> {
            all.get(&service)
                .map(|p| {
                    p.get(c)
                        .iter()
                        .filter(|r| r.running)
                        .filter_map(|r| r.endpoint(8080))
                        .collect()
                })
                .unwrap_or_default()
        };
        let addrs = [of(Color::Blue), of(Color::Green)];
        let answering = addrs
            .iter()
            .flatten()
            .all(|a| std::net::TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok());
        if addrs.iter().all(|a| a.len() == 2) && answering {
            return Replicas {
                runtime,
                service,
                addrs,
            };
        }
        assert!(start.elapsed() < Duration::from_secs(120), "replicas did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Replicas {
    pub async fn remove(self) {
        self.runtime.remove_service(&self.service).await.unwrap();
        if let Runtime::Engine(d) = &self.runtime {
            let _ = std::process::Command::new("docker")
                .args(["network", "rm", d.network()])
                .output();
        }
    }
}
