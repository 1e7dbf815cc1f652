//! What runs leave behind for people: the plots of a run folder (drawn
//! from its `metrics.jsonl`, so a resumed run's plots cover all of it) and
//! result tables as text, Markdown and JSON.

use charts::{line_chart, Series};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Blue and orange of the plots.
pub const BLUE: [u8; 3] = [31, 119, 180];
/// The second series' colour.
pub const ORANGE: [u8; 3] = [255, 127, 14];

/// The step and epoch lines of a run's `metrics.jsonl`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (step, loss) of every step.
    pub step_loss: Vec<(f32, f32)>,
    /// (epoch from 1, mean loss) of every epoch.
    pub epoch_loss: Vec<(f32, f32)>,
    /// (epoch from 1, kNN accuracy) where the monitor ran.
    pub epoch_knn: Vec<(f32, f32)>,
    /// (epoch from 1, mean collapse signal).
    pub epoch_collapse: Vec<(f32, f32)>,
}

/// Reads `run/metrics.jsonl`. A line that is not JSON (a crash mid-write)
/// is skipped; a resumed run's repeated steps keep their last value.
pub fn read_metrics(run: &Path) -> Result<Metrics, String> {
    let path = run.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut m = Metrics::default();
    let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64).map(|x| x as f32);
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        match v.get("kind").and_then(Value::as_str) {
            Some("step") => {
                if let (Some(s), Some(l)) = (num(&v, "step"), num(&v, "loss")) {
                    m.step_loss.retain(|p| p.0 != s);
                    m.step_loss.push((s, l));
                }
            }
            Some("epoch") => {
                let Some(e) = num(&v, "epoch").map(|e| e + 1.0) else {
                    continue;
                };
                for (list, key) in [
                    (&mut m.epoch_loss, "loss"),
                    (&mut m.epoch_knn, "knn"),
                    (&mut m.epoch_collapse, "collapse"),
                ] {
                    if let Some(x) = num(&v, key) {
                        list.retain(|p| p.0 != e);
                        list.push((e, x));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(m)
}

/// Draws `plots/loss.png` (loss per step and per epoch), `plots/knn.png`
/// (when the kNN monitor ran; with `knn_baseline`, e.g. the random-init
/// encoder's accuracy, as a flat reference line) and `plots/collapse.png`
/// from the run's metrics; returns the files written.
pub fn write_run_plots(run: &Path, knn_baseline: Option<f32>) -> Result<Vec<PathBuf>, String> {
    let m = read_metrics(run)?;
    let dir = run.join("plots");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut written = Vec::new();
    let steps_per_epoch = match (m.step_loss.len(), m.epoch_loss.len()) {
        (s, e) if e > 0 => s as f32 / e as f32,
        _ => 1.0,
    };
    let loss = line_chart(
        "BYOL loss",
        "step",
        "loss (2 - 2 cos, both views)",
        &[
            Series {
                name: "per step".into(),
                points: m.step_loss.clone(),
                color: [160, 190, 220],
            },
            Series {
                name: "epoch mean".into(),
                points: m
                    .epoch_loss
                    .iter()
                    .map(|&(e, l)| (e * steps_per_epoch, l))
                    .collect(),
                color: BLUE,
            },
        ],
    );
    let path = dir.join("loss.png");
    loss.save_png(&path).map_err(|e| e.to_string())?;
    written.push(path);
    if !m.epoch_knn.is_empty() {
        let mut series = vec![Series {
            name: "kNN, online encoder".into(),
            points: m.epoch_knn.clone(),
            color: ORANGE,
        }];
        if let Some(base) = knn_baseline {
            let last = m.epoch_knn.last().map(|p| p.0).unwrap_or(1.0);
            series.push(Series {
                name: "random init".into(),
                points: vec![(1.0, base), (last.max(1.0), base)],
                color: [128, 128, 128],
            });
        }
        let knn = line_chart(
            "kNN accuracy of the online encoder (k = 200, cosine)",
            "epoch",
            "top-1 accuracy",
            &series,
        );
        let path = dir.join("knn.png");
        knn.save_png(&path).map_err(|e| e.to_string())?;
        written.push(path);
    }
    if !m.epoch_collapse.is_empty() {
        let collapse = line_chart(
            "Collapse signal (std of normalised projections; 0 = collapsed)",
            "epoch",
            "std across the batch",
            &[Series {
                name: "collapse".into(),
                points: m.epoch_collapse.clone(),
                color: BLUE,
            }],
        );
        let path = dir.join("collapse.png");
        collapse.save_png(&path).map_err(|e| e.to_string())?;
        written.push(path);
    }
    Ok(written)
}

/// A results table: a header and rows of cells.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// Column titles.
    pub header: Vec<String>,
    /// Rows, each as long as the header.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Aligned plain text for the terminal.
    pub fn text(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| r[c].chars().count())
                    .chain([self.header[c].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        let mut out = vec![line(&self.header)];
        out.push(
            widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("  "),
        );
        out.extend(self.rows.iter().map(|r| line(r)));
        out.join("\n")
    }

    /// A Markdown table.
    pub fn markdown(&self) -> String {
        let row = |cells: &[String]| format!("| {} |", cells.join(" | "));
        let mut out = vec![
            row(&self.header),
            format!("|{}", " --- |".repeat(self.header.len())),
        ];
        out.extend(self.rows.iter().map(|r| row(r)));
        out.join("\n") + "\n"
    }
}

/// Writes `text` to `path` (temporary name, then rename).
pub fn write_text(path: &Path, text: &str) -> Result<(), String> {
    files::write_atomically(path, text.as_bytes()).map_err(|e| e.to_string())
}

/// Writes a JSON value to `path`, pretty-printed.
pub fn write_json(path: &Path, value: &Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    write_text(path, &(text + "\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_render_as_markdown() {
        let t = Table {
            header: vec!["encoder".into(), "kNN".into()],
            rows: vec![
                vec!["random init".into(), "0.512".into()],
                vec!["BYOL".into(), "0.700".into()],
            ],
        };
        let text = t.text();
        assert_eq!(text.lines().nth(2).unwrap(), "random init  0.512");
        assert_eq!(text.lines().nth(3).unwrap(), "BYOL         0.700");
        let md = t.markdown();
        assert!(md.starts_with("| encoder | kNN |\n| --- | --- |\n| random init | 0.512 |"));
    }

    #[test]
    fn metrics_are_read_and_a_resumed_step_keeps_its_last_value() {
        let dir = std::env::temp_dir().join(format!("byol-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("metrics.jsonl"),
            concat!(
                "{\"kind\":\"step\",\"step\":0,\"loss\":3.0}\n",
                "{\"kind\":\"step\",\"step\":1,\"loss\":2.5}\n",
                "{\"kind\":\"step\",\"step\":1,\"loss\":2.4}\n",
                "{\"kind\":\"epoch\",\"epoch\":0,\"loss\":2.7,\"collapse\":0.1,\"knn\":0.6}\n",
                "{\"kind\":\"step\",\"st",
            ),
        )
        .unwrap();
        let m = read_metrics(&dir).unwrap();
        assert_eq!(m.step_loss, vec![(0.0, 3.0), (1.0, 2.4)]);
        assert_eq!(m.epoch_knn, vec![(1.0, 0.6)]);
        let files = write_run_plots(&dir, Some(0.5)).unwrap();
        assert_eq!(files.len(), 3);
        assert!(files.iter().all(|f| f.exists()));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
