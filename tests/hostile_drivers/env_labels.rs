//! Env values in container labels.

use teal::spec::Color::Blue;

/// Labels and env of a container, through the engine's API.
async fn labels_and_env(name: &str) -> (std::collections::HashMap<String, String>, Vec<String>) {
    let docker = bollard::Docker::connect_with_defaults().unwrap();
    let c = docker
        .inspect_container(name, None::<bollard::query_parameters::InspectContainerOptions>)
        .await
        .unwrap();
    let config = c.config.unwrap();
    (config.labels.unwrap_or_default(), config.env.unwrap_or_default())
}

async fn container_id(name: &str) -> String {
    let docker = bollard::Docker::connect_with_defaults().unwrap();
    let c = docker
        .inspect_container(name, None::<bollard::query_parameters::InspectContainerOptions>)
        .await
        .unwrap();
    c.id.unwrap()
}

/// Env values are in no label of a container (what `docker inspect` of
/// labels, `docker events` and label exporters show): names and keyed
/// digests only, and a changed value still changes the spec hash. A
/// container an older teal labelled with the values is read as the same
/// spec and left running after the upgrade.
#[tokio::test]
async fn container_labels_hold_no_env_value() {
    use std::collections::BTreeMap;
    use teal::drivers::docker::DockerDriver;
    use teal::spec::container::{labels, ContainerSpec};
    use teal::spec::RestartPolicy;

    crate::common::docker_or_fail();
    let network = crate::common::unique("teal-test-net");
    let service = crate::common::unique("envsvc");
    let state = tempfile::tempdir().unwrap();
    let key = teal::reconcile::env_key::load_or_create(state.path()).unwrap();
    let docker = DockerDriver::connect(None, &network).await.unwrap().with_env_key(key);
    docker.ensure_network().await.unwrap();
    let _guard = crate::common::DockerGuard {
        services: vec![service.clone()],
        network,
    };
    let image = crate::common::app_image(&docker).await;
    let secret = format!("pw-{}", crate::common::unique("s3cret"));
    let spec = |password: &str, key| ContainerSpec {
        service: service.clone(),
        color: Blue,
        image: image.clone(),
        port: 8080,
        env: BTreeMap::from([("DB_PASSWORD".into(), password.to_string())]),
        command: None,
        volumes: vec![],
        labels: BTreeMap::new(),
        restart: RestartPolicy::UnlessStopped,
        network: None,
        secrets: Default::default(),
        env_key: key,
        run_image: None,
        digest: None,
    };
    let now = spec(&secret, Some(key));
    let cs = docker.ensure_color(&now, 1, "abc123").await.unwrap();
    let (l, env) = labels_and_env(&cs[0].name).await;
    assert!(
        env.contains(&format!("DB_PASSWORD={secret}")),
        "the container gets the value: {env:?}"
    );
    for (k, v) in &l {
        assert!(!v.contains(&secret), "label {k} shows the env value: {v}");
    }
    assert!(l[labels::SPEC_JSON].contains("\"DB_PASSWORD\":\"hmac-sha256:"), "{l:?}");
    assert_eq!(l[labels::SPEC], now.hash());
    assert_ne!(
        spec("other", Some(key)).hash(),
        now.hash(),
        "a changed value restarts the color"
    );

    // What an older teal made: the value in plain text in the label.
    let old = spec(&secret, None);
    docker.remove_color(&service, Blue).await.unwrap();
    let cs = docker.ensure_color(&old, 1, "abc123").await.unwrap();
    assert!(labels_and_env(&cs[0].name).await.0[labels::SPEC_JSON].contains(&secret));
    let id = container_id(&cs[0].name).await;
    let observed = docker.observe().await.unwrap();
    assert_eq!(
        observed[&service].blue[0].spec_hash,
        now.hash(),
        "read as this teal hashes it"
    );
    let after = docker.ensure_color(&now, 1, "abc123").await.unwrap();
    assert_eq!(container_id(&after[0].name).await, id, "left as it runs");
    let changed = spec("n3w", Some(key));
    let after = docker.ensure_color(&changed, 1, "abc123").await.unwrap();
    assert_eq!(
        labels_and_env(&after[0].name).await.0[labels::SPEC],
        changed.hash(),
        "replaced"
    );
}
