//! Replacing replicas one by one for a rolling update: during the swap a
//! replica has a second container, `<name>-next`, created from the new
//! spec; once it took over, the old one is removed and the new one takes
//! the canonical name, so at rest every replica has one container under
//! one name.

use bollard::query_parameters::RenameContainerOptions;

use super::{call, DockerDriver, DockerError};
use crate::spec::container::ContainerSpec;

impl DockerDriver {
    /// Creates and starts the `-next` container of replica `n` of `spec`.
    pub async fn create_next(&self, spec: &ContainerSpec, n: u32, commit: &str) -> Result<String, DockerError> {
        let name = spec.next_name(n);
        self.create_named(spec, n, &name, &spec.hash(), commit).await?;
        Ok(name)
    }

    /// Starts a stopped container teal owns (when its bind mounts still
    /// resolve inside the policy).
    pub async fn start(&self, name: &str) -> Result<(), DockerError> {
        self.start_checked(name).await
    }

    /// Stops (with the grace period) and removes one container teal owns.
    pub async fn stop_and_remove(&self, name: &str) -> Result<(), DockerError> {
        self.stop(name).await?;
        self.remove(name).await
    }

    /// Gives a container teal owns a new name (its labels stay).
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), DockerError> {
        let opts = RenameContainerOptions { name: to.to_string() };
        call("rename container", from, self.client.rename_container(from, opts)).await
    }
}
