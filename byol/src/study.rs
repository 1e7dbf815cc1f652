//! # A study: what BYOL buys, measured
//!
//! One pretraining run says little; the questions users ask are
//! comparisons. A study answers three of them on one labelled data set at
//! one budget, the way the paper does:
//!
//! | part | question | rows |
//! | --- | --- | --- |
//! | learning curve | how good is the encoder after each epoch? | the BYOL run, epoch 0 (its random initialisation) to the end, beside raw pixels |
//! | ablation (Table 5a) | what makes BYOL work? | fixed random target (τ = 1), τ_base 0.9 / 0.99 / 0.996, online network as target (τ = 0), no predictor |
//! | few labels (Table 2's question) | what does it give a user with K labels per class? | logistic regression on BYOL features, BYOL fine-tuned, the same ResNet from scratch, logistic regression on pixels; several draws each |
//!
//! Every representation is scored the same way: kNN (k = 200, cosine,
//! T = 0.1) and the logistic-regression probe fitted to convergence
//! ([`crate::eval::logistic`]), both on the whole train split's features,
//! scored on the test split ([`ProbeScores`]).
//!
//! ## Resuming
//!
//! A study takes hours at full scale, so nothing in it is done twice. Its
//! folder holds:
//!
//! ```text
//! study.json          the plan (settings, data, parts); a rerun must give the same one
//! rows/<row>/         one pretraining run folder per row, resumed from its checkpoint
//! cells/<key>.json    one file per measured number, written once, atomically
//! ```
//!
//! A measurement is a *cell* ([`Cells`]): before computing one, the study
//! looks for its file; after, it writes it whole or not at all. Stopping
//! (Ctrl-C, a crash, the end of a session) loses at most the cell or the
//! epoch in progress; running the same command again continues.
//!
//! This module holds the plan, the rows, the cells and the measurements;
//! the `byol study` command runs them in order, shows progress and writes
//! the report.

use crate::config::TrainConfig;
use crate::error::{ByolError, Result};
use crate::eval::finetune::{finetune, FinetuneConfig};
use crate::eval::{
    balanced_draw, dataset_labels, per_class_fraction, rows, LabelledSplits, LogisticConfig,
};
use augment::DataSource;
use models::ResNet;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tensor::Tensor;

/// The τ_base values of the ablation's moving-average rows (Table 5a),
/// besides the BYOL row's own.
pub const ABLATION_TAUS: [f32; 3] = [0.9, 0.99, 0.996];

/// How a study fine-tunes (the few-labels part): [`FinetuneConfig`]'s
/// settings that a study fixes for every draw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinetuneSettings {
    /// Passes over the labelled images.
    pub epochs: usize,
    /// Images per mini-batch (capped at the labelled images).
    pub batch_size: usize,
    /// Peak learning rate of SGD with momentum (cosine decay).
    pub lr: f32,
}

impl Default for FinetuneSettings {
    /// [`FinetuneConfig::default`]'s: 30 epochs, batch 64, lr 0.05.
    fn default() -> Self {
        let c = FinetuneConfig::default();
        FinetuneSettings {
            epochs: c.epochs,
            batch_size: c.batch_size,
            lr: c.lr,
        }
    }
}

/// What a study measures, recorded as `study.json` when it starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyPlan {
    /// The BYOL row's settings; every other row changes one thing.
    pub base: TrainConfig,
    /// The labelled data set (both splits).
    pub data: DataSource,
    /// Whether to train the ablation rows (Table 5a).
    pub ablation: bool,
    /// The K of the few-labels part (empty: no few-labels part).
    pub labels_per_class: Vec<usize>,
    /// Draws of the labelled images for each K.
    pub draws: usize,
    /// How the few-labels part fine-tunes.
    pub finetune: FinetuneSettings,
}

/// One pretraining run of a study.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// For people, e.g. "fixed random target (τ = 1)".
    pub name: String,
    /// Its run folder's name under `rows/`.
    pub folder: String,
    /// Its settings.
    pub config: TrainConfig,
}

/// The folder name of the BYOL row (the learning curve and few labels).
pub const BYOL_ROW: &str = "byol";

impl StudyPlan {
    /// Errors for settings a study cannot run: invalid training settings,
    /// no draws, or a K of 0.
    pub fn validate(&self) -> Result<()> {
        self.base.validate()?;
        check_few_labels(&self.labels_per_class, self.draws)?;
        let f = &self.finetune;
        FinetuneConfig {
            epochs: f.epochs,
            batch_size: f.batch_size,
            lr: f.lr,
            ..FinetuneConfig::default()
        }
        .validate()
    }

    /// The pretraining rows: BYOL first, then (with the ablation) a fixed
    /// random target, the other τ_base of [`ABLATION_TAUS`], the online
    /// network as its own target and no predictor, each the BYOL row with
    /// one change. Every row checkpoints each epoch (a study resumes at an
    /// epoch at worst), keeps its newest checkpoint only, and is scored
    /// after every epoch (the BYOL row's scores are the learning curve).
    pub fn rows(&self) -> Vec<Row> {
        let base = TrainConfig {
            checkpoint_every: 1,
            keep_last: 1,
            knn_every: 1,
            ..self.base.clone()
        };
        let tau = base.tau;
        let row = |name: String, folder: String, change: &dyn Fn(&mut TrainConfig)| {
            let mut config = base.clone();
            change(&mut config);
            Row {
                name,
                folder,
                config,
            }
        };
        let mut rows = vec![row(
            format!("BYOL (tau_base {tau})"),
            BYOL_ROW.into(),
            &|_| {},
        )];
        if !self.ablation {
            return rows;
        }
        rows.push(row(
            "fixed random target (tau = 1)".into(),
            "tau-1".into(),
            &|c| c.tau = 1.0,
        ));
        for t in ABLATION_TAUS.into_iter().filter(|&t| t != tau) {
            rows.push(row(format!("tau_base {t}"), format!("tau-{t}"), &|c| {
                c.tau = t
            }));
        }
        rows.push(row(
            "online network as target (tau = 0)".into(),
            "tau-0".into(),
            &|c| c.tau = 0.0,
        ));
        rows.push(row("no predictor".into(), "no-predictor".into(), &|c| {
            c.predictor = false
        }));
        // A change that changes nothing (the BYOL row already has tau 1,
        // tau 0 or no predictor) is not trained twice.
        let first = rows.remove(0);
        let others: Vec<Row> = rows
            .into_iter()
            .filter(|r| r.config != first.config)
            .collect();
        std::iter::once(first).chain(others).collect()
    }

    /// The keys of the measurements made with the BYOL row's final encoder:
    /// the learning curve's last cell and all the few-labels cells. When
    /// every one of them is stored, the BYOL row need not be trained or even
    /// kept (its run folder may be gone, e.g. a study carried to another
    /// machine as `study.json` and `cells/`). An earlier curve cell removed
    /// since is not remade then: retraining the row for it would take the
    /// whole budget and mix two runs in one curve; the report shows it as
    /// missing.
    pub fn byol_row_keys(&self) -> Vec<String> {
        let mut keys = vec![curve_key(self.base.epochs)];
        for &k in &self.labels_per_class {
            for draw in 0..self.draws {
                for method in FewLabelMethod::ALL {
                    keys.push(few_key(k, method, draw));
                }
            }
        }
        keys
    }

    /// Errors unless `recorded` (a study folder's `study.json`) is this
    /// plan, naming the first setting that differs: a study continues only
    /// with the settings it started with.
    pub fn check_same(&self, recorded: &StudyPlan, folder: &Path) -> Result<()> {
        let (given, was) = (to_map(self)?, to_map(recorded)?);
        let mut keys: Vec<&String> = given.keys().chain(was.keys()).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            if given.get(key) != was.get(key) {
                let show = |v: Option<&serde_json::Value>| {
                    v.map(|v| v.to_string()).unwrap_or_else(|| "absent".into())
                };
                return Err(ByolError::Config(format!(
                    "{} holds a study with other settings ({key}: {} there, {} here); give the \
                     same settings to continue it, or another folder for a new study",
                    plan_path(folder).display(),
                    show(was.get(key)),
                    show(given.get(key)),
                )));
            }
        }
        Ok(())
    }
}

/// A plan as a flat map of `part.setting` names to values, to compare two.
fn to_map(plan: &StudyPlan) -> Result<serde_json::Map<String, serde_json::Value>> {
    let value = serde_json::to_value(plan)
        .map_err(|e| ByolError::Config(format!("the study's plan: {e}")))?;
    let mut flat = serde_json::Map::new();
    flatten("", &value, &mut flat);
    Ok(flat)
}

fn flatten(
    prefix: &str,
    value: &serde_json::Value,
    out: &mut serde_json::Map<String, serde_json::Value>,
) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// The plan file of a study folder.
pub fn plan_path(study: &Path) -> PathBuf {
    study.join("study.json")
}

/// The run folder of a row.
pub fn row_path(study: &Path, row: &Row) -> PathBuf {
    study.join("rows").join(&row.folder)
}

/// Reads a study folder's plan, `None` when it has none yet.
pub fn read_plan(study: &Path) -> Result<Option<StudyPlan>> {
    let path = plan_path(study);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            ByolError::Config(format!(
                "{}: not a study plan ({e}); give another folder for a new study",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ByolError::Io { path, source }),
    }
}

/// Writes a study folder's plan (atomically).
pub fn write_plan(study: &Path, plan: &StudyPlan) -> Result<()> {
    let text = serde_json::to_string_pretty(plan)
        .map_err(|e| ByolError::Config(format!("the study's plan: {e}")))?;
    files::write_atomically(&plan_path(study), (text + "\n").as_bytes())?;
    Ok(())
}

/// The measured cells of a study: one JSON file per key under `cells/`,
/// each written whole or not at all.
#[derive(Clone, Debug)]
pub struct Cells {
    dir: PathBuf,
}

impl Cells {
    /// The cells of the study folder `study` (the folder `cells/` is
    /// created when missing).
    pub fn open(study: &Path) -> Result<Cells> {
        let dir = study.join("cells");
        std::fs::create_dir_all(&dir).map_err(|source| ByolError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Cells { dir })
    }

    /// The file of `key` (a name of letters, digits, `-` and `_`).
    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The value stored under `key`, `None` when not measured yet. A file
    /// that does not read as `T` is an error naming it (remove it to
    /// measure again).
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let path = self.path(key);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
                ByolError::Config(format!(
                    "{}: not a measurement of this study ({e}); remove it and run the study \
                     again to measure it again (a learning-curve cell of an epoch already \
                     trained past cannot be remade: its checkpoint is gone)",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ByolError::Io { path, source }),
        }
    }

    /// Whether `key` has a stored value.
    pub fn has(&self, key: &str) -> bool {
        self.path(key).is_file()
    }

    /// Whether every one of `keys` has a stored value.
    pub fn has_all(&self, keys: &[String]) -> bool {
        keys.iter().all(|k| self.has(k))
    }

    /// Stores `value` under `key`, replacing any earlier value.
    pub fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| ByolError::Config(format!("cell {key}: {e}")))?;
        files::write_atomically(&self.path(key), (text + "\n").as_bytes())?;
        Ok(())
    }

    /// The value under `key`, measured by `measure` (and stored) only when
    /// there is none.
    pub fn get_or<T: Serialize + DeserializeOwned>(
        &self,
        key: &str,
        measure: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        if let Some(v) = self.get(key)? {
            return Ok(v);
        }
        let v = measure()?;
        self.put(key, &v)?;
        Ok(v)
    }
}

/// The key of the learning curve's cell after `epoch` epochs (0: the
/// random initialisation).
pub fn curve_key(epoch: usize) -> String {
    format!("curve-epoch-{epoch:04}")
}

/// The key of an ablation row's final scores.
pub fn final_key(row: &Row) -> String {
    format!("final-{}", row.folder)
}

/// The key of a finished row's epoch records (loss, collapse signal,
/// speed, kNN of each epoch), kept among the cells so the report needs no
/// run folder.
pub fn epochs_key(row: &Row) -> String {
    format!("epochs-{}", row.folder)
}

/// Errors for a few-labels request that cannot run: a K of 0, or no
/// draws when there is any K (an empty `labels_per_class` asks for
/// nothing and passes).
pub fn check_few_labels(labels_per_class: &[usize], draws: usize) -> Result<()> {
    if !labels_per_class.is_empty() && draws == 0 {
        return Err(ByolError::Config(
            "0 draws: the few-labels part needs at least one draw of the labelled images".into(),
        ));
    }
    if labels_per_class.contains(&0) {
        return Err(ByolError::Config(
            "0 labels per class: every K must be at least 1".into(),
        ));
    }
    Ok(())
}

/// The key of raw pixels' scores.
pub const PIXELS_KEY: &str = "pixels";

/// A representation's two scores as a study reports them, in `[0, 1]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeScores {
    /// kNN top-1 (k = 200, cosine, T = 0.1).
    pub knn: f32,
    /// Logistic-regression probe top-1 ([`LogisticConfig::default`]).
    pub logistic: f32,
    /// Whether L-BFGS reached its tolerance.
    pub logistic_converged: bool,
}

/// Both scores of given train and test features of `splits`.
pub fn probe_scores(
    splits: &LabelledSplits,
    f_train: &Tensor,
    f_test: &Tensor,
) -> Result<ProbeScores> {
    let knn = splits.knn_of(
        f_train,
        f_test,
        crate::eval::knn::DEFAULT_K,
        crate::eval::knn::DEFAULT_TEMPERATURE,
    )?;
    let fit = splits.logistic_of(f_train, f_test, &LogisticConfig::default())?;
    Ok(ProbeScores {
        knn,
        logistic: fit.test_accuracy,
        logistic_converged: fit.converged,
    })
}

/// The four ways the few-labels part classifies with K labels per class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FewLabelMethod {
    /// Logistic regression on the frozen BYOL features.
    ByolLogistic,
    /// The BYOL encoder and a linear head fine-tuned on the labels.
    ByolFinetuned,
    /// The same ResNet from random weights, trained on the labels (same
    /// augmentations): the supervised baseline.
    Scratch,
    /// Logistic regression on the normalised pixels.
    PixelsLogistic,
}

impl FewLabelMethod {
    /// All four, in the report's order.
    pub const ALL: [FewLabelMethod; 4] = [
        FewLabelMethod::ByolLogistic,
        FewLabelMethod::ByolFinetuned,
        FewLabelMethod::Scratch,
        FewLabelMethod::PixelsLogistic,
    ];

    /// The name in keys and files.
    pub fn key(self) -> &'static str {
        match self {
            FewLabelMethod::ByolLogistic => "byol-logistic",
            FewLabelMethod::ByolFinetuned => "byol-finetuned",
            FewLabelMethod::Scratch => "scratch",
            FewLabelMethod::PixelsLogistic => "pixels-logistic",
        }
    }

    /// For people.
    pub fn describe(self) -> &'static str {
        match self {
            FewLabelMethod::ByolLogistic => "logistic regression on BYOL features",
            FewLabelMethod::ByolFinetuned => "BYOL encoder fine-tuned",
            FewLabelMethod::Scratch => "same ResNet from scratch",
            FewLabelMethod::PixelsLogistic => "logistic regression on raw pixels",
        }
    }
}

/// The key of one few-labels cell: K, method, draw (from 0).
pub fn few_key(per_class: usize, method: FewLabelMethod, draw: usize) -> String {
    format!("few-k{per_class:04}-{}-draw-{draw:02}", method.key())
}

/// The seed of draw `draw` of the labelled images: the BYOL row's seed
/// plus the draw, the same for every method and K (so the methods of a
/// draw see the same labelled images at each K).
pub fn draw_seed(plan: &StudyPlan, draw: usize) -> u64 {
    plan.base.seed + draw as u64
}

/// What the few-labels part needs of one representation: the train and
/// test features, computed once.
pub struct FeaturePair<'a> {
    /// Features of the whole train split, `[N, F]`.
    pub train: &'a Tensor,
    /// Features of the test split.
    pub test: &'a Tensor,
}

/// One few-labels measurement: the test accuracy of `method` fitted on
/// `per_class` labelled train images of each class, drawn with `seed`
/// (the same seed draws the same images for every method; it also seeds
/// the fine-tuning and the from-scratch weights). `features` are the BYOL
/// encoder's or the pixels' (for the two logistic methods); `encoder` the
/// BYOL encoder (fine-tuned, or its architecture from scratch, on a copy)
/// with `finetuning`'s settings. A study passes its plan's settings and
/// [`draw_seed`]; `byol demo` the defaults.
pub fn few_label_accuracy(
    finetuning: &FinetuneSettings,
    seed: u64,
    splits: &LabelledSplits,
    method: FewLabelMethod,
    per_class: usize,
    features: Option<FeaturePair<'_>>,
    encoder: &ResNet,
) -> Result<f32> {
    let labels = dataset_labels(&splits.train, "train")?;
    match method {
        FewLabelMethod::ByolLogistic | FewLabelMethod::PixelsLogistic => {
            let Some(f) = features else {
                return Err(ByolError::Input(format!(
                    "{}: the features to fit on were not given",
                    method.describe()
                )));
            };
            let chosen = balanced_draw(labels, splits.classes, per_class, seed)?;
            let few = splits.with_train(&chosen)?;
            let fit =
                few.logistic_of(&rows(f.train, &chosen)?, f.test, &LogisticConfig::default())?;
            Ok(fit.test_accuracy)
        }
        FewLabelMethod::ByolFinetuned | FewLabelMethod::Scratch => {
            let fresh;
            let start = if method == FewLabelMethod::Scratch {
                fresh = ResNet::new(encoder.config(), seed, &encoder_device(encoder));
                &fresh
            } else {
                encoder
            };
            let config = FinetuneConfig {
                fraction: per_class_fraction(labels, splits.classes, per_class)?,
                epochs: finetuning.epochs,
                batch_size: finetuning.batch_size,
                lr: finetuning.lr,
                seed,
                ..FinetuneConfig::default()
            };
            let r = finetune(
                start,
                &splits.train,
                &splits.test,
                &splits.norm,
                splits.classes,
                &config,
            )?;
            Ok(r.test_accuracy)
        }
    }
}

/// The device an encoder's weights live on (the CPU for one without
/// weights).
fn encoder_device(encoder: &ResNet) -> tensor::Device {
    use models::Module;
    encoder
        .parameters()
        .first()
        .map_or(tensor::Device::Cpu, |p| p.value().device())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> StudyPlan {
        StudyPlan {
            base: TrainConfig::default(),
            data: DataSource::default(),
            ablation: true,
            labels_per_class: vec![1, 10],
            draws: 3,
            finetune: FinetuneSettings::default(),
        }
    }

    #[test]
    fn the_rows_are_the_papers_table_5a_each_one_change_from_byol() {
        let p = plan();
        let rows = p.rows();
        let folders: Vec<&str> = rows.iter().map(|r| r.folder.as_str()).collect();
        // The default tau_base is 0.9: the BYOL row is that one.
        assert_eq!(
            folders,
            [
                "byol",
                "tau-1",
                "tau-0.99",
                "tau-0.996",
                "tau-0",
                "no-predictor"
            ]
        );
        let byol = &rows[0].config;
        assert_eq!(
            (byol.checkpoint_every, byol.keep_last, byol.knn_every),
            (1, 1, 1)
        );
        assert_eq!(rows[1].config.tau, 1.0);
        assert_eq!(rows[4].config.tau, 0.0);
        assert!(!rows[5].config.predictor && rows[5].config.tau == byol.tau);
        for r in &rows[1..] {
            let mut back = r.config.clone();
            back.tau = byol.tau;
            back.predictor = true;
            assert_eq!(&back, byol, "{} changes more than one thing", r.name);
        }
        // Another tau_base puts 0.99 among the ablation rows.
        let other = StudyPlan {
            base: TrainConfig {
                tau: 0.996,
                ..TrainConfig::default()
            },
            ..plan()
        };
        let f: Vec<String> = other.rows().into_iter().map(|r| r.folder).collect();
        assert!(f.contains(&"tau-0.99".to_string()) && !f.contains(&"tau-0.996".to_string()));
        // A BYOL row without predictor has no "no predictor" row.
        let bare = StudyPlan {
            base: TrainConfig {
                predictor: false,
                ..TrainConfig::default()
            },
            ..plan()
        };
        let f: Vec<String> = bare.rows().into_iter().map(|r| r.folder).collect();
        assert!(
            !f.contains(&"no-predictor".to_string()) && f.len() == 5,
            "{f:?}"
        );
        // Without the ablation: BYOL alone.
        let alone = StudyPlan {
            ablation: false,
            ..plan()
        };
        assert_eq!(alone.rows().len(), 1);
    }

    #[test]
    fn a_study_continues_only_with_its_own_settings() {
        let dir = std::env::temp_dir().join(format!("byol-study-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(read_plan(&dir).unwrap(), None);
        let p = plan();
        write_plan(&dir, &p).unwrap();
        let back = read_plan(&dir).unwrap().unwrap();
        assert_eq!(back, p);
        p.check_same(&back, &dir).unwrap();
        let mut changed = plan();
        changed.base.epochs = 7;
        let e = changed.check_same(&back, &dir).unwrap_err().to_string();
        assert!(
            e.contains("base.epochs") && e.contains("20 there, 7 here"),
            "{e}"
        );
        let fewer = StudyPlan { draws: 2, ..plan() };
        let e = fewer.check_same(&back, &dir).unwrap_err().to_string();
        assert!(e.contains("draws: 3 there, 2 here"), "{e}");
        std::fs::write(plan_path(&dir), "{}").unwrap();
        let e = read_plan(&dir).unwrap_err().to_string();
        assert!(
            e.contains("study.json") && e.contains("not a study plan"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cells_are_measured_once_and_bad_ones_named() {
        let dir = std::env::temp_dir().join(format!("byol-study-cells-{}", std::process::id()));
        let cells = Cells::open(&dir).unwrap();
        let mut calls = 0;
        let mut measure = || {
            calls += 1;
            Ok(ProbeScores {
                knn: 0.5,
                logistic: 0.75,
                logistic_converged: true,
            })
        };
        let a = cells.get_or(PIXELS_KEY, &mut measure).unwrap();
        let b = cells.get_or(PIXELS_KEY, &mut measure).unwrap();
        assert_eq!((a, calls), (b, 1));
        assert_eq!(cells.get::<ProbeScores>("absent").unwrap(), None);
        std::fs::write(dir.join("cells").join("broken.json"), "{\"knn\": ").unwrap();
        let e = cells.get::<ProbeScores>("broken").unwrap_err().to_string();
        assert!(e.contains("broken.json") && e.contains("remove it"), "{e}");
        assert_eq!(
            few_key(10, FewLabelMethod::Scratch, 2),
            "few-k0010-scratch-draw-02"
        );
        assert_eq!(curve_key(3), "curve-epoch-0003");
        let row = &plan().rows()[1];
        assert_eq!(epochs_key(row), format!("epochs-{}", row.folder));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_byol_row_is_needed_until_its_curve_and_few_labels_are_all_measured() {
        let dir = std::env::temp_dir().join(format!("byol-study-needed-{}", std::process::id()));
        let p = plan();
        let keys = p.byol_row_keys();
        let few = p.labels_per_class.len() * p.draws * FewLabelMethod::ALL.len();
        assert_eq!(keys.len(), 1 + few);
        assert!(keys.contains(&curve_key(p.base.epochs)));
        assert!(!keys.contains(&curve_key(0)), "epoch 0 needs no training");
        assert!(!keys.contains(&curve_key(1)), "only the last epoch's cell");
        let cells = Cells::open(&dir).unwrap();
        for key in &keys[..keys.len() - 1] {
            cells.put(key, &0.5f32).unwrap();
        }
        assert!(!cells.has_all(&keys), "one cell is still missing");
        cells.put(keys.last().unwrap(), &0.5f32).unwrap();
        assert!(cells.has_all(&keys));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_plans_are_refused_with_the_reason() {
        let no_draws = StudyPlan { draws: 0, ..plan() };
        assert!(no_draws
            .validate()
            .unwrap_err()
            .to_string()
            .contains("0 draws"));
        let zero_k = StudyPlan {
            labels_per_class: vec![0],
            ..plan()
        };
        assert!(zero_k
            .validate()
            .unwrap_err()
            .to_string()
            .contains("0 labels per class"));
        plan().validate().unwrap();
    }
}
