//! `switch.pause` in HAProxy: while a service's release command runs,
//! its route's new requests wait in the proxy. A small Lua action
//! (`teal_hold`, loaded only when some route may pause) sleeps while the
//! service's entry in `pause.map` is a time still ahead; teal sets that
//! entry through the runtime API to the pause's deadline, and back to 0
//! when the release ends, which lets every held request go on at once.
//! A deadline, not a flag: a teal that dies mid-release leaves a pause
//! that ends by itself.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use super::tls::TlsFiles;
use super::Haproxy;
use crate::drivers::reload::{persist, read_opt, write_atomic};
use crate::drivers::route::{ms_since_epoch, ProxyError, RouteSpec};
use crate::spec::traffic::MAX_PAUSE;

impl TlsFiles {
    /// service -> until when (ms since the epoch) its requests wait.
    pub fn pause_map(&self) -> PathBuf {
        self.dir.join("pause.map")
    }
    /// The Lua action that holds them.
    pub fn pause_lua(&self) -> PathBuf {
        self.dir.join("teal_pause.lua")
    }
}

/// Whether some route may pause: then the config loads the Lua action.
pub(super) fn any(routes: &BTreeMap<String, RouteSpec>) -> bool {
    routes.values().any(|r| r.traffic.pause.is_some())
}

/// `lua-load` of the global section, when some route may pause.
pub(super) fn global(routes: &BTreeMap<String, RouteSpec>, files: &TlsFiles) -> String {
    match any(routes) {
        true => format!("    lua-load {}\n", files.pause_lua().display()),
        false => String::new(),
    }
}

/// The frontend rule, after the route is named and its maintenance page
/// answered: requests of a pausable route whose deadline is set wait.
pub(super) fn frontend(by_path: &[&RouteSpec], files: &TlsFiles) -> String {
    let names: Vec<&str> = by_path
        .iter()
        .filter(|r| r.traffic.pause.is_some())
        .map(|r| r.service.as_str())
        .collect();
    if names.is_empty() {
        return String::new();
    }
    format!(
        "    http-request lua.teal_hold if {{ var(txn.teal_svc) -m str {} }} {{ var(txn.teal_svc),map_str_int({},0) -m int gt 0 }}\n",
        names.join(" "),
        files.pause_map().display()
    )
}

/// The Lua action. It gives up waiting after [`MAX_PAUSE`] whatever the
/// map says (a clock stepped back, a deadline set by hand).
fn lua(files: &TlsFiles) -> String {
    format!(
        r#"-- teal: holds a route's new requests while its release command runs.
local pause = Map.new({map}, Map._str)
local function now_ms()
  local t = core.now()
  return t.sec * 1000 + t.usec // 1000
end
core.register_action("teal_hold", {{ "http-req" }}, function(txn)
  local svc = txn:get_var("txn.teal_svc")
  local start = now_ms()
  while true do
    local until_ms = tonumber(pause:lookup(svc) or "0") or 0
    local now = now_ms()
    if until_ms <= now or now - start >= {max} then
      return
    end
    core.msleep(20)
  end
end)
"#,
        map = lua_string(&files.pause_map().display().to_string()),
        max = MAX_PAUSE.as_millis()
    )
}

/// A Lua string literal of `s`: every byte outside a narrow set escaped.
fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'.' | b'_' | b'-' => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out.push('"');
    out
}

/// Entries of a map file (`key value` lines).
fn entries(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// The pause map for `routes`: every pausable route has an entry (the
/// runtime API only sets existing ones); a pause under way (in `old`,
/// the file as it is) survives a reload until its deadline.
fn map_text(routes: &BTreeMap<String, RouteSpec>, old: &str, now_ms: u64) -> String {
    let old = entries(old);
    let mut out = String::new();
    for r in routes.values().filter(|r| r.traffic.pause.is_some()) {
        let live = old
            .get(&r.service)
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|v| *v > now_ms)
            .unwrap_or(0);
        let _ = writeln!(out, "{} {live}", r.service);
    }
    out
}

fn now_ms() -> u64 {
    ms_since_epoch(std::time::SystemTime::now())
}

impl Haproxy {
    /// Writes the Lua action and the pause map, before HAProxy (re)loads
    /// a config naming them.
    pub(super) fn write_pause(&self, routes: &BTreeMap<String, RouteSpec>) -> Result<(), ProxyError> {
        if !any(routes) {
            return Ok(());
        }
        let files = &self.config.tls;
        write_atomic(&files.pause_lua(), &lua(files))?;
        let old = read_opt(&files.pause_map())?.unwrap_or_default();
        write_atomic(&files.pause_map(), &map_text(routes, &old, now_ms()))
    }

    /// Holds the new requests of `service` until `until` (`None`: lets
    /// them go on now). False when its route holds none (no route yet,
    /// or no `switch.pause`).
    pub async fn pause(&self, service: &str, until: Option<std::time::SystemTime>) -> Result<bool, ProxyError> {
        let _one = self.batch.exclusive().await;
        let (routes, _) = self.read_routes()?;
        if routes.get(service).is_none_or(|r| r.traffic.pause.is_none()) {
            return Ok(false);
        }
        let files = &self.config.tls;
        let value = until.map_or(0, ms_since_epoch);
        let map = files.pause_map();
        self.runtime
            .call(&[format!("set map {} {service} {value}", map.display())])
            .await?;
        // The file a reload or restart loads says the same.
        let mut all = entries(&read_opt(&map)?.unwrap_or_default());
        all.insert(service.to_string(), value.to_string());
        let text: String = all.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
        persist(&map, text).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::route::Backend;
    use std::time::Duration;

    fn route(service: &str, pause: bool) -> RouteSpec {
        let mut r = RouteSpec {
            service: service.into(),
            host: "shop.test".into(),
            aliases: vec![],
            path: "/".into(),
            tls: None,
            backends: crate::spec::PerColor::<Backend>::default(),
            preview: None,
            traffic: Default::default(),
            next: None,
            commit: "c".into(),
            route_hash: "h".into(),
        };
        r.traffic.pause = pause.then_some(Duration::from_secs(5));
        r
    }

    #[test]
    fn only_pausable_routes_get_the_rule_and_a_live_pause_survives_a_reload() {
        let files = TlsFiles { dir: "/s".into() };
        let (web, api) = (route("web", true), route("api", false));
        assert_eq!(
            frontend(&[&web, &api], &files),
            "    http-request lua.teal_hold if { var(txn.teal_svc) -m str web } { var(txn.teal_svc),map_str_int(/s/pause.map,0) -m int gt 0 }\n"
        );
        assert_eq!(frontend(&[&api], &files), "");
        let routes = BTreeMap::from([("web".to_string(), web), ("api".to_string(), api)]);
        assert_eq!(global(&routes, &files), "    lua-load /s/teal_pause.lua\n");
        // A pause whose deadline is ahead is kept; a past one is reset.
        assert_eq!(map_text(&routes, "web 5000\n", 1000), "web 5000\n");
        assert_eq!(map_text(&routes, "web 500\napi 9999\n", 1000), "web 0\n");
    }

    #[test]
    fn the_map_path_is_a_lua_string_whatever_its_bytes() {
        assert_eq!(lua_string("/var/lib/teal/tls"), "\"/var/lib/teal/tls\"");
        assert_eq!(lua_string("/a\"b\\c\n"), "\"/a\\034b\\092c\\010\"");
        let files = TlsFiles {
            dir: "/x\"); os.exit(1) --".into(),
        };
        assert!(lua(&files).contains("Map.new(\"/x\\034\\041\\059\\032os.exit\\0401\\041\\032--/pause.map\""));
    }
}
