//! `switch.pause` in nginx: the service's pool in the Lua balancer gets
//! a deadline (`pause <ms>`) until which its new requests wait in the
//! access phase; setting the pools again without it lets them go on.

use super::Nginx;
use crate::drivers::route::ProxyError;

impl Nginx {
    /// Holds the new requests of `service` until `until` (`None`: lets
    /// them go on now), through the balancer. False when it has no pool
    /// yet (a first deploy: nothing serves to hold).
    pub async fn pause(&self, service: &str, until: Option<std::time::SystemTime>) -> Result<bool, ProxyError> {
        let _one = self.batch.exclusive().await;
        let Some(b) = &self.config.balancer else {
            return Ok(false);
        };
        // No route yet: the balancer may not even be loaded.
        if crate::drivers::reload::read_opt(&self.service_path(service))?.is_none() {
            return Ok(false);
        }
        let mut pools = b.pools().await?;
        let Some(pool) = pools.get_mut(service) else {
            return Ok(false);
        };
        pool.pause_until = until.map(crate::drivers::route::ms_since_epoch);
        b.set_pools(&pools).await?;
        Ok(true)
    }
}
