//! OpenSSH's pattern lists (ssh_config(5), PATTERNS; match.c): comma
//! separated patterns with `*` and `?`, each negated by a leading `!`.

/// `match_pattern_list(string, list, 0)`: 1 when a pattern matches, -1 when
/// a negated one does (whatever else matches), 0 when none does.
pub fn matches_list(string: &str, list: &str) -> i32 {
    if list.is_empty() {
        return 0;
    }
    // A comma at the very end closes the last pattern; it opens no empty one.
    let list = list.strip_suffix(',').unwrap_or(list);
    let mut positive = 0;
    for pattern in list.split(',') {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern),
        };
        // OpenSSH copies each pattern into a 1024-byte buffer and gives
        // up on a longer one.
        if pattern.len() >= 1023 {
            return 0;
        }
        if matches(string.as_bytes(), pattern.as_bytes()) {
            if negated {
                return -1;
            }
            positive = 1;
        }
    }
    positive
}

/// `match_pattern`: `*` any run of bytes, `?` any one byte, else itself.
fn matches(s: &[u8], pattern: &[u8]) -> bool {
    // The classic backtracking walk: remember the last `*` and retry it
    // one byte further on a mismatch.
    let (mut si, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match pattern.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == s[si] => {
                si += 1;
                pi += 1;
            }
            _ => match star {
                Some((p, at)) => {
                    star = Some((p, at + 1));
                    pi = p + 1;
                    si = at + 1;
                }
                None => return false,
            },
        }
    }
    pattern[pi.min(pattern.len())..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_openssh_matches_them() {
        let rows = [
            ("git", "git", 1),
            ("git", "file,git", 1),
            ("git", "file", 0),
            ("git", "*", 1),
            ("git", "g?t", 1),
            ("git", "g*", 1),
            ("git", "*t", 1),
            ("git", "g*x", 0),
            ("git", "!git,*", -1),
            ("git", "*,!git", -1),
            ("git", "!file", 0),
            ("alice@example.com", "*@example.com", 1),
            ("alice@example.com", "*@*.com", 1),
            ("alice@example.org", "*@example.com", 0),
            ("a@x", "!*,a@x", -1),
            ("", "", 0),
            ("git", "", 0),
            ("git", "git,", 1),
            ("", "a,,", 1),
            ("aaa", "a*a*a", 1),
            ("aa", "a*a*a", 0),
        ];
        for (s, list, want) in rows {
            assert_eq!(matches_list(s, list), want, "{s:?} against {list:?}");
        }
    }
}
