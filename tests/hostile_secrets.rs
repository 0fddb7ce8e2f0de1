//! What a repo can do with teal's own secret files, against the real
//! Docker engine: they pass the bind checks by an exemption that covers
//! exactly the files teal wrote for a container, and nothing a service
//! file can name.

mod common;

use common::age::{inspect_all, secret_files};
use common::{app_image, unique, DockerGuard};

/// teal's own secret files pass the bind checks by an exemption that
/// covers exactly them: a service (the repo) naming one of those files,
/// or the dir, as a volume is held to `policy.volumes` like any path,
/// and refused; a stopped container with its secret files starts again.
#[tokio::test]
async fn the_secret_file_exemption_mounts_only_what_teal_wrote_for_the_container() {
    use std::collections::BTreeMap;
    use teal::drivers::docker::{DockerDriver, MountRules};
    use teal::spec::container::{ContainerSpec, SecretMount};
    use teal::spec::secret::{Delivery, SecretText};
    use teal::spec::{Color, RestartPolicy};

    common::docker_or_fail();
    let network = unique("teal-test-net");
    let (service, other) = (unique("own"), unique("thief"));
    let _guard = DockerGuard {
        services: vec![service.clone(), other.clone()],
        network: network.clone(),
    };
    let state = tempfile::tempdir().unwrap();
    let secrets_dir = std::fs::canonicalize(state.path()).unwrap().join("secrets");
    let rules = MountRules {
        policy: teal::policy::Policy {
            volumes: Some(vec!["/srv/teal-test-allowed/".into()]),
            ..Default::default()
        },
        secrets_dir: Some(secrets_dir.clone()),
        ..Default::default()
    };
    let docker = DockerDriver::connect(None, &network).await.unwrap().with_mounts(rules);
    docker.ensure_network().await.unwrap();
    let image = app_image(&docker).await;
    let spec = |service: &str, volumes: Vec<String>, secrets: BTreeMap<String, SecretMount>| ContainerSpec {
        service: service.to_string(),
        color: Color::Blue,
        image: image.clone(),
        port: 8080,
        env: BTreeMap::new(),
        command: None,
        volumes,
        labels: BTreeMap::new(),
        restart: RestartPolicy::UnlessStopped,
        network: None,
        secrets,
        env_key: Some(Default::default()),
        run_image: None,
        digest: None,
    };
    let value = unique("value");
    let mine = BTreeMap::from([(
        "DB".to_string(),
        SecretMount {
            value: SecretText::new(value.clone()),
            delivery: Delivery::File,
        },
    )]);
    let own = spec(&service, vec![], mine);
    docker.ensure_color(&own, 1, "c1").await.unwrap();
    let files = secret_files(&secrets_dir.join(&service));
    assert_eq!(files.len(), 1);
    assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), value);
    // Stopped and started again: the exemption holds at every start.
    docker.stop_color(&service, Color::Blue).await.unwrap();
    docker.ensure_color(&own, 1, "c1").await.unwrap();
    let inspect = inspect_all(&service);
    assert!(inspect.contains("\"Destination\": \"/run/secrets/DB\""), "{inspect}");
    assert!(!inspect.contains(&value), "the value is in no inspect: {inspect}");

    // The repo names teal's file, its dir, or the whole secrets dir.
    for volume in [
        format!("{}:/run/secrets/DB:ro", files[0].display()),
        format!("{}:/run/secrets:ro", files[0].parent().unwrap().display()),
        format!("{}:/stolen", secrets_dir.display()),
    ] {
        let e = docker
            .ensure_color(&spec(&other, vec![volume.clone()], BTreeMap::new()), 1, "c1")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is outside this host's policy (policy.volumes: /srv/teal-test-allowed/)")
                && e.contains("so teal did not create it"),
            "{volume}: {e}"
        );
    }
    docker.remove_service(&service).await.unwrap();
    assert!(
        secret_files(&secrets_dir.join(&service)).is_empty(),
        "removed with the color"
    );
}
