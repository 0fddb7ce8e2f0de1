//! `analysis.prometheus`: what resolves with its defaults, and each bad
//! input with the exact located message.

use std::time::Duration;

use super::load::RepoFiles;
use super::prometheus::PromCheck;
use super::{load, Analysis};

const BASE: &str = "active: green\nblue:\n  image: web:1\ngreen:\n  image: web:2\nport: 8080\nroute: {host: shop.example.com}\nhealth:\n  http: {path: /healthz}\nstrategy: canary\n";

fn check(extra: &str) -> Result<Analysis, Vec<String>> {
    let mut f = RepoFiles {
        has_services_dir: true,
        ..Default::default()
    };
    f.files.insert("services/web.yaml".into(), format!("{BASE}{extra}"));
    load(&f)
        .map(|d| d.services["web"].analysis.clone().expect("analysis"))
        .map_err(|d| d.0.iter().map(|d| d.to_string()).collect())
}

#[test]
fn prometheus_resolves_with_its_defaults_and_alone_leaves_the_counters_out() {
    let a = check("analysis:\n  prometheus:\n    url: http://127.0.0.1:9090/\n    query: 'sum(rate(e{service=\"{{service}}\"}[30s]))'\n    max: 0.01\n").unwrap();
    assert_eq!(a.max_errors, None, "prometheus alone: the counters are not judged");
    assert_eq!(
        a.prometheus,
        Some(PromCheck {
            url: "http://127.0.0.1:9090".into(),
            query: "sum(rate(e{service=\"{{service}}\"}[30s]))".into(),
            max: Some(0.01),
            min: None,
            interval: Duration::from_secs(10),
            inconclusive: 3,
        })
    );
    // Both kinds: the counters as written, Prometheus with its own settings.
    let a = check("analysis:\n  max_errors: 2%\n  prometheus: {url: 'https://p', query: 'up{job=\"x\"}', min: 1, interval: 5s, inconclusive: 5}\n").unwrap();
    assert_eq!(a.max_errors, Some(2.0));
    let p = a.prometheus.unwrap();
    assert_eq!(
        (p.min, p.max, p.interval, p.inconclusive),
        (Some(1.0), None, Duration::from_secs(5), 5)
    );
    // min_requests alone also asks for the counters, at the default budget.
    let a = check("analysis:\n  min_requests: 5\n  prometheus: {url: 'http://p', query: 'up', max: 1}\n").unwrap();
    assert_eq!(a.max_errors, Some(1.0));
    // Without prometheus nothing changes.
    assert_eq!(check("analysis: {}\n").unwrap().max_errors, Some(1.0));
}

#[test]
fn every_bad_prometheus_input_is_located() {
    let p = |body: &str| format!("analysis:\n  prometheus:\n{body}");
    let good_q = "    query: 'up{job=\"{{service}}\"}'\n";
    let cases = [
        (p(&format!("    url: ftp://p\n{good_q}    max: 1\n")), "services/web.yaml:13:10: url \"ftp://p\" is not an http or https URL: write e.g. http://127.0.0.1:9090"),
        (p(&format!("    url: http://u:pw@p:9090\n{good_q}    max: 1\n")), "services/web.yaml:13:10: url \"http://u:pw@p:9090\" carries credentials, which do not belong in git: put Prometheus behind a local proxy instead"),
        (p(&format!("{good_q}    max: 1\n")), "services/web.yaml:12:3: analysis.prometheus needs a url: the Prometheus base URL, e.g. http://127.0.0.1:9090"),
        (p("    url: http://p\n    query: 'up{job=\"{{job}}\"}'\n    max: 1\n"), "services/web.yaml:14:12: query has an unknown placeholder {{job}}: use {{service}}, {{color}} or {{commit}}"),
        (p("    url: http://p\n    query: '{{service}}_errors_total'\n    max: 1\n"), "services/web.yaml:14:12: query has {{service}} outside a string: put it in quotes, e.g. service=\"{{service}}\""),
        (p("    url: http://p\n    query: 'up{job=\"{{service\"}'\n    max: 1\n"), "services/web.yaml:14:12: query has a {{ without }}: write placeholders as {{service}}, {{color}} or {{commit}}"),
        (p(&format!("    url: http://p\n{good_q}")), "services/web.yaml:12:3: analysis.prometheus needs max (a value above it aborts) or min (a value below it aborts), or both"),
        (p(&format!("    url: http://p\n{good_q}    max: 1\n    min: 2\n")), "services/web.yaml:16:10: min 2 is above max 1: every value would abort"),
        (p(&format!("    url: http://p\n{good_q}    max: 1\n    interval: 500ms\n")), "services/web.yaml:16:15: interval 500ms is under 1s: evaluate every second or less often"),
        (p(&format!("    url: http://p\n{good_q}    max: 1\n    interval: soon\n")), "services/web.yaml:16:15: invalid duration \"soon\": expected number at 0; write e.g. 500ms, 2s or 1m"),
        (p(&format!("    url: http://p\n{good_q}    max: 1\n    inconclusive: 0\n")), "services/web.yaml:16:19: inconclusive 0 is out of range: use 1-100"),
        (p(&format!("    url: http://p\n{good_q}    max: 1\n    maximum: 2\n")), "services/web.yaml:16:5: analysis.prometheus: unknown field \"maximum\", expected one of \"url\", \"query\", \"max\", \"min\", \"interval\", \"inconclusive\""),
    ];
    let mut wrong = vec![];
    for (extra, want) in cases {
        let got = check(&extra).map(|_| vec![]).unwrap_or_else(|e| e);
        if !got.contains(&want.to_string()) {
            wrong.push(format!("input:\n{extra}got {got:#?}\nwant {want}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn all_problems_of_one_block_are_reported_together() {
    let got =
        check("analysis:\n  max_errors: 1%\n  prometheus: {url: 'x', query: '{{nope}}', interval: 1ms}\n").unwrap_err();
    assert_eq!(got.len(), 4, "{got:#?}");
}
