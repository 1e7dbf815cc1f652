//! The study's report, `results.md` and `plots/`, drawn from what the study
//! folder holds (the cells and each row's `metrics.jsonl`), so it can be
//! rewritten at any moment: a measurement not made yet shows as
//! "pending", a row in training as its epoch.

use super::Context;
use crate::commands::percent;
use crate::error::CliError;
use crate::report::{few_labels_chart, write_text, Table, BLUE, GRAY, ORANGE};
use byol::eval::Spread;
use byol::metrics::{read_metrics, EpochRecord};
use byol::study::{
    curve_key, epochs_key, few_key, final_key, row_path, FewLabelMethod, ProbeScores, Row,
    PIXELS_KEY,
};
use charts::{bar_chart, line_chart, BarSeries, Series};
use std::path::PathBuf;

/// Writes `results.md` and the plots; returns the files written.
pub fn write(ctx: &Context, rows: &[Row]) -> Result<Vec<PathBuf>, CliError> {
    let plots = ctx.out.join("plots");
    std::fs::create_dir_all(&plots)
        .map_err(|e| CliError::flag(format!("{}: {e}", plots.display())))?;
    let pixels: Option<ProbeScores> = ctx.cells.get(PIXELS_KEY)?;
    let mut written = Vec::new();
    let mut md = header(ctx);

    // The learning curve.
    let byol = &rows[0];
    let epochs = row_epochs(ctx, byol);
    let mut curve: Vec<(usize, ProbeScores)> = Vec::new();
    for e in 0..=byol.config.epochs {
        if let Some(s) = ctx.cells.get(&curve_key(e))? {
            curve.push((e, s));
        }
    }
    md += "## The learning curve\n\n";
    md += &format!(
        "The BYOL row ({}) scored after every epoch on the whole splits: epoch 0 is its random \
         initialisation. Loss and collapse signal are the epoch's means (a healthy collapse \
         signal is about 1/sqrt({}) = {:.3}; near 0 means collapse).\n\n",
        byol.name,
        byol.config.projection,
        1.0 / (byol.config.projection as f32).sqrt()
    );
    let mut table = Table {
        header: [
            "epoch",
            "loss",
            "collapse signal",
            "kNN top-1",
            "logistic probe top-1",
        ]
        .map(String::from)
        .to_vec(),
        rows: Vec::new(),
    };
    if let Some(p) = &pixels {
        table.rows.push(vec![
            "raw pixels".into(),
            "-".into(),
            "-".into(),
            percent(p.knn),
            logistic(p),
        ]);
    }
    for e in 0..=byol.config.epochs {
        let scores = curve.iter().find(|(c, _)| *c == e).map(|(_, s)| s);
        let record = e.checked_sub(1).and_then(|i| epochs.get(i));
        if scores.is_none() && record.is_none() && e > 0 {
            continue;
        }
        table.rows.push(vec![
            e.to_string(),
            record.map_or("-".into(), |r| format!("{:.4}", r.loss)),
            record.map_or("-".into(), |r| format!("{:.4}", r.collapse)),
            scores.map_or("pending".into(), |s| percent(s.knn)),
            scores.map_or("pending".into(), logistic),
        ]);
    }
    if epochs.len() < byol.config.epochs {
        md += &format!(
            "In training: {} of {} epochs done. Run the same command to continue.\n\n",
            epochs.len(),
            byol.config.epochs
        );
    }
    md += &table.markdown();
    if !curve.is_empty() {
        let last = byol.config.epochs.max(1) as f32;
        let flat = |name: &str, v: f32, color| Series {
            name: name.into(),
            points: vec![(0.0, v * 100.0), (last, v * 100.0)],
            color,
        };
        let mut series = vec![
            Series {
                name: "BYOL, logistic probe".into(),
                points: curve
                    .iter()
                    .map(|(e, s)| (*e as f32, s.logistic * 100.0))
                    .collect(),
                color: BLUE,
            },
            Series {
                name: "BYOL, kNN".into(),
                points: curve
                    .iter()
                    .map(|(e, s)| (*e as f32, s.knn * 100.0))
                    .collect(),
                color: ORANGE,
            },
        ];
        if let Some(p) = &pixels {
            series.push(flat("raw pixels, logistic probe", p.logistic, GRAY));
            series.push(flat("raw pixels, kNN", p.knn, [190, 190, 190]));
        }
        let chart = line_chart(
            "Test accuracy of the BYOL encoder's features, by epoch",
            "epoch (0 = random initialisation)",
            "top-1 accuracy (%)",
            &series,
        );
        let path = plots.join("curve.png");
        chart.save_png(&path)?;
        md += "\n![learning curve](plots/curve.png)\n";
        written.push(path);
    }

    // The ablation.
    if ctx.plan.ablation {
        md += "\n## What makes BYOL work (the paper's Table 5a)\n\n";
        md += "Every row is the BYOL row with one change, trained with the same budget and \
                seed, scored on its final encoder. The collapse signal is the last epoch's \
                mean.\n\n";
        let mut table = Table {
            header: [
                "representation",
                "kNN top-1",
                "logistic probe top-1",
                "collapse signal",
                "loss",
            ]
            .map(String::from)
            .to_vec(),
            rows: Vec::new(),
        };
        let mut groups = Vec::new();
        let (mut knn, mut logi) = (Vec::new(), Vec::new());
        let mut add =
            |name: &str, s: Option<&ProbeScores>, last: Option<&EpochRecord>, status: String| {
                table.rows.push(vec![
                    name.to_string(),
                    s.map_or(status.clone(), |s| percent(s.knn)),
                    s.map_or(status.clone(), logistic),
                    last.map_or("-".into(), |r| format!("{:.4}", r.collapse)),
                    last.map_or("-".into(), |r| format!("{:.4}", r.loss)),
                ]);
                groups.push(name.to_string());
                knn.push(s.map_or(f32::NAN, |s| s.knn * 100.0));
                logi.push(s.map_or(f32::NAN, |s| s.logistic * 100.0));
            };
        add("raw pixels", pixels.as_ref(), None, "pending".into());
        let init = curve.iter().find(|(e, _)| *e == 0).map(|(_, s)| *s);
        add(
            "random initialisation",
            init.as_ref(),
            None,
            "pending".into(),
        );
        for (i, row) in rows.iter().enumerate() {
            let epochs = row_epochs(ctx, row);
            let scores: Option<ProbeScores> = if i == 0 {
                curve
                    .iter()
                    .find(|(e, _)| *e == row.config.epochs)
                    .map(|(_, s)| *s)
            } else {
                ctx.cells.get(&final_key(row))?
            };
            let status = match epochs.len() {
                0 => "pending".to_string(),
                n if n < row.config.epochs => format!("training ({n}/{})", row.config.epochs),
                _ => "pending".to_string(),
            };
            add(&row.name, scores.as_ref(), epochs.last(), status);
        }
        md += &table.markdown();
        if knn.iter().chain(&logi).any(|v| v.is_finite()) {
            let chart = bar_chart(
                "The paper's ablation at this budget: test accuracy",
                "top-1 accuracy (%)",
                &groups,
                &[
                    BarSeries {
                        name: "kNN".into(),
                        values: knn,
                        color: ORANGE,
                    },
                    BarSeries {
                        name: "logistic probe".into(),
                        values: logi,
                        color: BLUE,
                    },
                ],
            );
            let path = plots.join("ablation.png");
            chart.save_png(&path)?;
            md += "\n![ablation](plots/ablation.png)\n";
            written.push(path);
        }
    }

    // Few labels.
    if !ctx.plan.labels_per_class.is_empty() {
        md += "\n## Few labels\n\n";
        md += &format!(
            "Test accuracy with K labelled train images of each class, mean ± standard \
             deviation over {} draws (the same labelled images for every method in a draw; the \
             test split whole). Logistic probes as above; fine-tuning {} epochs, batch {}, SGD \
             lr {} (cosine), crop and flip.\n\n",
            ctx.plan.draws,
            ctx.plan.finetune.epochs,
            ctx.plan.finetune.batch_size,
            ctx.plan.finetune.lr
        );
        let mut header = vec!["labels per class".to_string()];
        header.extend(FewLabelMethod::ALL.iter().map(|m| m.describe().to_string()));
        let mut table = Table {
            header,
            rows: Vec::new(),
        };
        let mut means = vec![Vec::new(); FewLabelMethod::ALL.len()];
        for &k in &ctx.plan.labels_per_class {
            let mut line = vec![k.to_string()];
            for (m, method) in FewLabelMethod::ALL.iter().enumerate() {
                let mut values: Vec<f32> = Vec::new();
                for d in 0..ctx.plan.draws {
                    values.extend(ctx.cells.get::<f32>(&few_key(k, *method, d))?);
                }
                match Spread::of(values) {
                    Ok(s) => {
                        line.push(s.cell(ctx.plan.draws));
                        means[m].push(s.mean() * 100.0);
                    }
                    Err(_) => {
                        line.push("pending".into());
                        means[m].push(f32::NAN);
                    }
                }
            }
            table.rows.push(line);
        }
        md += &table.markdown();
        if means.iter().flatten().any(|v| v.is_finite()) {
            let chart = few_labels_chart(&ctx.plan.labels_per_class, &FewLabelMethod::ALL, means);
            let path = plots.join("few-labels.png");
            chart.save_png(&path)?;
            md += "\n![few labels](plots/few-labels.png)\n";
            written.push(path);
        }
    }
    let path = ctx.out.join("results.md");
    write_text(&path, &md)?;
    written.insert(0, path);
    Ok(written)
}

/// The title, the command and the budget.
fn header(ctx: &Context) -> String {
    let c = &ctx.plan.base;
    format!(
        "# BYOL study\n\n\
         Written by `byol study`; every number below is read from this study's folder.\n\n\
         ```\n{}\n```\n\n\
         - data: {} train images, {} test images, {} classes ({}{})\n\
         - BYOL row: {} width {} ({} stem), heads {}/{}{}, {} epochs, batch {}, {} lr {} \
         ({}), weight decay {}, tau_base {} ({}), augment {} (min crop {}, jitter {}, \
         brightness {}), seed {}\n\
         - device (of this run of the command): {}\n\
         - probes: kNN (k = 200, cosine, T = 0.1) and logistic regression (L2, C = 1, \
         standardised features, L-BFGS to gradient 1e-4) on the frozen features of the whole \
         train split, scored on the test split\n\n",
        ctx.command,
        ctx.splits.train.len(),
        ctx.splits.test.len(),
        ctx.splits.classes,
        name(&ctx.plan.data.dataset),
        ctx.plan
            .data
            .limit
            .map(|l| format!(", first {l} of each split"))
            .unwrap_or_default(),
        name(&c.arch),
        c.width,
        name(&c.stem),
        c.hidden,
        c.projection,
        if c.target_copy {
            ", target starts as a copy"
        } else {
            ""
        },
        c.epochs,
        c.batch_size,
        name(&c.optimizer),
        c.lr,
        name(&c.lr_schedule),
        c.weight_decay,
        c.tau,
        name(&c.tau_schedule),
        name(&c.augment),
        c.min_crop,
        c.jitter,
        name(&c.brightness),
        c.seed,
        ctx.device.describe(),
    )
}

/// A setting's value as the flags and config files spell it (`adam`,
/// `cosine`), from its serde name.
fn name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

/// The epoch records of a row's run: from its `metrics.jsonl`, or from
/// the cell kept when it finished (its run folder gone); empty before it
/// starts.
fn row_epochs(ctx: &Context, row: &Row) -> Vec<EpochRecord> {
    let from_run = read_metrics(&byol::run::metrics_path(&row_path(&ctx.out, row)))
        .map(|m| m.epochs)
        .unwrap_or_default();
    if !from_run.is_empty() {
        return from_run;
    }
    ctx.cells
        .get::<Vec<EpochRecord>>(&epochs_key(row))
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn logistic(s: &ProbeScores) -> String {
    if s.logistic_converged {
        percent(s.logistic)
    } else {
        format!("{} (not converged)", percent(s.logistic))
    }
}
