//! Folders of images larger than memory: an index of the files, and the
//! two BYOL views cut from each image's original pixels as it is needed.
//!
//! **The index** ([`FolderIndex::scan`]) lists the image files (sorted, by
//! class for a labelled folder, exactly as [`crate::folder`] reads them)
//! and reads each file's header alone, in parallel, for its size as it is
//! meant to be seen (after the EXIF orientation of a phone photo). A file
//! whose header cannot be read is left out, counted and named; a folder
//! where most fail is an error. Memory: a path and a few numbers per image.
//!
//! **The views** ([`StreamedFolder`], a [`ViewSource`]): each image of a
//! batch is decoded in full (upright, 8-bit, converted to the run's
//! channels) by one of rayon's workers, both views are cut from it, and it
//! is dropped. So the paper's crop is taken from the original pixels (a box
//! of 8-100% of a 4000x3000 photo, then resized to the view size with the
//! filter of [`crate::views::crop`], which averages when it shrinks), not
//! from a thumbnail; and memory holds the images being worked on, not the
//! data set. The draws follow the same rule as in memory
//! ([`crate::pipeline::draw_for`], seeded by run seed, epoch and index), so
//! a folder of images already at the view size gives exactly the views the
//! in-memory data set gives.
//!
//! **A file that fails mid-run** (it was truncated, or its body is corrupt
//! behind a good header) does not stop the run: its place in the batch is
//! taken by the next image of the index that decodes (the views are still
//! drawn with the failed image's seed, so the batch stays reproducible), and
//! the file is counted and named in [`ViewSource::problems`]. When more than
//! half of the images have failed, the views are an error naming them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::dataset::{Dataset, Fnv, Shape};
use crate::error::{DataError, Result};
use crate::folder::{
    check_folder, decode_file, fit, list_images, oriented_size, to_chw, FolderOptions,
    FolderReport, NAMED_FAILURES,
};
use crate::images::ViewSource;
use crate::pipeline::{draw_for, Batch, View};
use crate::views::normalize::Normalization;
use crate::views::{apply_view, TwoViewConfig, ViewScratch};

/// One image of a [`FolderIndex`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// The file, relative to the folder.
    pub path: PathBuf,
    /// Its class, in a labelled folder.
    pub label: Option<u32>,
    /// Width in pixels, upright.
    pub width: u32,
    /// Height in pixels, upright.
    pub height: u32,
    /// Size of the file in bytes.
    pub bytes: u64,
}

/// The images of a folder, without their pixels.
#[derive(Clone, Debug)]
pub struct FolderIndex {
    /// The folder.
    pub root: PathBuf,
    /// The images, in the order the folder readers use.
    pub entries: Vec<IndexEntry>,
    /// For a labelled folder: the class names (label `k` is `names[k]`).
    pub class_names: Option<Vec<String>>,
    /// Files left out (unreadable headers) or ignored (not images).
    pub report: FolderReport,
}

impl FolderIndex {
    /// Indexes the images below `root`: by class (`root/<class>/<image>`)
    /// when `labelled`, else every image, recursively. Errors when there is
    /// none, or when most image files cannot be read.
    pub fn scan(root: &Path, labelled: bool) -> Result<FolderIndex> {
        let list = list_images(root, labelled)?;
        if list.files.is_empty() {
            return Err(DataError::EmptyFolder {
                path: root.to_path_buf(),
            });
        }
        let headers: Vec<std::result::Result<(u32, u32, u64), String>> = list
            .files
            .par_iter()
            .map(|f| {
                let bytes = std::fs::metadata(f).map_err(|e| e.to_string())?.len();
                let (w, h) = oriented_size(f)?;
                Ok((w, h, bytes))
            })
            .collect();
        let mut entries = Vec::with_capacity(headers.len());
        let mut report = FolderReport {
            ignored_files: list.ignored,
            ..FolderReport::default()
        };
        for (i, header) in headers.into_iter().enumerate() {
            let path = relative(&list.files[i], root);
            match header {
                Ok((width, height, bytes)) => {
                    entries.push(IndexEntry {
                        path,
                        label: list.labels.as_ref().map(|l| l[i]),
                        width,
                        height,
                        bytes,
                    });
                    report.decoded += 1;
                }
                Err(reason) => {
                    report.skipped += 1;
                    if report.first_skipped.len() < NAMED_FAILURES {
                        report
                            .first_skipped
                            .push(format!("{}: {reason}", path.display()));
                    }
                }
            }
        }
        if report.skipped > report.decoded {
            return Err(DataError::NothingDecoded {
                path: root.to_path_buf(),
                failed: report.skipped,
                first_failures: report.first_skipped,
            });
        }
        Ok(FolderIndex {
            root: root.to_path_buf(),
            entries,
            class_names: list.class_names,
            report,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the index holds no image.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The labels, one per image, in a labelled folder.
    pub fn labels(&self) -> Option<Vec<u32>> {
        self.entries.iter().map(|e| e.label).collect()
    }

    /// The first `n` images only.
    pub fn truncate(&mut self, n: usize) {
        self.entries.truncate(n);
    }

    /// A fingerprint of the index: the paths, labels, sizes and file
    /// lengths of the images (FNV-1a, 64 bits). Unlike
    /// [`Dataset::fingerprint`] it reads no pixel, so a file changed in
    /// place with the same size and length goes unnoticed.
    pub fn fingerprint(&self) -> String {
        let mut h = Fnv::new();
        h.eat(&(self.entries.len() as u64).to_le_bytes());
        for e in &self.entries {
            h.eat(e.path.to_string_lossy().as_bytes());
            h.eat(&[0]);
            h.eat(&e.label.map_or(u64::MAX, u64::from).to_le_bytes());
            h.eat(&e.width.to_le_bytes());
            h.eat(&e.height.to_le_bytes());
            h.eat(&e.bytes.to_le_bytes());
        }
        h.hex()
    }
}

/// `path` relative to `root` (itself when it is not below it).
fn relative(path: &Path, root: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}

/// `n` indices spread evenly over `0..len` (all of them when `len <= n`):
/// the samples taken for statistics and for a kNN monitor.
pub(crate) fn spread(len: usize, n: usize) -> Vec<usize> {
    if n >= len {
        (0..len).collect()
    } else {
        (0..n).map(|k| k * len / n).collect()
    }
}

/// How many later images are tried in place of one that fails to decode.
const SUBSTITUTES: usize = 16;

/// A folder of images read as they are needed (see the module doc): the
/// [`ViewSource`] for photo collections larger than memory.
#[derive(Debug)]
pub struct StreamedFolder {
    index: FolderIndex,
    channels: usize,
    size: usize,
    /// Images that failed to decode mid-run: index -> reason.
    failed: Mutex<BTreeMap<usize, String>>,
}

impl StreamedFolder {
    /// Streams the images of `index`, as `channels` (1 or 3) channels, with
    /// views of `size x size` pixels.
    pub fn new(index: FolderIndex, channels: usize, size: usize) -> Result<StreamedFolder> {
        check_folder(
            &index.root,
            &FolderOptions {
                channels,
                height: size,
                width: size,
            },
        )?;
        Ok(StreamedFolder {
            index,
            channels,
            size,
            failed: Mutex::new(BTreeMap::new()),
        })
    }

    /// The index.
    pub fn index(&self) -> &FolderIndex {
        &self.index
    }

    /// Image `i` decoded in full, upright, as CHW bytes of this folder's
    /// channels, with its shape.
    pub fn decode(&self, i: usize) -> std::result::Result<(Vec<u8>, Shape), String> {
        let path = self.index.root.join(&self.index.entries[i].path);
        let rgb = decode_file(&path)?;
        let shape = Shape {
            channels: self.channels,
            height: rgb.height() as usize,
            width: rgb.width() as usize,
        };
        Ok((to_chw(&rgb, self.channels), shape))
    }

    /// Image `i`, or, when it fails, the next image that decodes (the
    /// failure recorded); an error when most images have failed.
    fn decode_or_next(&self, i: usize) -> Result<(Vec<u8>, Shape)> {
        let n = self.index.len();
        for k in 0..=SUBSTITUTES.min(n - 1) {
            let at = (i + k) % n;
            match self.decode(at) {
                Ok(image) => return Ok(image),
                Err(reason) => {
                    let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
                    failed.insert(at, reason);
                    if failed.len() * 2 > n {
                        return Err(self.most_failed(&failed));
                    }
                }
            }
        }
        let failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        Err(self.most_failed(&failed))
    }

    /// The error for a folder whose images mostly fail.
    fn most_failed(&self, failed: &BTreeMap<usize, String>) -> DataError {
        DataError::NothingDecoded {
            path: self.index.root.clone(),
            failed: failed.len(),
            first_failures: self.named(failed),
        }
    }

    /// The first few failures as `path: reason`.
    fn named(&self, failed: &BTreeMap<usize, String>) -> Vec<String> {
        failed
            .iter()
            .take(NAMED_FAILURES)
            .map(|(&i, why)| format!("{}: {why}", self.index.entries[i].path.display()))
            .collect()
    }

    /// `n` indices spread evenly over the folder (all of them when it has
    /// fewer).
    fn spread(&self, n: usize) -> Vec<usize> {
        spread(self.index.len(), n)
    }

    /// Image `i` fitted to the view size (the largest centred square,
    /// resized), as CHW bytes, or why it did not decode.
    fn fitted(&self, i: usize) -> std::result::Result<Vec<u8>, String> {
        let path = self.index.root.join(&self.index.entries[i].path);
        let rgb = decode_file(&path)?;
        let side = self.size as u32;
        Ok(to_chw(&fit(&rgb, side, side), self.channels))
    }

    /// The per-channel mean and standard deviation of about `n` images
    /// spread evenly over the folder, fitted to the view size: the same
    /// numbers as [`Normalization::from_dataset`] of [`Self::sample`], but
    /// decoded 64 at a time, so the memory does not grow with `n`.
    pub fn statistics(&self, n: usize) -> Result<Normalization> {
        let picks = self.spread(n);
        let plane = self.size * self.size;
        let decoded = std::cell::Cell::new(0usize);
        let planes = picks.chunks(64).flat_map(|chunk| {
            let images: Vec<Vec<u8>> = chunk
                .par_iter()
                .filter_map(|&i| self.fitted(i).ok())
                .collect();
            decoded.set(decoded.get() + images.len());
            images.into_iter().flat_map(move |image| {
                image
                    .chunks_exact(plane)
                    .map(|p| p.iter().map(|&v| v as f64 / 255.0).collect::<Vec<f64>>())
                    .collect::<Vec<_>>()
            })
        });
        let norm = Normalization::from_planes(self.channels, planes.map(Vec::into_iter));
        if decoded.get() == 0 {
            return Err(DataError::NothingDecoded {
                path: self.index.root.clone(),
                failed: picks.len(),
                first_failures: Vec::new(),
            });
        }
        Ok(norm)
    }

    /// The images at `indices`, each fitted to the view size (the largest
    /// centred square, resized: for a square output, torchvision's
    /// evaluation transform of a shorter-side resize and a centre crop),
    /// as NCHW values in `[0, 1]`, for embedding a folder too large to hold.
    /// An image that fails to decode is left out and recorded (see
    /// [`ViewSource::problems`]); the second value lists the indices kept,
    /// in order.
    pub fn fitted_batch(&self, indices: &[usize]) -> (Vec<f32>, Vec<usize>) {
        let decoded: Vec<Option<Vec<u8>>> = indices
            .par_iter()
            .map(|&i| match self.fitted(i) {
                Ok(image) => Some(image),
                Err(reason) => {
                    let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
                    failed.insert(i, reason);
                    None
                }
            })
            .collect();
        let mut values = Vec::new();
        let mut kept = Vec::new();
        for (&i, image) in indices.iter().zip(decoded) {
            if let Some(image) = image {
                values.extend(image.iter().map(|&v| v as f32 / 255.0));
                kept.push(i);
            }
        }
        (values, kept)
    }

    /// About `n` images spread evenly over the folder, each fitted to the
    /// view size: in memory, for a kNN monitor. Images that fail are left
    /// out. Labelled when the folder is.
    pub fn sample(&self, n: usize) -> Result<Dataset> {
        let picks = self.spread(n);
        let decoded: Vec<Option<Vec<u8>>> =
            picks.par_iter().map(|&i| self.fitted(i).ok()).collect();
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        for (&i, image) in picks.iter().zip(decoded) {
            if let Some(image) = image {
                pixels.extend_from_slice(&image);
                labels.extend(self.index.entries[i].label);
            }
        }
        if pixels.is_empty() {
            return Err(DataError::NothingDecoded {
                path: self.index.root.clone(),
                failed: picks.len(),
                first_failures: Vec::new(),
            });
        }
        let labelled = self.index.class_names.is_some();
        let ds = Dataset::new(
            pixels,
            self.channels,
            self.size,
            self.size,
            labelled.then_some(labels),
        )?;
        Ok(match &self.index.class_names {
            Some(names) => ds.with_class_names(names.clone()),
            None => ds,
        })
    }
}

impl ViewSource for StreamedFolder {
    fn len(&self) -> usize {
        self.index.len()
    }

    fn channels(&self) -> usize {
        self.channels
    }

    fn view_size(&self) -> (usize, usize) {
        (self.size, self.size)
    }

    fn two_views(
        &self,
        indices: &[usize],
        epoch: u64,
        run_seed: u64,
        cfg: &TwoViewConfig,
    ) -> Result<(Batch, Batch)> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(DataError::invalid(
                format!("image index {bad} in a folder of {} images", self.len()),
                "use indices below the folder's len()",
            ));
        }
        cfg.check(self.channels)?;
        let mut cfg = cfg.clone();
        let (height, width) = *cfg.output_size.get_or_insert((self.size, self.size));
        let output = Shape {
            channels: self.channels,
            height,
            width,
        };
        let shape = [indices.len(), self.channels, height, width];
        let mut view1 = Batch::zeros(shape);
        let mut view2 = Batch::zeros(shape);
        let len = output.len();
        let cfg = &cfg;
        view1
            .data
            .par_chunks_mut(len)
            .zip(view2.data.par_chunks_mut(len))
            .zip(indices.par_iter())
            .try_for_each_init(ViewScratch::default, |scratch, ((out1, out2), &i)| {
                let (pixels, input) = self.decode_or_next(i)?;
                for (view, out) in [(View::One, out1), (View::Two, out2)] {
                    let draw = draw_for(cfg, input, i, run_seed, epoch, view);
                    apply_view(&pixels, input, &draw, out, output, scratch);
                    cfg.normalization.apply(out, output.plane());
                }
                Ok::<(), DataError>(())
            })?;
        Ok((view1, view2))
    }

    fn fingerprint(&self) -> String {
        self.index.fingerprint()
    }

    fn problems(&self) -> Option<String> {
        let failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        (!failed.is_empty()).then(|| {
            format!(
                "{} of {} images could not be decoded (first: {})",
                failed.len(),
                self.len(),
                self.named(&failed).join("; ")
            )
        })
    }
}
