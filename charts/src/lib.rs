//! # charts: PNG charts without heavy dependencies or system fonts
//!
//! The pictures a training run leaves for people: the loss curve, the kNN
//! accuracy per epoch, the collapse signal, the ablation's bars and the
//! PCA scatter of embeddings. Nothing here knows about BYOL or tensors: a
//! chart takes plain `(x, y)` points or bar heights and returns a
//! [`Canvas`] of RGB pixels, saved as PNG through the workspace's one
//! atomic writer (the `files` crate). The only dependency beyond it is the
//! `image` crate's PNG encoder, already in the build for reading data sets.
//!
//! The pieces, from the bottom up:
//!
//! - [`font`]: a built-in 5 x 7 pixel font for printable ASCII.
//! - [`canvas`]: [`Canvas`], an RGB pixel grid with lines, rectangles,
//!   discs and text, saved as PNG with [`Canvas::save_png`].
//! - [`charts`]: [`line_chart`], [`bar_chart`] and [`scatter_panels`], each
//!   returning a finished [`Canvas`].
//!
//! (The 2-D projection a scatter plot of embeddings needs is an analysis of
//! the embeddings, so it lives with the other analyses, in `byol::eval::pca`.)
//!
//! ```
//! use charts::{line_chart, Series, PALETTE};
//!
//! let chart = line_chart("loss", "step", "loss", &[Series {
//!     name: "loss".into(),
//!     points: vec![(0.0, 1.0), (1.0, 0.6), (2.0, 0.4)],
//!     color: PALETTE[0],
//! }]);
//! assert_eq!((chart.width, chart.height), (800, 500));
//! let png = chart.png_bytes().unwrap();
//! assert_eq!(&png[1..4], b"PNG");
//! ```

#![warn(missing_docs)]

pub mod canvas;
pub mod charts;
pub mod font;

pub use canvas::Canvas;
pub use charts::{bar_chart, line_chart, scatter_panels, BarSeries, ScatterPanel, Series};

/// Ten distinct colours for classes and series, in the spirit of the
/// common "tab10" palette: blue, orange, green, red, purple, brown, pink,
/// grey, olive, cyan.
pub const PALETTE: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];
