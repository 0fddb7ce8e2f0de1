//! What HAProxy's runtime API says of its servers: which run, with what
//! weight, and how many responses each color gave.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::render::PLACEHOLDER;
use crate::drivers::route::{Counters, Counts};
use crate::spec::{Color, PerColor};

/// A server that takes requests.
pub(super) struct Running {
    pub backend: String,
    pub server: String,
    pub addr: SocketAddr,
    pub weight: u32,
}

/// Servers that are running, with their weight. Judged by the operational
/// state (2 = running): a server declared `disabled` keeps its
/// config-maintenance flag in the admin state after `state ready`.
pub(super) fn running_servers(state: &str) -> Vec<Running> {
    state
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 19 || f[5] != "2" {
                return None;
            }
            let addr: SocketAddr = format!("{}:{}", f[4], f[18]).parse().ok()?;
            let weight: u32 = f[7].parse().ok()?;
            (addr.to_string() != PLACEHOLDER && weight > 0).then(|| Running {
                backend: f[1].to_string(),
                server: f[3].to_string(),
                addr,
                weight,
            })
        })
        .collect()
}

/// `blue_3` -> blue.
pub(super) fn color_of(server: &str) -> Option<Color> {
    server.split('_').next()?.parse().ok()
}

/// Server weight sums as percent of the backend (summing to 100).
pub(super) fn percent(w: &PerColor<u32>) -> PerColor<u32> {
    let total = w.blue + w.green;
    if total == 0 {
        return PerColor::default();
    }
    let blue = ((w.blue as f64 * 100.0) / total as f64).round() as u32;
    PerColor {
        blue,
        green: 100 - blue,
    }
}

/// Per-color response counters from `show stat` CSV, summing the servers
/// of each color of each known backend.
pub(super) fn parse_stat(csv: &str, by_backend: &BTreeMap<String, String>) -> Counters {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").trim_start_matches("# ").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let classes = [
        (2, "hrsp_2xx"),
        (3, "hrsp_3xx"),
        (4, "hrsp_4xx"),
        (5, "hrsp_5xx"),
        (2, "hrsp_1xx"),
    ];
    let mut out = Counters::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let (Some(be), Some(srv)) = (f.first(), f.get(1)) else {
            continue;
        };
        let (Some(service), Some(color)) = (by_backend.get(*be), color_of(srv)) else {
            continue;
        };
        let counts: &mut Counts = out.entry(service.clone()).or_default().get_mut(color);
        for (class, name) in classes {
            let n = col(name)
                .and_then(|i| f.get(i))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            counts.add(class, n);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_counters_sum_servers_per_color() {
        let csv = "# pxname,svname,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,\n\
                   teal_web,blue_0,0,10,1,2,3,\n\
                   teal_web,blue_1,0,5,0,0,1,\n\
                   teal_web,green_0,0,7,0,0,0,\n\
                   teal_web,BACKEND,0,22,1,2,4,\n\
                   teal_other,blue_0,0,99,0,0,0,\n";
        let map = BTreeMap::from([("teal_web".to_string(), "web".to_string())]);
        let c = parse_stat(csv, &map);
        assert_eq!(c.len(), 1);
        assert_eq!(
            c["web"].blue,
            Counts {
                xx2: 15,
                xx3: 1,
                xx4: 2,
                xx5: 4
            }
        );
        assert_eq!(c["web"].green.total(), 7);
    }

    #[test]
    fn weights_read_back_as_percent() {
        assert_eq!(
            percent(&PerColor { blue: 256, green: 0 }),
            PerColor { blue: 100, green: 0 }
        );
        assert_eq!(
            percent(&PerColor { blue: 26, green: 230 }),
            PerColor { blue: 10, green: 90 }
        );
        assert_eq!(percent(&PerColor::default()), PerColor::default());
    }
}
