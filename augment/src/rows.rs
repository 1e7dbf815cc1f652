//! The list of a data set's rows as CSV: which file each row came from,
//! with its label, so that features written row by row (`byol embed`) can
//! be joined back to the files in a spreadsheet, pandas or a shell.
//!
//! ```text
//! row,path,label,class
//! 0,photos/cats/a.jpg,0,cats
//! 1,"photos/dogs/b, c.jpg",1,dogs
//! ```
//!
//! Fields holding a comma, a quote or a line break are quoted, quotes
//! doubled (RFC 4180); `label` and `class` are empty for unlabelled rows.

use std::path::PathBuf;

/// One CSV field, quoted when it must be.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The CSV of `paths` (one per row, in order) with their `labels` and
/// the class `names` the labels number, when known.
pub fn rows_csv(paths: &[PathBuf], labels: Option<&[u32]>, names: Option<&[String]>) -> String {
    let mut out = String::from("row,path,label,class\n");
    for (row, path) in paths.iter().enumerate() {
        let label = labels.and_then(|l| l.get(row));
        let class = label.and_then(|&l| names.and_then(|n| n.get(l as usize)));
        out.push_str(&format!(
            "{row},{},{},{}\n",
            field(&path.to_string_lossy()),
            label.map(|l| l.to_string()).unwrap_or_default(),
            class.map(|c| field(c)).unwrap_or_default(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Dataset;

    #[test]
    fn rows_name_their_files_and_labels_and_odd_names_are_quoted() {
        let data = Dataset::new(vec![0; 3], 1, 1, 1, Some(vec![1, 0, 1]))
            .unwrap()
            .with_class_names(vec!["cats".into(), "dogs, big".into()]);
        let paths: Vec<PathBuf> = ["p/a.jpg", "p/say \"hi\".png", "p/b,c.jpg"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(
            rows_csv(&paths, data.labels(), data.class_names()),
            "row,path,label,class\n\
             0,p/a.jpg,1,\"dogs, big\"\n\
             1,\"p/say \"\"hi\"\".png\",0,cats\n\
             2,\"p/b,c.jpg\",1,\"dogs, big\"\n"
        );
        let unlabelled = Dataset::new(vec![0; 1], 1, 1, 1, None).unwrap();
        assert_eq!(
            rows_csv(&paths[..1], unlabelled.labels(), None),
            "row,path,label,class\n0,p/a.jpg,,\n"
        );
    }
}
