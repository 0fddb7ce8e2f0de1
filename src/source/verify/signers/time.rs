//! ssh-keygen's timestamps (`parse_absolute_time` in OpenSSH's misc.c):
//! YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, in the system's time zone
//! unless followed by `Z` (or `UTC`). Read with the C library's `mktime`
//! and `timegm`, as OpenSSH reads them, so teal and ssh-keygen agree on
//! the same machine, time zone and day-overflow rules included
//! (`20250231` is 3 March).

/// Unix seconds, or None when the text is not such a timestamp.
pub fn parse_time(text: &str) -> Option<u64> {
    let (digits, utc) = if let Some(d) = strip_suffix_ci(text, "Z").filter(|_| text.len() > 1) {
        (d, true)
    } else if let Some(d) = strip_suffix_ci(text, "UTC").filter(|_| text.len() > 3) {
        (d, true)
    } else {
        (text, false)
    };
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |at: usize, len: usize| digits.get(at..at + len).and_then(|d| d.parse::<i32>().ok());
    // strptime's ranges for %m %d %H %M %S (glibc allows leap seconds up to 61).
    let in_range = |v: Option<i32>, lo: i32, hi: i32| v.filter(|v| (lo..=hi).contains(v));
    let month = in_range(field(4, 2), 1, 12)?;
    let day = in_range(field(6, 2), 1, 31)?;
    let (hour, minute, second) = match digits.len() {
        8 => (0, 0, 0),
        12 => (in_range(field(8, 2), 0, 23)?, in_range(field(10, 2), 0, 59)?, 0),
        _ => (
            in_range(field(8, 2), 0, 23)?,
            in_range(field(10, 2), 0, 59)?,
            in_range(field(12, 2), 0, 61)?,
        ),
    };
    // SAFETY: a zeroed `tm` is a valid value (as OpenSSH's memset), and
    // mktime/timegm only read and normalise the struct we own.
    let t = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        tm.tm_year = field(0, 4)? - 1900;
        tm.tm_mon = month - 1;
        tm.tm_mday = day;
        tm.tm_hour = hour;
        tm.tm_min = minute;
        tm.tm_sec = second;
        if utc {
            libc::timegm(&mut tm)
        } else {
            libc::mktime(&mut tm)
        }
    };
    u64::try_from(t).ok()
}

fn strip_suffix_ci<'a>(text: &'a str, suffix: &str) -> Option<&'a str> {
    let at = text.len().checked_sub(suffix.len())?;
    let tail = text.get(at..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| &text[..at])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_read_in_utc_with_z_and_the_rest_is_refused() {
        assert_eq!(parse_time("20260101Z"), Some(1_767_225_600));
        assert_eq!(parse_time("20260101z"), Some(1_767_225_600));
        assert_eq!(parse_time("20260101UTC"), Some(1_767_225_600));
        assert_eq!(parse_time("202601011200Z"), Some(1_767_268_800));
        assert_eq!(parse_time("20260101120001Z"), Some(1_767_268_801));
        assert_eq!(parse_time("20250231Z"), parse_time("20250303Z"), "mktime's overflow");
        for bad in [
            "",
            "Z",
            "2026010",
            "2026010112Z",
            "20261301",
            "20260132",
            "2026010124000Z",
            "2026-01-01",
            "+2026010",
        ] {
            assert_eq!(parse_time(bad), None, "{bad:?}");
        }
    }
}
