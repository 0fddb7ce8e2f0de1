//! `analysis.prometheus`: a PromQL query whose value judges the new
//! version beside (or instead of) the proxy's counters. The query is a
//! template of `{{service}}`, `{{color}}` and `{{commit}}`, checked at load
//! and rendered here, so the engine and the pure judgement agree on it.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::file::DurationStr;
use super::validate::{duration_field, Ctx, From};
use super::{duration, Color};

/// How often the query is evaluated when the file does not say.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// Inconclusive evaluations in a row that abort, when the file does not say.
pub const INCONCLUSIVE: u32 = 3;
/// The names a query may use, as `{{name}}`.
const PLACEHOLDERS: [&str; 3] = ["service", "color", "commit"];

/// `analysis.prometheus` as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusFile {
    /// Base URL of the Prometheus server (http or https), e.g.
    /// `http://127.0.0.1:9090`; teal asks `<url>/api/v1/query`. It must
    /// lie under a prefix of the host config's `policy.prometheus`.
    #[serde(default)]
    pub url: Option<String>,
    /// A PromQL query returning one value: a scalar, or a vector of one
    /// series. `{{service}}`, `{{color}}` (the new color) and `{{commit}}`
    /// are replaced, escaped for a PromQL string.
    #[serde(default)]
    pub query: Option<String>,
    /// Above this value the rollout aborts. At least one of max and min.
    #[serde(default)]
    pub max: Option<f64>,
    /// Below this value the rollout aborts. At least one of max and min.
    #[serde(default)]
    pub min: Option<f64>,
    /// How often the query is evaluated, at least 1s. Default 10s.
    #[serde(default)]
    pub interval: Option<DurationStr>,
    /// Evaluations in a row without a value (Prometheus unreachable, an
    /// error, an empty result, NaN) that abort the rollout. Default 3.
    #[serde(default)]
    pub inconclusive: Option<i64>,
}

/// A resolved `analysis.prometheus`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromCheck {
    /// Base URL without a trailing slash.
    pub url: String,
    /// The query template, as written.
    pub query: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(with = "duration::serde_human")]
    pub interval: Duration,
    pub inconclusive: u32,
}

impl PromCheck {
    /// The query for one rollout: each placeholder replaced by its value,
    /// escaped for the PromQL string literal it stands in.
    pub fn render(&self, service: &str, color: Color, commit: &str) -> String {
        let Ok(pieces) = pieces(&self.query) else {
            // Load refused it; never reached for a loaded service.
            return self.query.clone();
        };
        let mut out = String::with_capacity(self.query.len());
        for p in pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Hole { name, quote } => {
                    let value = match name {
                        "service" => service,
                        "color" => color.as_str(),
                        _ => commit,
                    };
                    out.push_str(&escape(value, quote));
                }
            }
        }
        out
    }
}

/// `s` safe inside a PromQL string literal opened by `quote`: the
/// backslash and that quote escaped (PromQL knows no other escape of a
/// quote); a raw string (backticks) can escape nothing, so backticks are
/// dropped. The values are names, but a template must not become a
/// different query because of one.
pub fn escape(s: &str, quote: char) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '`' if quote == '`' => {}
            '\\' | '"' | '\'' if quote != '`' && (c == '\\' || c == quote) => {
                out.push('\\');
                out.push(c);
            }
            '\n' if quote != '`' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The URL teal GETs (adding `?query=...`) from the Prometheus at `base`:
/// what the driver asks and what the host's `policy.prometheus` judges.
pub fn query_url(base: &str) -> String {
    format!("{}/api/v1/query", base.trim_end_matches('/'))
}

/// A template in pieces: text as written, and placeholders with the quote
/// of the string literal they stand in.
#[derive(Debug, PartialEq)]
enum Piece<'a> {
    Text(&'a str),
    Hole { name: &'a str, quote: char },
}

/// Splits a query template; an unknown placeholder, an unclosed `{{` or a
/// placeholder outside a string literal (its value would become query
/// syntax) is an error.
fn pieces(query: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = vec![];
    let (mut quote, mut text_from, mut i) = (None::<char>, 0, 0);
    let b = query.as_bytes();
    while i < b.len() {
        if b[i..].starts_with(b"{{") {
            let close = query[i..].find("}}").ok_or_else(|| {
                "query has a {{ without }}: write placeholders as {{service}}, {{color}} or {{commit}}".to_string()
            })?;
            let name = query[i + 2..i + close].trim();
            if !PLACEHOLDERS.contains(&name) {
                return Err(format!(
                    "query has an unknown placeholder {{{{{name}}}}}: use {{{{service}}}}, {{{{color}}}} or {{{{commit}}}}"
                ));
            }
            let Some(quote) = quote else {
                return Err(format!(
                    "query has {{{{{name}}}}} outside a string: put it in quotes, e.g. service=\"{{{{service}}}}\""
                ));
            };
            out.push(Piece::Text(&query[text_from..i]));
            out.push(Piece::Hole { name, quote });
            i += close + 2;
            text_from = i;
            continue;
        }
        let c = b[i];
        match (quote, c) {
            (Some(q), b'\\') if q != '`' => i += 1,
            (Some(q), c) if c as char == q => quote = None,
            (None, b'"' | b'\'' | b'`') => quote = Some(c as char),
            (None, b'#') => i += query[i..].find('\n').unwrap_or(query.len() - i),
            _ => {}
        }
        i += 1;
    }
    out.push(Piece::Text(&query[text_from.min(query.len())..]));
    Ok(out)
}

/// Why `query` is not a template, if it is not one.
fn check_template(query: &str) -> Result<(), String> {
    pieces(query).map(|_| ())
}

/// An http(s) base URL without credentials, query or fragment.
fn check_url(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("url {url:?} is not an http or https URL: write e.g. http://127.0.0.1:9090"))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("url {url:?} has no host: write e.g. http://127.0.0.1:9090"));
    }
    if host.contains('@') {
        return Err(format!(
            "url {url:?} carries credentials, which do not belong in git: put Prometheus behind a local proxy instead"
        ));
    }
    if url.contains('?') || url.contains('#') {
        return Err(format!(
            "url {url:?} has a query or fragment: give the base URL, teal adds /api/v1/query"
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// The resolved check; its errors are pushed, located at the value at fault.
pub(super) fn resolve(ctx: &mut Ctx<'_>, f: &PrometheusFile) -> Option<PromCheck> {
    const AT: [&str; 2] = ["analysis", "prometheus"];
    let at = |field: &'static str| [AT[0], AT[1], field];
    let before = ctx.diags.len();
    let url = match f.url.as_deref().map(check_url) {
        None => {
            ctx.err(
                From::Service,
                &AT,
                "analysis.prometheus needs a url: the Prometheus base URL, e.g. http://127.0.0.1:9090",
            );
            None
        }
        Some(Err(e)) => {
            ctx.err(From::Service, &at("url"), e);
            None
        }
        Some(Ok(u)) => Some(u),
    };
    match f.query.as_deref().map(str::trim) {
        None | Some("") => ctx.err(
            From::Service,
            &AT,
            "analysis.prometheus needs a query returning one value, e.g. sum(rate(http_errors_total{service=\"{{service}}\"}[1m]))",
        ),
        Some(q) => {
            if let Err(e) = check_template(q) {
                ctx.err(From::Service, &at("query"), e);
            }
        }
    }
    for (name, v) in [("max", f.max), ("min", f.min)] {
        if v.is_some_and(|v| !v.is_finite()) {
            ctx.err(From::Service, &at(name), format!("{name} must be a finite number"));
        }
    }
    match (f.max, f.min) {
        (None, None) => ctx.err(
            From::Service,
            &AT,
            "analysis.prometheus needs max (a value above it aborts) or min (a value below it aborts), or both",
        ),
        (Some(max), Some(min)) if min > max => ctx.err(
            From::Service,
            &at("min"),
            format!("min {min} is above max {max}: every value would abort"),
        ),
        _ => {}
    }
    let interval = match duration_field(ctx, f.interval.as_ref(), None, &at("interval"), INTERVAL) {
        Some((d, _)) if d < Duration::from_secs(1) => {
            ctx.err(
                From::Service,
                &at("interval"),
                format!(
                    "interval {} is under 1s: evaluate every second or less often",
                    duration::format(d)
                ),
            );
            None
        }
        Some((d, _)) if d > Duration::from_secs(3600) => {
            ctx.err(
                From::Service,
                &at("interval"),
                "interval is over 1h: a rollout would wait that long for a value",
            );
            None
        }
        other => other.map(|(d, _)| d),
    };
    let inconclusive = match f.inconclusive {
        None => INCONCLUSIVE,
        Some(n) if (1..=100).contains(&n) => n as u32,
        Some(n) => {
            ctx.err(
                From::Service,
                &at("inconclusive"),
                format!("inconclusive {n} is out of range: use 1-100"),
            );
            INCONCLUSIVE
        }
    };
    (ctx.diags.len() == before).then(|| PromCheck {
        url: url.unwrap_or_default(),
        query: f.query.clone().unwrap_or_default().trim().to_string(),
        max: f.max,
        min: f.min,
        interval: interval.unwrap_or(INTERVAL),
        inconclusive,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(query: &str) -> PromCheck {
        PromCheck {
            url: "http://p:9090".into(),
            query: query.into(),
            max: Some(1.0),
            min: None,
            interval: INTERVAL,
            inconclusive: INCONCLUSIVE,
        }
    }

    #[test]
    fn placeholders_are_replaced_and_escaped_for_their_quotes() {
        let c = check(r#"sum(rate(e{service="{{service}}",color="{{ color }}",commit='{{commit}}'}[1m])) # {{"#);
        assert_eq!(
            c.render("web", Color::Green, "3f2a9c1"),
            r#"sum(rate(e{service="web",color="green",commit='3f2a9c1'}[1m])) # {{"#
        );
        let odd = r#"a"b\c'd`e"#;
        assert_eq!(
            check(r#"x{a="{{service}}"}"#).render(odd, Color::Blue, ""),
            r#"x{a="a\"b\\c'd`e"}"#
        );
        assert_eq!(
            check("x{a='{{service}}'}").render(odd, Color::Blue, ""),
            r#"x{a='a"b\\c\'d`e'}"#
        );
        assert_eq!(
            check("x{a=`{{service}}`}").render(odd, Color::Blue, ""),
            r#"x{a=`a"b\c'de`}"#
        );
        // An escaped quote does not end the string.
        assert_eq!(
            check(r#"x{a="\"{{color}}"}"#).render("web", Color::Blue, ""),
            r#"x{a="\"blue"}"#
        );
        assert_eq!(check("up").render("web", Color::Blue, "c"), "up");
    }

    #[test]
    fn templates_and_urls_are_checked() {
        assert!(check_template("x{a=\"{{service}}\",b=\"{{commit}}\"} # ünïcode").is_ok());
        assert!(check_template("x{a=\"{{colour}}\"}")
            .unwrap_err()
            .contains("unknown placeholder {{colour}}"));
        assert!(check_template("x{a=\"{{service\"}").unwrap_err().contains("without }}"));
        assert!(check_template("{{service}}_total")
            .unwrap_err()
            .contains("outside a string"));
        assert_eq!(
            check_url("https://prom.example:9090/").unwrap(),
            "https://prom.example:9090"
        );
        assert_eq!(check_url("http://h/prometheus").unwrap(), "http://h/prometheus");
        for bad in [
            "ftp://h",
            "http://",
            "http:// h",
            "http://u:p@h",
            "http://h/?x=1",
            "127.0.0.1:9090",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
