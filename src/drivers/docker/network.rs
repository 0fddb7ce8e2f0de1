//! The managed Docker network: created when missing, labelled as teal's,
//! and removed only when teal created it.

use std::collections::HashMap;

use bollard::models::NetworkCreateRequest;

use super::{call, is_not_found, message, DockerDriver, DockerError};

impl DockerDriver {
    /// Creates the managed bridge network when it does not exist.
    pub async fn ensure_network(&self) -> Result<(), DockerError> {
        self.ensure_named_network(&self.network).await
    }

    /// Creates a bridge network labelled as teal's when it does not exist.
    pub(super) async fn ensure_named_network(&self, name: &str) -> Result<(), DockerError> {
        match self
            .client
            .inspect_network(name, None::<bollard::query_parameters::InspectNetworkOptions>)
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(DockerError::Api {
                    action: "inspect network",
                    target: name.to_string(),
                    message: message(&e),
                })
            }
        }
        let req = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(HashMap::from([("teal.managed".to_string(), "true".to_string())])),
            ..Default::default()
        };
        call("create network", name, self.client.create_network(req)).await?;
        Ok(())
    }

    /// Removes the managed network if teal created it (for `demo --clean`
    /// and tests). A missing network is fine.
    pub async fn remove_network(&self) -> Result<(), DockerError> {
        match self
            .client
            .inspect_network(&self.network, None::<bollard::query_parameters::InspectNetworkOptions>)
            .await
        {
            Ok(n)
                if n.labels
                    .as_ref()
                    .and_then(|l| l.get("teal.managed"))
                    .is_some_and(|v| v == "true") =>
            {
                call(
                    "remove network",
                    &self.network,
                    self.client.remove_network(&self.network),
                )
                .await
            }
            _ => Ok(()),
        }
    }
}
