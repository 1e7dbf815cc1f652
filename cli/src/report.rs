//! What runs leave behind for people: the plots of a run folder (drawn
//! from its `metrics.jsonl`, so a resumed run's plots cover all of it) and
//! result tables as text, Markdown and JSON.

use crate::error::CliError;
use byol::metrics::read_metrics;
use byol::study::FewLabelMethod;
use charts::{bar_chart, line_chart, BarSeries, Canvas, Series};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Blue and orange of the plots.
pub const BLUE: [u8; 3] = [31, 119, 180];
/// The second series' colour.
pub const ORANGE: [u8; 3] = [255, 127, 14];
/// The third series' colour.
pub const RED: [u8; 3] = [214, 39, 40];
/// The colour of baselines (raw pixels).
pub const GRAY: [u8; 3] = [128, 128, 128];

/// The few-labels bar chart of `study` and `demo`: one group of bars per
/// number of labels per class (`per_class`), one bar per method of
/// `methods` (`means[m][g]`: method `m`'s mean accuracy in percent at
/// group `g`, NaN where not measured), each method in the same colour in
/// both commands.
pub fn few_labels_chart(
    per_class: &[usize],
    methods: &[FewLabelMethod],
    means: Vec<Vec<f32>>,
) -> Canvas {
    let bars: Vec<BarSeries> = methods
        .iter()
        .zip(means)
        .map(|(m, values)| BarSeries {
            name: m.describe().into(),
            values,
            color: match m {
                FewLabelMethod::ByolLogistic => BLUE,
                FewLabelMethod::ByolFinetuned => ORANGE,
                FewLabelMethod::Scratch => RED,
                FewLabelMethod::PixelsLogistic => GRAY,
            },
        })
        .collect();
    let groups: Vec<String> = per_class.iter().map(|k| format!("{k} per class")).collect();
    bar_chart(
        "Few labels: mean test accuracy over the draws",
        "top-1 accuracy (%)",
        &groups,
        &bars,
    )
}

/// Draws `plots/loss.png` (loss per step and per epoch), `plots/knn.png`
/// (when the kNN monitor ran; each of `knn_baselines`, e.g. raw pixels'
/// and the random-init encoder's kNN accuracy, as a flat, named reference
/// line) and `plots/collapse.png` from the run's metrics; returns the
/// files written.
pub fn write_run_plots(
    run: &Path,
    knn_baselines: &[(&str, f32)],
) -> Result<Vec<PathBuf>, CliError> {
    let m = read_metrics(&byol::run::metrics_path(run))?;
    let dir = byol::run::plots_folder(run);
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::flag(format!("{}: cannot create the folder: {e}", dir.display())))?;
    let mut written = Vec::new();
    // Epochs count from 1 on the plots.
    let step_loss: Vec<(f32, f32)> = m.steps.iter().map(|r| (r.step as f32, r.loss)).collect();
    let per_epoch = |value: fn(&byol::metrics::EpochRecord) -> Option<f32>| -> Vec<(f32, f32)> {
        m.epochs
            .iter()
            .filter_map(|r| value(r).map(|v| (r.epoch as f32 + 1.0, v)))
            .collect()
    };
    let epoch_loss = per_epoch(|r| Some(r.loss));
    let epoch_knn = per_epoch(|r| r.knn);
    let epoch_collapse = per_epoch(|r| Some(r.collapse));
    let steps_per_epoch = match (step_loss.len(), epoch_loss.len()) {
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
                points: step_loss.clone(),
                color: [160, 190, 220],
            },
            Series {
                name: "epoch mean".into(),
                points: epoch_loss
                    .iter()
                    .map(|&(e, l)| (e * steps_per_epoch, l))
                    .collect(),
                color: BLUE,
            },
        ],
    );
    let path = dir.join("loss.png");
    loss.save_png(&path)?;
    written.push(path);
    if !epoch_knn.is_empty() {
        let mut series = vec![Series {
            name: "kNN, online encoder".into(),
            points: epoch_knn.clone(),
            color: ORANGE,
        }];
        let last = epoch_knn.last().map(|p| p.0).unwrap_or(1.0);
        let grays = [[128, 128, 128], [60, 60, 60], [190, 190, 190]];
        for (&(name, base), color) in knn_baselines.iter().zip(grays.into_iter().cycle()) {
            series.push(Series {
                name: name.into(),
                points: vec![(1.0, base), (last.max(1.0), base)],
                color,
            });
        }
        let knn = line_chart(
            "kNN accuracy of the online encoder (k = 200, cosine)",
            "epoch",
            "top-1 accuracy",
            &series,
        );
        let path = dir.join("knn.png");
        knn.save_png(&path)?;
        written.push(path);
    }
    if !epoch_collapse.is_empty() {
        let collapse = line_chart(
            "Collapse signal (std of normalised projections; 0 = collapsed)",
            "epoch",
            "std across the batch",
            &[Series {
                name: "collapse".into(),
                points: epoch_collapse.clone(),
                color: BLUE,
            }],
        );
        let path = dir.join("collapse.png");
        collapse.save_png(&path)?;
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

/// Writes `text` to `path`, complete or not at all.
pub fn write_text(path: &Path, text: &str) -> Result<(), CliError> {
    Ok(files::write_atomically(path, text.as_bytes())?)
}

/// Writes a JSON value to `path`, pretty-printed. A NaN has no JSON
/// number: serde_json writes it as `null`, never as a number.
pub fn write_json(path: &Path, value: &Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::flag(format!("{}: {e}", path.display())))?;
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
    fn a_run_s_metrics_become_its_plots() {
        let dir = std::env::temp_dir().join(format!("byol-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("metrics.jsonl"),
            concat!(
                "{\"kind\":\"step\",\"step\":0,\"epoch\":0,\"loss\":3.0,\"lr\":0.1,\"tau\":0.99,\"images_per_s\":10.0,\"collapse\":0.1}\n",
                "{\"kind\":\"epoch\",\"epoch\":0,\"loss\":2.7,\"collapse\":0.1,\"images_per_s\":10.0,\"knn\":0.6}\n",
            ),
        )
        .unwrap();
        let files = write_run_plots(&dir, &[("random init", 0.5)]).unwrap();
        assert_eq!(files.len(), 3);
        assert!(files.iter().all(|f| f.exists()));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
