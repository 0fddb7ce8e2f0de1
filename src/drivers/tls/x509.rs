//! What teal shows of a certificate: subject, issuer, names, validity in
//! unix seconds and a fingerprint, read from the parsed X.509.

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::x509::{X509NameRef, X509Ref};

use super::material::CertInfo;

/// The leaf's [`CertInfo`].
pub(super) fn info(leaf: &X509Ref) -> Result<CertInfo, ErrorStack> {
    Ok(CertInfo {
        subject: name(leaf.subject_name()),
        issuer: name(leaf.issuer_name()),
        names: names(leaf),
        not_before: unix(leaf.not_before())?,
        not_after: unix(leaf.not_after())?,
        sha256: hex::encode(leaf.digest(MessageDigest::sha256())?),
    })
}

/// `C=US, O=Example, CN=shop.example.com`, in the certificate's own order.
pub(super) fn name(n: &X509NameRef) -> String {
    let entry = |e: &openssl::x509::X509NameEntryRef| {
        let key = e
            .object()
            .nid()
            .short_name()
            .map_or_else(|_| e.object().to_string(), str::to_string);
        let value = e.data().to_string().unwrap_or_else(|_| "?".to_string());
        format!("{key}={value}")
    };
    n.entries().map(entry).collect::<Vec<_>>().join(", ")
}

/// The DNS SANs, lowercased; the CN when there is no DNS SAN (old
/// certificates, which some clients still accept).
fn names(leaf: &X509Ref) -> Vec<String> {
    let sans: Vec<String> = leaf
        .subject_alt_names()
        .map(|s| {
            s.iter()
                .filter_map(|g| g.dnsname())
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default();
    if !sans.is_empty() {
        return sans;
    }
    leaf.subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .filter_map(|e| e.data().to_string().ok())
        .map(|s| s.to_ascii_lowercase())
        .collect()
}

/// Unix seconds of an ASN.1 time.
fn unix(t: &Asn1TimeRef) -> Result<i64, ErrorStack> {
    let epoch = Asn1Time::from_unix(0)?;
    let d = epoch.diff(t)?;
    Ok(i64::from(d.days) * 86_400 + i64::from(d.secs))
}

/// `2026-01-02 00:00:00 UTC`. Written out because humantime panics on
/// times before 1970, which a certificate may carry.
pub(super) fn utc(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_formats_unix_seconds_as_a_calendar_time() {
        let cases = [
            (0, "1970-01-01 00:00:00 UTC"),
            (1_767_312_000, "2026-01-02 00:00:00 UTC"),
            (951_782_400 + 3_723, "2000-02-29 01:02:03 UTC"),
            (-1, "1969-12-31 23:59:59 UTC"),
            (253_402_300_799, "9999-12-31 23:59:59 UTC"),
        ];
        for (secs, want) in cases {
            assert_eq!(utc(secs), want, "{secs}");
        }
    }
}
