//! PNG charts without heavy dependencies or system fonts.
//!
//! The pieces, from the bottom up:
//!
//! - [`font`]: a built-in 5 x 7 pixel font for printable ASCII.
//! - [`canvas`]: [`Canvas`], an RGB pixel grid with lines, rectangles,
//!   discs and text, saved as PNG with [`Canvas::save_png`].
//! - [`charts`]: [`line_chart`], [`bar_chart`] and [`scatter_panels`], each
//!   returning a finished [`Canvas`].
//! - [`pca`]: [`pca_2d`], which turns high-dimensional features into 2-D
//!   points for [`scatter_panels`].
//!
//! ```ignore
//! let chart = line_chart("loss", "step", "loss", &[Series {
//!     name: "loss".into(),
//!     points: vec![(0.0, 1.0), (1.0, 0.6), (2.0, 0.4)],
//!     color: PALETTE[0],
//! }]);
//! chart.save_png(Path::new("loss.png"))?;
//! ```

pub mod canvas;
pub mod charts;
pub mod font;
pub mod pca;

pub use canvas::Canvas;
pub use charts::{bar_chart, line_chart, scatter_panels, BarSeries, ScatterPanel, Series};
pub use pca::pca_2d;

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
