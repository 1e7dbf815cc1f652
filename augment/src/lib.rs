//! # augment: images in (placeholder: issue 5)
//!
//! Dataset readers and the BYOL two-view augmentations. Being filled by
//! issue 5.
