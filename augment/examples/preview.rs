//! Writes a preview grid of the BYOL views of a few Fashion-MNIST images (or
//! of the images of a folder) to a PNG file.
//!
//! ```text
//! cargo run -p augment --example preview -- views.png            # Fashion-MNIST
//! cargo run -p augment --example preview -- views.png some/folder # any images, as 64x64 RGB
//! ```

use std::path::PathBuf;

use augment::{
    load_fashion_mnist, read_image_folder, write_preview, FolderOptions, Normalization,
    PreviewOptions, Split, TwoViewConfig,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().unwrap_or_else(|| "views.png".to_string()));
    let (ds, cfg, scale) = match args.next() {
        Some(folder) => {
            let opts = FolderOptions {
                channels: 3,
                height: 64,
                width: 64,
            };
            let read = read_image_folder(folder.as_ref(), &opts)?;
            println!("{}", read.report);
            let norm = Normalization::from_dataset(&read.dataset);
            (read.dataset, TwoViewConfig::byol(norm), 2)
        }
        None => {
            let (ds, source) = load_fashion_mnist(None, Split::Test)?;
            println!("using {source}");
            (ds, TwoViewConfig::byol(Normalization::fashion_mnist()), 3)
        }
    };
    let opts = PreviewOptions {
        indices: (0..ds.len().min(6)).collect(),
        draws: 4,
        run_seed: 0,
        scale,
    };
    write_preview(&ds, &cfg, &opts, &out)?;
    println!("wrote {}", out.display());
    Ok(())
}
