//! Reading the Prometheus text a server serves on `--metrics-listen`.

use super::Call;

/// The metrics text at `url` (which must answer 200).
pub async fn scrape(url: &str) -> String {
    let r = reqwest::Client::new().get(url).sent().await;
    assert_eq!(r.status(), 200, "{url}");
    r.text().await.unwrap()
}

/// The value of one sample line (`name{labels} value`), if present.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}
