//! Weights files: safetensors with torchvision's parameter names.
//!
//! A file written here loads into torchvision's ResNet with
//! `model.load_state_dict(safetensors.torch.load_file(path), strict=False)`
//! (strict fails only on the `fc` layer an encoder does not have), and a
//! torchvision state dict saved with `safetensors.torch.save_file` loads
//! here. Every tensor is `f32` except `*.num_batches_tracked`, which
//! PyTorch keeps as a 64-bit integer and which is written as one.
//!
//! Loading checks the file against the module, name by name: keys the
//! module needs and the file lacks (*missing*), keys the file has and the
//! module does not (*unexpected*), and tensors whose shape differs. Any of
//! them is an error naming the file and the keys, unless the caller asks
//! for a partial load, in which case the tensors that match are loaded and
//! the rest reported. Files are written through the workspace's atomic
//! writer (the `files` crate), so a crash never leaves a half-written file
//! where a good one was.

use crate::Module;
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use tensor::{Device, Tensor};

/// Why a weights file could not be read, written or applied.
#[derive(Debug)]
pub enum WeightsError {
    /// The file could not be written (the message names it).
    Write(files::WriteError),
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not valid safetensors, or holds a tensor of a type we
    /// cannot read.
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The file's tensors do not match the module's.
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What is wrong, key by key.
        report: LoadReport,
    },
}

impl fmt::Display for WeightsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeightsError::Write(e) => write!(f, "{e}"),
            WeightsError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            WeightsError::Format { path, message } => {
                write!(
                    f,
                    "{}: not a usable safetensors weights file: {message}",
                    path.display()
                )
            }
            WeightsError::Mismatch { path, report } => write!(
                f,
                "{}: the weights do not fit this model ({}); its architecture, width, stem and \
                 input channels must be those of the model that wrote the file",
                path.display(),
                report.problems()
            ),
        }
    }
}

impl std::error::Error for WeightsError {}

/// What a load found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Tensors loaded.
    pub loaded: usize,
    /// Keys the module needs that the file lacks.
    pub missing: Vec<String>,
    /// Keys in the file the module does not have.
    pub unexpected: Vec<String>,
    /// Keys present in both with different shapes: (key, file shape,
    /// module shape).
    pub mismatched: Vec<(String, Vec<usize>, Vec<usize>)>,
}

impl LoadReport {
    /// Whether everything matched.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }

    /// A one-line description of what did not match.
    pub fn problems(&self) -> String {
        let list = |v: &[String]| {
            let shown: Vec<&str> = v.iter().take(5).map(String::as_str).collect();
            let more = if v.len() > 5 {
                format!(" and {} more", v.len() - 5)
            } else {
                String::new()
            };
            format!("{}{more}", shown.join(", "))
        };
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!("missing: {}", list(&self.missing)));
        }
        if !self.unexpected.is_empty() {
            parts.push(format!("unexpected: {}", list(&self.unexpected)));
        }
        for (k, file, model) in self.mismatched.iter().take(5) {
            parts.push(format!(
                "{k} has shape {file:?} in the file, {model:?} in the model"
            ));
        }
        parts.join("; ")
    }
}

/// Whether a load must match exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadMode {
    /// Every key present, none extra, every shape right; otherwise an error.
    Strict,
    /// Load what matches and report the rest.
    Partial,
}

/// The PyTorch integer buffer among our `f32` ones.
fn is_counter(name: &str) -> bool {
    name.ends_with("num_batches_tracked")
}

/// Reads every tensor of a safetensors file onto the CPU, by name.
/// `f32` tensors are read as they are; integer step counters (`i64`) are
/// converted.
pub fn read(path: &Path) -> Result<BTreeMap<String, Tensor>, WeightsError> {
    let bytes = std::fs::read(path).map_err(|source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let format = |message: String| WeightsError::Format {
        path: path.to_path_buf(),
        message,
    };
    let st = SafeTensors::deserialize(&bytes).map_err(|e| format(e.to_string()))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::I64 if is_counter(&name) => view
                .data()
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect(),
            other => {
                return Err(format(format!(
                    "tensor {name} is {other:?}; only float32 is supported (convert with \
                     tensor.float() in PyTorch before saving)"
                )))
            }
        };
        out.insert(name, Tensor::from_vec(data, view.shape(), &Device::Cpu));
    }
    Ok(out)
}

/// Writes named tensors as a safetensors file, complete or not at all
/// (through the workspace's one atomic writer, the `files` crate: a
/// temporary file in the same folder, synced, renamed into place).
pub fn write(path: &Path, tensors: &[(String, Tensor)]) -> Result<(), WeightsError> {
    // Never a file of weights that cannot be used.
    if let Some((name, _)) = tensors.iter().find(|(_, t)| !all_finite(t)) {
        return Err(WeightsError::Format {
            path: path.to_path_buf(),
            message: format!("{name} holds a NaN or infinite value; the file was not written"),
        });
    }
    let bytes: Vec<(String, Vec<u8>, Vec<usize>, Dtype)> = tensors
        .iter()
        .map(|(name, t)| {
            let v = t.to_vec();
            if is_counter(name) {
                let b = v.iter().flat_map(|&x| (x as i64).to_le_bytes()).collect();
                (name.clone(), b, t.shape().to_vec(), Dtype::I64)
            } else {
                let b = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                (name.clone(), b, t.shape().to_vec(), Dtype::F32)
            }
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(name, b, shape, dtype)| {
            let view = safetensors::tensor::TensorView::new(*dtype, shape.clone(), b)
                .expect("sizes match by construction");
            (name.clone(), view)
        })
        .collect();
    let encoded = safetensors::serialize(views, None).map_err(|e| WeightsError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    files::write_atomically(path, &encoded).map_err(WeightsError::Write)
}

/// Whether every value of `t` is finite.
fn all_finite(t: &Tensor) -> bool {
    t.to_vec().iter().all(|x| x.is_finite())
}

/// Saves a module's parameters and buffers under their names.
pub fn save(module: &dyn Module, path: &Path) -> Result<(), WeightsError> {
    let named: Vec<(String, Tensor)> = module
        .state()
        .iter()
        .map(|p| (p.name().to_string(), p.value()))
        .collect();
    write(path, &named)
}

/// Applies named tensors to a module: the tensor `prefix + name` to each
/// of its parameters and buffers (moved to the parameter's device).
/// `source` names where the tensors came from, for the error.
pub fn apply(
    module: &dyn Module,
    tensors: &BTreeMap<String, Tensor>,
    prefix: &str,
    mode: LoadMode,
    source: &Path,
) -> Result<LoadReport, WeightsError> {
    let mut report = LoadReport::default();
    let state = module.state();
    let mut wanted = std::collections::BTreeSet::new();
    let mut updates = Vec::new();
    for p in &state {
        let key = format!("{prefix}{}", p.name());
        wanted.insert(key.clone());
        match tensors.get(&key) {
            // torchvision always writes the counter; other sources may not.
            None if is_counter(&key) => {}
            None => report.missing.push(key),
            Some(t) if t.shape() != p.shape().as_slice() => {
                report.mismatched.push((key, t.shape().to_vec(), p.shape()))
            }
            Some(t) => updates.push((p, t)),
        }
    }
    report.unexpected = tensors
        .keys()
        .filter(|k| k.starts_with(prefix) && !wanted.contains(*k))
        .cloned()
        .collect();
    if mode == LoadMode::Strict && !report.is_clean() {
        return Err(WeightsError::Mismatch {
            path: source.to_path_buf(),
            report,
        });
    }
    // A NaN or an infinity is never loaded into a network: it would make
    // every output NaN, far from where it came from.
    if let Some((p, _)) = updates.iter().find(|(_, t)| !all_finite(t)) {
        return Err(WeightsError::Format {
            path: source.to_path_buf(),
            message: format!("{prefix}{} holds a NaN or infinite value", p.name()),
        });
    }
    for (p, t) in updates {
        p.set_value(t.to_device(&p.value().device()));
        report.loaded += 1;
    }
    Ok(report)
}

/// Reads a safetensors file into a module (see [`apply`]).
pub fn load(module: &dyn Module, path: &Path, mode: LoadMode) -> Result<LoadReport, WeightsError> {
    apply(module, &read(path)?, "", mode, path)
}
