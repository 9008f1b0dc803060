//! Short human-readable durations for reasons and logs ("500ms", "1s", "1.25s").

use std::time::Duration;

pub(crate) fn duration(d: Duration) -> String {
    let millis = d.as_millis();
    if millis < 1000 {
        return format!("{millis}ms");
    }
    if millis % 1000 == 0 {
        return format!("{}s", millis / 1000);
    }
    let text = format!("{:.3}", d.as_secs_f64());
    format!("{}s", text.trim_end_matches('0').trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(duration(Duration::from_millis(500)), "500ms");
        assert_eq!(duration(Duration::ZERO), "0ms");
        assert_eq!(duration(Duration::from_secs(1)), "1s");
        assert_eq!(duration(Duration::from_millis(1250)), "1.25s");
        assert_eq!(duration(Duration::from_millis(12300)), "12.3s");
    }
}
