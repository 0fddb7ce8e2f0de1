//! Where log lines go and how they look: `key=value` text on stderr for
//! people and journald, or one JSON object per line for log shippers
//! (`teal daemon --log-format json`). `TEAL_LOG` sets the level filter.

use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `LEVEL target: message key=value ...`, for people and journald.
    #[default]
    Text,
    /// One JSON object per line with the fields at the top level
    /// (timestamp, level, target, message, service, color, ...).
    Json,
}

/// A subscriber writing to `writer` in `format`; `ansi` colours text lines.
/// Kept apart from `init` so tests capture exactly what users see.
pub fn subscriber<W>(format: LogFormat, filter: EnvFilter, ansi: bool, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.with_ansi(ansi).finish()),
        // Flattened: shippers index `service`, not `fields.service`.
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .finish(),
        ),
    }
}

/// Installs the process-wide subscriber on stderr. Colour only on a
/// terminal and never with `NO_COLOR`.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("TEAL_LOG").unwrap_or_else(|_| "info".into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    tracing::subscriber::set_global_default(subscriber(format, filter, ansi, std::io::stderr))
        .expect("the log subscriber is set once, at start");
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::engine::StepEvent;
    use crate::plan::Step;
    use crate::spec::Color;

    /// A writer into a shared buffer, so a test reads the lines back.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buf {
        type Writer = Buf;
        fn make_writer(&'w self) -> Buf {
            self.clone()
        }
    }

    fn event(step: Step, result: Result<(), String>) -> StepEvent {
        StepEvent {
            service: "web".into(),
            commit: "0123456789abcdef0123".into(),
            step,
            result,
            duration: Duration::from_millis(1200),
            note: None,
            waiting: false,
        }
    }

    /// What the daemon logs for a switch, a failed check and a step
    /// without a color, in `format`.
    fn daemon_lines(format: LogFormat) -> String {
        let buf = Buf::default();
        let sub = subscriber(format, EnvFilter::new("info"), false, buf.clone());
        tracing::subscriber::with_default(sub, || {
            let switch = Step::Switch {
                from: Some(Color::Blue),
                to: Color::Green,
            };
            crate::daemon::log_step(&event(switch, Ok(())));
            let check = Step::WaitHealthy { color: Color::Green };
            crate::daemon::log_step(&event(check, Err("web-green-0: GET /healthz -> 503".into())));
            crate::daemon::log_step(&event(Step::RemoveService { drain: None }, Ok(())));
        });
        let bytes = buf.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn text_lines_print_plain_values_and_leave_absent_fields_out() {
        // The timestamp is the first word; drop it so the snapshot is stable.
        let lines: Vec<String> = daemon_lines(LogFormat::Text)
            .lines()
            .map(|l| l.split_once(' ').expect("timestamp first").1.trim_start().to_string())
            .collect();
        let text = lines.join("\n");
        assert!(!text.contains("Some(") && !text.contains("None"), "{text}");
        insta::assert_snapshot!(text);
    }

    #[test]
    fn json_lines_parse_as_json_with_the_fields_at_the_top() {
        let text = daemon_lines(LogFormat::Json);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["message"], "ok");
        assert_eq!(lines[0]["service"], "web");
        assert_eq!(lines[0]["color"], "green");
        assert_eq!(lines[0]["step"], "switch traffic blue -> green");
        assert_eq!(lines[1]["level"], "WARN");
        assert_eq!(lines[1]["error"], "web-green-0: GET /healthz -> 503");
        assert!(
            lines[2].get("color").is_none(),
            "no color for remove_service: {}",
            lines[2]
        );
        assert!(lines[0]["timestamp"].is_string());
    }
}
