//! Which images a cleanup removes. teal removes only images it deployed
//! itself (the record of each service's deployed images, oldest first),
//! and of those never one that a color of any service still declares, one
//! that any container uses (teal's or not), nor one of the last `keep`
//! deployed per service (so a `git revert` a few versions back starts
//! without a pull). Pure: the record, the declared images and what is in
//! use come from the caller.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Each service's deployed images, oldest first, each once (a redeploy
/// moves it to the end).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployed(pub BTreeMap<String, Vec<String>>);

impl Deployed {
    /// Notes that `service` started a color of `image`.
    pub fn deployed(&mut self, service: &str, image: &str) {
        let list = self.0.entry(service.to_string()).or_default();
        list.retain(|i| i != image);
        list.push(image.to_string());
    }

    /// Forgets `image` of `service` (removed from the host).
    pub fn forget(&mut self, service: &str, image: &str) {
        if let Some(list) = self.0.get_mut(service) {
            list.retain(|i| i != image);
            if list.is_empty() {
                self.0.remove(service);
            }
        }
    }
}

/// One image a cleanup would remove, and whose it was.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Removal {
    pub service: String,
    pub image: String,
}

/// The images to remove: deployed, not among each service's last `keep`,
/// declared by no color, used by no container. `in_use` may hold image
/// references or IDs; `id_of` maps a reference to its ID when known.
pub fn removable(
    deployed: &Deployed,
    declared: &BTreeSet<String>,
    in_use: &BTreeSet<String>,
    id_of: &BTreeMap<String, String>,
    keep: usize,
) -> Vec<Removal> {
    // An image kept for one service is kept for all (two services may
    // deploy the same image).
    let kept: BTreeSet<&str> = deployed
        .0
        .values()
        .flat_map(|list| list.iter().rev().take(keep).map(String::as_str))
        .collect();
    let used = |image: &str| in_use.contains(image) || id_of.get(image).is_some_and(|id| in_use.contains(id));
    let mut out: Vec<Removal> = deployed
        .0
        .iter()
        .flat_map(|(service, list)| list.iter().map(move |image| (service, image)))
        .filter(|(_, image)| !kept.contains(image.as_str()) && !declared.contains(*image) && !used(image))
        .map(|(service, image)| Removal {
            service: service.clone(),
            image: image.clone(),
        })
        .collect();
    out.sort();
    out.dedup_by(|a, b| a.image == b.image);
    out
}

/// Bytes for people: `140.2 MB`, `41.2 GB`.
pub fn size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else {
        format!("{:.1} MB", b / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn images(r: &[Removal]) -> Vec<&str> {
        r.iter().map(|r| r.image.as_str()).collect()
    }

    fn web(n: u32) -> Deployed {
        let mut d = Deployed::default();
        for v in 1..=n {
            d.deployed("web", &format!("web:{v}"));
        }
        d
    }

    #[test]
    fn sizes_read_as_megabytes_or_gigabytes() {
        assert_eq!(size(140_200_000), "140.2 MB");
        assert_eq!(size(41_230_000_000), "41.2 GB");
        assert_eq!(size(0), "0.0 MB");
    }

    #[test]
    fn all_but_the_last_keep_of_each_service_go() {
        let d = web(5);
        let r = removable(&d, &set(&[]), &set(&[]), &BTreeMap::new(), 3);
        assert_eq!(images(&r), ["web:1", "web:2"]);
        assert_eq!(removable(&d, &set(&[]), &set(&[]), &BTreeMap::new(), 5), vec![]);
        assert_eq!(
            images(&removable(&d, &set(&[]), &set(&[]), &BTreeMap::new(), 0)).len(),
            5
        );
    }

    #[test]
    fn declared_and_used_images_stay_whatever_their_age() {
        let d = web(5);
        let ids = BTreeMap::from([("web:2".to_string(), "sha256:b".to_string())]);
        // web:1 declared (a color still names it), web:2 used by a
        // container by its ID, web:3 by its name.
        let r = removable(&d, &set(&["web:1"]), &set(&["sha256:b", "web:3"]), &ids, 1);
        assert_eq!(images(&r), ["web:4"]);
    }

    #[test]
    fn a_redeploy_makes_an_image_recent_and_a_shared_image_is_kept_for_both() {
        let mut d = web(4);
        d.deployed("web", "web:1");
        assert_eq!(d.0["web"], ["web:2", "web:3", "web:4", "web:1"]);
        let r = removable(&d, &set(&[]), &set(&[]), &BTreeMap::new(), 2);
        assert_eq!(images(&r), ["web:2", "web:3"]);
        // api's last deploy is web:2: kept, although web's record has it old.
        d.deployed("api", "web:2");
        let r = removable(&d, &set(&[]), &set(&[]), &BTreeMap::new(), 2);
        assert_eq!(images(&r), ["web:3"]);
        d.forget("web", "web:3");
        d.forget("api", "web:2");
        assert_eq!(d.0["web"], ["web:2", "web:4", "web:1"]);
        assert!(!d.0.contains_key("api"));
    }
}
