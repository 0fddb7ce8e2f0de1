//! The unprivileged user a managed proxy's workers run as (`proxy.user`).
//! The master keeps teal's user: it binds the listen port, the admin and
//! balancer sockets (owned by teal's user, mode 0600) and reads the files;
//! the workers that parse requests get nothing of root.

use std::ffi::{CStr, CString};

use super::ManagedSpec;
use crate::config::ProxyKind;
use crate::drivers::route::ProxyError;

/// A user to switch the workers to, with its primary group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub group: String,
    pub uid: u32,
}

/// The workers' user: `proxy.user`, else the distribution's user for the
/// proxy (`www-data` for nginx, `haproxy`), else `nobody`. `None` when teal
/// is not root: the workers then run as teal's user, the only one it has.
pub fn worker_account(spec: &ManagedSpec) -> Result<Option<Account>, ProxyError> {
    if !is_root() {
        if let Some(user) = &spec.user {
            tracing::warn!(user = %user, "proxy.user is not used: teal is not root, so the proxy's workers run as teal's user");
        }
        return Ok(None);
    }
    if let Some(user) = &spec.user {
        return lookup(user).map(Some).ok_or_else(|| {
            ProxyError::Other(format!(
                "proxy.user: there is no user {user:?} on this host: create it (`useradd --system --no-create-home {user}`) or name another in the host config"
            ))
        });
    }
    let usual = match spec.kind {
        ProxyKind::Nginx => "www-data",
        ProxyKind::Haproxy => "haproxy",
    };
    [usual, "nobody"].into_iter().find_map(lookup).map(Some).ok_or_else(|| {
        ProxyError::Other(format!(
            "no {usual} nor nobody user on this host for the proxy's workers: set proxy.user in the host config"
        ))
    })
}

/// The user and the name of its primary group, from the system's user
/// database (NSS, so LDAP users too).
fn lookup(name: &str) -> Option<Account> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: getpwnam_r fills `pw` with pointers into `buf`, which
    // outlives their use below; `out` is null or points to `pw`.
    let (uid, gid) = unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut out = std::ptr::null_mut();
        let rc = libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out);
        if rc != 0 || out.is_null() {
            return None;
        }
        (pw.pw_uid, pw.pw_gid)
    };
    // SAFETY: as above, for getgrgid_r and `gr`.
    let group = unsafe {
        let mut gr: libc::group = std::mem::zeroed();
        let mut out = std::ptr::null_mut();
        let rc = libc::getgrgid_r(gid, &mut gr, buf.as_mut_ptr(), buf.len(), &mut out);
        if rc != 0 || out.is_null() {
            return None;
        }
        CStr::from_ptr(gr.gr_name).to_string_lossy().into_owned()
    };
    Some(Account {
        name: name.to_string(),
        group,
        uid,
    })
}

pub(super) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_found_with_their_primary_group() {
        let root = lookup("root").unwrap();
        assert_eq!((root.uid, root.group.as_str()), (0, "root"));
        assert_eq!(lookup("no-such-user-teal"), None);
        assert_eq!(lookup("nul\0byte"), None);
    }
}
