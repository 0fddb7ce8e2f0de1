//! Properties of the loader over generated documents: the YAML limits hold
//! for any shape of nesting and aliasing (a document is refused exactly
//! when what it stands for crosses a limit), and a damaged service file is
//! answered with located diagnostics, never a panic.

use proptest::prelude::*;

use super::limits::{check, MAX_DEPTH, MAX_NODES};
use super::load::{load, RepoFiles};

/// A document built from a known shape: `layers` anchored sequences, each
/// repeating the one before `fan` times through aliases (the billion
/// laughs when large), under `depth` levels of nesting, written in block
/// or flow style. Returns the text, its expanded node count and its depth
/// in collections, counted as the limits define them.
fn document(layers: usize, fan: usize, depth: usize, flow: bool) -> (String, u64, usize) {
    let mut text = String::new();
    // Each layer `lN: &lN [...]` is a key (1 node) and a sequence.
    let mut size = vec![];
    for l in 0..layers {
        let items: Vec<String> = if l == 0 {
            (0..fan).map(|i| format!("v{i}")).collect()
        } else {
            (0..fan).map(|_| format!("*l{}", l - 1)).collect()
        };
        let inner = if l == 0 { 1 } else { size[l - 1] };
        size.push(1 + fan as u64 * inner);
        text.push_str(&format!("l{l}: &l{l} [{}]\n", items.join(", ")));
    }
    // The top mapping (1) and the keys (1 each) with their sequences.
    let mut nodes = 1 + size.iter().map(|s| s + 1).sum::<u64>();
    match (flow, depth) {
        (_, 0) => text.push_str("deep: x\n"),
        (true, _) => text.push_str(&format!("deep: {}x{}\n", "[".repeat(depth), "]".repeat(depth))),
        // `- - x` is a sequence in a sequence.
        (false, _) => text.push_str(&format!("deep:\n{}x\n", "- ".repeat(depth))),
    }
    // The key, `depth` sequences and the scalar.
    nodes += 1 + depth as u64 + 1;
    // The top mapping counts as one collection, the layers as one more.
    let levels = 1 + depth.max(usize::from(layers > 0));
    (text, nodes, levels)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_limits_refuse_exactly_what_crosses_them(
        layers in 0..9usize,
        fan in 1..12usize,
        depth in 0..(MAX_DEPTH + 8),
        flow: bool,
    ) {
        let (text, nodes, levels) = document(layers, fan, depth, flow);
        let over = nodes > MAX_NODES || levels > MAX_DEPTH;
        let got = check("services/web.yaml", &text);
        prop_assert_eq!(got.is_err(), over, "nodes {} levels {} -> {:?}\n{}", nodes, levels, got, text);
        if let Err(d) = got {
            let lines = text.lines().count();
            prop_assert!(d.line >= 1 && d.line <= lines + 1, "{d} for {lines} lines");
        }
        // Whatever the verdict, the loader answers (these documents are no
        // service files) with diagnostics, and in the same file.
        let mut f = RepoFiles { has_services_dir: true, ..Default::default() };
        f.files.insert("services/web.yaml".into(), text);
        let e = load(&f).unwrap_err();
        prop_assert!(e.0.iter().all(|d| d.path == "services/web.yaml"), "{e}");
    }

    #[test]
    fn a_damaged_service_file_gets_located_errors_not_a_panic(
        cut in 0..400usize,
        len in 0..40usize,
        junk in "[ -~\t\n:{}\\[\\]&*!|>'\"#-]{0,24}",
    ) {
        let good = "active: green\nblue:\n  image: web:1\ngreen:\n  image: web:2\nport: 8080\nreplicas: 2\n\
                    env: {A: b}\nroute: {host: shop.example, path: /}\npreview: {host: p.example, allow: [10.0.0.0/8]}\n\
                    health:\n  http: {path: /healthz, status: 200}\n  interval: 1s\n  timeout: 2s\n  successes: 3\n  deadline: 60s\n\
                    strategy: canary\ncanary:\n  steps: [{weight: 10, hold: 1s}]\nanalysis: {max_errors: 1%, min_requests: 20}\n";
        let at = cut.min(good.len());
        let end = (at + len).min(good.len());
        let text = format!("{}{junk}{}", &good[..at], &good[end..]);
        let mut f = RepoFiles { has_services_dir: true, ..Default::default() };
        f.files.insert("services/web.yaml".into(), text.clone());
        if let Err(e) = load(&f) {
            let lines = text.lines().count();
            prop_assert!(!e.0.is_empty());
            for d in &e.0 {
                prop_assert_eq!(&d.path, "services/web.yaml");
                prop_assert!(d.line <= lines + 1, "{} for {} lines:\n{}", d, lines, text);
                prop_assert!(!d.message.is_empty());
            }
        }
    }
}
