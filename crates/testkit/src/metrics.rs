//! Reading rwproxy's `/metrics` exposition (Prometheus text format 0.0.4): the samples of a
//! scrape, the sum over the series of a metric that carry some labels, or the one series with
//! exactly the given labels ([`crate::ProxyProcess::series`] scrapes and reads one).

/// One sample line of the Prometheus text format: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    pub labels: Vec<(&'a str, &'a str)>,
    pub value: f64,
}

/// Every sample line of a scrape (comments and blank lines skipped).
pub fn samples(text: &str) -> Vec<Sample<'_>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').unwrap_or(rest);
                let labels = inner
                    .split(',')
                    .filter(|kv| !kv.is_empty())
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
                    .collect();
                (name, labels)
            }
            None => (series, Vec::new()),
        };
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    out
}

/// Sum of the samples of `name` whose labels include all of `wanted`; `None` if none exist.
pub fn metric(text: &str, name: &str, wanted: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = samples(text)
        .into_iter()
        .filter(|s| s.name == name)
        .filter(|s| wanted.iter().all(|w| s.labels.contains(w)))
        .map(|s| s.value)
        .collect();
    if matching.is_empty() {
        None
    } else {
        Some(matching.iter().sum())
    }
}

/// Like [`metric`], but a missing series fails the test.
pub fn must_metric(text: &str, name: &str, wanted: &[(&str, &str)]) -> f64 {
    metric(text, name, wanted)
        .unwrap_or_else(|| panic!("no sample {name}{wanted:?} in the scrape:\n{text}"))
}

/// The value of the one series `name{labels}` with exactly these labels (in any order);
/// `None` if the scrape has no such series.
pub fn series(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(text)
        .into_iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels.iter().all(|l| s.labels.contains(l))
        })
        .map(|s| s.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = "# HELP rwproxy_x_total X.\n# TYPE rwproxy_x_total counter\n\
        rwproxy_x_total{role=\"primary\",reason=\"write\"} 3\n\
        rwproxy_x_total{role=\"replica\",reason=\"read\"} 4\n\
        rwproxy_x_total{role=\"replica\",reason=\"read\",extra=\"1\"} 10\n\
        rwproxy_up 1\n";

    #[test]
    fn samples_are_parsed_with_their_labels() {
        let all = samples(SCRAPE);
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].name, "rwproxy_x_total");
        assert_eq!(
            all[0].labels,
            vec![("role", "primary"), ("reason", "write")]
        );
        assert_eq!(all[3].labels, vec![]);
        assert_eq!(all[3].value, 1.0);
    }

    #[test]
    fn metric_sums_and_series_is_exact() {
        assert_eq!(metric(SCRAPE, "rwproxy_x_total", &[]), Some(17.0));
        assert_eq!(
            metric(SCRAPE, "rwproxy_x_total", &[("reason", "read")]),
            Some(14.0)
        );
        assert_eq!(
            series(
                SCRAPE,
                "rwproxy_x_total",
                &[("reason", "read"), ("role", "replica")]
            ),
            Some(4.0)
        );
        assert_eq!(
            series(SCRAPE, "rwproxy_x_total", &[("reason", "read")]),
            None
        );
        assert_eq!(series(SCRAPE, "rwproxy_up", &[]), Some(1.0));
        assert_eq!(metric(SCRAPE, "rwproxy_missing", &[]), None);
    }
}
