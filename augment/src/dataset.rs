//! [`Dataset`]: the images and labels every reader returns.
//!
//! The images are kept as they come in the files, one byte per value
//! (0 = black, 255 = white), because all three formats read here (IDX,
//! CIFAR binary, decoded PNG/JPEG) store bytes, and a byte is a quarter of
//! an `f32`: the 60,000 Fashion-MNIST training images take 47 MB, not 188.
//! The conversion to `f32` in `[0, 1]` happens image by image when a batch is
//! built (see [`crate::pipeline`]).
//!
//! Layout: image after image, each one **CHW** (channel planes, then rows,
//! then columns), the layout of the batches handed to the network. Value
//! `(n, c, y, x)` is at `((n * C + c) * H + y) * W + x`. For one-channel
//! images CHW and HWC are the same thing; CIFAR files store CHW already;
//! the folder reader reorders the HWC pixels of decoded images.

use crate::error::{DataError, Result};

/// FNV-1a, 64 bits: the hash of the data fingerprints (not cryptographic;
/// enough to tell one set of images from another by mistake).
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) fn new() -> Fnv {
        Fnv(0xCBF2_9CE4_8422_2325)
    }

    /// Folds `bytes` into the hash.
    pub(crate) fn eat(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3);
        }
    }

    /// The hash as 16 hex digits.
    pub(crate) fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// Which part of a data set: the training images or the held-out test
/// images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training set (Fashion-MNIST: 60,000 images; embedded subset: 6,000).
    Train,
    /// The test set (Fashion-MNIST: 10,000 images; embedded subset: 1,000).
    Test,
}

/// The shape of an image: channels, height, width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Channels: 1 or 3.
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
}

impl Shape {
    /// Values per channel: `height * width`.
    pub fn plane(&self) -> usize {
        self.height * self.width
    }

    /// Values in all: `channels * height * width`.
    pub fn len(&self) -> usize {
        self.channels * self.plane()
    }

    /// Whether the shape holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A set of same-sized images, with labels when the source has them.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pixels: Vec<u8>,
    channels: usize,
    height: usize,
    width: usize,
    labels: Option<Vec<u32>>,
    class_names: Option<Vec<String>>,
}

impl Dataset {
    /// A data set from its pixels (N images of `channels x height x width`
    /// bytes, CHW, one after another) and optional labels (one per image).
    ///
    /// Errors if `channels` is not 1 or 3, a size is zero, the pixel count is
    /// not a whole number of images, or the label count differs from the
    /// image count.
    pub fn new(
        pixels: Vec<u8>,
        channels: usize,
        height: usize,
        width: usize,
        labels: Option<Vec<u32>>,
    ) -> Result<Self> {
        if channels != 1 && channels != 3 {
            return Err(DataError::invalid(
                format!("a data set with {channels} channels"),
                "images must have 1 channel (gray) or 3 (RGB)",
            ));
        }
        if height == 0 || width == 0 {
            return Err(DataError::invalid(
                format!("images of size {height}x{width}"),
                "give a height and width of at least 1",
            ));
        }
        let image_len = channels * height * width;
        if !pixels.len().is_multiple_of(image_len) {
            return Err(DataError::invalid(
                format!(
                    "{} bytes of pixels is not a whole number of {channels}x{height}x{width} images",
                    pixels.len()
                ),
                "pass N * channels * height * width bytes",
            ));
        }
        let n = pixels.len() / image_len;
        if let Some(l) = &labels {
            if l.len() != n {
                return Err(DataError::invalid(
                    format!("{n} images but {} labels", l.len()),
                    "pass one label per image",
                ));
            }
        }
        Ok(Dataset {
            pixels,
            channels,
            height,
            width,
            labels,
            class_names: None,
        })
    }

    /// The same data set with `labels`, one per image. Errors if the counts
    /// differ.
    pub fn with_labels(mut self, labels: Vec<u32>) -> Result<Self> {
        if labels.len() != self.len() {
            return Err(DataError::invalid(
                format!("{} images but {} labels", self.len(), labels.len()),
                "pass one label per image",
            ));
        }
        self.labels = Some(labels);
        Ok(self)
    }

    /// The same data set with names for its classes (label `k` is
    /// `names[k]`), e.g. the sub-folder names of an image folder.
    pub fn with_class_names(mut self, names: Vec<String>) -> Self {
        self.class_names = Some(names);
        self
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.pixels.len() / self.image_len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }

    /// Channels per image: 1 (gray) or 3 (RGB).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Image height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Image width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The shape of every image.
    pub fn shape(&self) -> Shape {
        Shape {
            channels: self.channels,
            height: self.height,
            width: self.width,
        }
    }

    /// Bytes per image: `channels * height * width`.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// All pixels, image after image, each CHW.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// A fingerprint of the images and labels: 16 hex digits that change
    /// when any pixel, label or size changes (FNV-1a, 64 bits, over the
    /// sizes, the pixels and the labels). A run records it, so that it is
    /// never resumed on other images by mistake. Not a cryptographic hash.
    pub fn fingerprint(&self) -> String {
        let mut h = Fnv::new();
        for size in [self.len(), self.channels, self.height, self.width] {
            h.eat(&(size as u64).to_le_bytes());
        }
        h.eat(&self.pixels);
        if let Some(labels) = &self.labels {
            for l in labels {
                h.eat(&l.to_le_bytes());
            }
        }
        h.hex()
    }

    /// The pixels of image `i` (CHW), or `None` past the end.
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        let len = self.image_len();
        self.pixels.get(i * len..(i + 1) * len)
    }

    /// The labels, if the source has them.
    pub fn labels(&self) -> Option<&[u32]> {
        self.labels.as_deref()
    }

    /// The labels of the images at `indices`, in that order (`None` if the
    /// set is unlabelled or an index is past the end).
    pub fn labels_for(&self, indices: &[usize]) -> Option<Vec<u32>> {
        let labels = self.labels.as_ref()?;
        indices.iter().map(|&i| labels.get(i).copied()).collect()
    }

    /// The class names, if known.
    pub fn class_names(&self) -> Option<&[String]> {
        self.class_names.as_deref()
    }

    /// Number of classes: the number of class names if known, else one more
    /// than the largest label, else 0 for an unlabelled set.
    pub fn num_classes(&self) -> usize {
        if let Some(names) = &self.class_names {
            return names.len();
        }
        match &self.labels {
            Some(l) => l.iter().max().map_or(0, |&m| m as usize + 1),
            None => 0,
        }
    }

    /// How many images each class has (`counts[k]` for label `k`); empty for
    /// an unlabelled set.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes()];
        for &l in self.labels.iter().flatten() {
            // A label beyond the class names (names set by hand) still counts.
            if l as usize >= counts.len() {
                counts.resize(l as usize + 1, 0);
            }
            counts[l as usize] += 1;
        }
        counts
    }

    /// A new data set holding the images (and labels) at `indices`, in that
    /// order. Errors if an index is past the end.
    pub fn subset(&self, indices: &[usize]) -> Result<Dataset> {
        let mut pixels = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            let image = self.image(i).ok_or_else(|| self.index_error(i))?;
            pixels.extend_from_slice(image);
        }
        let labels = match &self.labels {
            Some(_) => Some(self.labels_for(indices).ok_or_else(|| {
                DataError::invalid("an index past the end", "use indices below len()")
            })?),
            None => None,
        };
        Ok(Dataset {
            pixels,
            channels: self.channels,
            height: self.height,
            width: self.width,
            labels,
            class_names: self.class_names.clone(),
        })
    }

    /// The error for an index past the end.
    pub(crate) fn index_error(&self, i: usize) -> DataError {
        DataError::invalid(
            format!("image index {i} in a data set of {} images", self.len()),
            "use indices below the data set's len()",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_rgb_images() -> Dataset {
        // Image 0 is all 1s, image 1 all 2s; 3 channels of 2x2.
        let mut pixels = vec![1u8; 12];
        pixels.extend(vec![2u8; 12]);
        Dataset::new(pixels, 3, 2, 2, Some(vec![4, 1])).unwrap()
    }

    #[test]
    fn sizes_and_images() {
        let ds = two_rgb_images();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds.image_len(), 12);
        assert_eq!(ds.image(1).unwrap(), &[2u8; 12][..]);
        assert!(ds.image(2).is_none());
        assert_eq!(ds.num_classes(), 5);
        assert_eq!(ds.class_counts(), vec![0, 1, 0, 0, 1]);
    }

    #[test]
    fn subset_keeps_the_order_given() {
        let ds = two_rgb_images();
        let s = ds.subset(&[1, 0, 1]).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s.labels().unwrap(), &[1, 4, 1]);
        assert_eq!(s.image(0).unwrap()[0], 2);
        assert!(ds.subset(&[2]).is_err());
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(Dataset::new(vec![0; 8], 2, 2, 2, None).is_err());
        assert!(Dataset::new(vec![0; 7], 1, 2, 2, None).is_err());
        assert!(Dataset::new(vec![0; 8], 1, 2, 2, Some(vec![0])).is_err());
        assert!(Dataset::new(vec![0; 8], 1, 0, 2, None).is_err());
    }

    #[test]
    fn the_fingerprint_changes_with_any_pixel_or_label() {
        let ds = Dataset::new(vec![1, 2, 3, 4, 5, 6, 7, 8], 1, 2, 2, Some(vec![0, 1])).unwrap();
        let same = Dataset::new(vec![1, 2, 3, 4, 5, 6, 7, 8], 1, 2, 2, Some(vec![0, 1])).unwrap();
        assert_eq!(ds.fingerprint(), same.fingerprint());
        assert_eq!(ds.fingerprint().len(), 16);
        let pixel = Dataset::new(vec![1, 2, 3, 4, 5, 6, 7, 9], 1, 2, 2, Some(vec![0, 1])).unwrap();
        let label = Dataset::new(vec![1, 2, 3, 4, 5, 6, 7, 8], 1, 2, 2, Some(vec![1, 1])).unwrap();
        let shape = Dataset::new(vec![1, 2, 3, 4, 5, 6, 7, 8], 1, 1, 4, Some(vec![0, 1])).unwrap();
        for other in [pixel, label, shape] {
            assert_ne!(ds.fingerprint(), other.fingerprint());
        }
    }
}
