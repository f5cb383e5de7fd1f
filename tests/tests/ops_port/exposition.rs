//! The Prometheus text exposition of `/metrics`, parsed strictly enough to
//! catch a broken one, and the samples looked up by name and labels.

/// One sample of the exposition: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    /// The metric name, with any `_bucket`/`_sum`/`_count` suffix.
    pub(crate) name: String,
    /// The labels in the order written.
    pub(crate) labels: Vec<(String, String)>,
    /// The value (`+Inf` as infinity).
    pub(crate) value: f64,
}

/// Parses the Prometheus text format strictly enough to catch a broken
/// exposition: every line a comment (`# HELP`/`# TYPE`) or a sample, every
/// sample of a family that has HELP and TYPE.
pub(crate) fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut helped = Vec::new();
    let mut typed = Vec::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(!help.trim().is_empty(), "empty HELP for {name}");
            helped.push(name.to_owned());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind),
                "{name}: type {kind}"
            );
            typed.push(name.to_owned());
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment {line:?}");
        if line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample name value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, Vec::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let labels = body
                    .split(',')
                    .filter(|l| !l.is_empty())
                    .map(|pair| {
                        let (k, v) = pair.split_once('=').expect("label=value");
                        let v = v
                            .strip_prefix('"')
                            .and_then(|v| v.strip_suffix('"'))
                            .expect("quoted label value");
                        (k.to_owned(), v.to_owned())
                    })
                    .collect();
                (name, labels)
            }
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "metric name {name:?}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| typed.iter().any(|t| t == f))
            })
            .unwrap_or(name);
        assert!(
            typed.iter().any(|t| t == family) && helped.iter().any(|h| h == family),
            "{name} has no HELP/TYPE"
        );
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    samples
}

/// The value of the sample `name` whose labels include `labels`.
pub(crate) fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v))
        })
        .map(|s| s.value)
}
