//! Finding and opening images for `crac_restart` and `crac inspect`: an `IMAGE|DIR` argument
//! becomes one image whose header and metadata check out.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crac_agent::policy::{IMAGE_SUFFIX, parse_image_name};
use crac_core::image::{ImageError, ImageMeta, ImageReader};

/// Why no image could be used.
#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    /// The path cannot be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a good image.
    #[error("{path} cannot be used: {source}")]
    Bad {
        /// The image.
        path: PathBuf,
        /// What the reader found wrong.
        source: ImageError,
    },
    /// The directory holds no image at all.
    #[error("{dir} holds no checkpoint image (*{IMAGE_SUFFIX})")]
    Empty {
        /// The directory.
        dir: PathBuf,
    },
    /// Every image of the directory was refused.
    #[error("no image in {dir} can be restarted:{}", list(.refused))]
    NoneGood {
        /// The directory.
        dir: PathBuf,
        /// Each image and why it was refused.
        refused: Vec<(PathBuf, String)>,
    },
}

fn list(refused: &[(PathBuf, String)]) -> String {
    refused
        .iter()
        .map(|(p, why)| format!("\n  {}: {why}", p.display()))
        .collect()
}

/// Opens `path` and reads its header and metadata.
pub fn open(path: &Path) -> Result<ImageReader<BufReader<File>>, ImagesError> {
    let file = File::open(path).map_err(|source| ImagesError::Open {
        path: path.to_owned(),
        source,
    })?;
    ImageReader::open(BufReader::new(file)).map_err(|source| ImagesError::Bad {
        path: path.to_owned(),
        source,
    })
}

/// The image `crac_restart IMAGE|DIR` uses.
#[derive(Debug)]
pub struct Chosen {
    /// Its path.
    pub path: PathBuf,
    /// The program's name in it.
    pub comm: String,
    /// Newer images of the directory that were passed over, and why.
    pub skipped: Vec<(PathBuf, String)>,
    /// Whether it was picked from a directory.
    pub from_dir: bool,
}

/// Resolves `IMAGE|DIR`: a file must be a good image; a directory gives its newest image whose
/// header and metadata check out and whose build-id is `build_id` (when known). "Newest" is the
/// creation time in the header, then the sequence number in crac's file names, then the file's
/// modification time.
pub fn choose(path: &Path, build_id: Option<&str>) -> Result<Chosen, ImagesError> {
    let meta = std::fs::metadata(path).map_err(|source| ImagesError::Open {
        path: path.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        let reader = open(path)?;
        return Ok(Chosen {
            path: path.to_owned(),
            comm: reader.meta().process.comm.clone(),
            skipped: Vec::new(),
            from_dir: false,
        });
    }
    let entries = std::fs::read_dir(path).map_err(|source| ImagesError::Open {
        path: path.to_owned(),
        source,
    })?;
    let mut candidates: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(IMAGE_SUFFIX))
                && p.is_file()
        })
        .collect();
    if candidates.is_empty() {
        return Err(ImagesError::Empty {
            dir: path.to_owned(),
        });
    }
    candidates.sort();
    let mut good: Vec<(Key, PathBuf, String)> = Vec::new();
    let mut refused = Vec::new();
    for p in candidates {
        match open(&p) {
            Ok(reader) => {
                let m: &ImageMeta = reader.meta();
                match build_id {
                    Some(ours) if !m.header.build_id.is_empty() && m.header.build_id != ours => {
                        refused.push((
                            p,
                            format!(
                                "written by another crac build ({}; this is {ours})",
                                m.header.build_id
                            ),
                        ));
                    }
                    _ => good.push((key(&p, m), p, m.process.comm.clone())),
                }
            }
            Err(ImagesError::Bad { source, .. }) => refused.push((p, source.to_string())),
            Err(e) => refused.push((p, e.to_string())),
        }
    }
    let Some(best) = good.iter().map(|(k, _, _)| *k).max() else {
        return Err(ImagesError::NoneGood {
            dir: path.to_owned(),
            refused,
        });
    };
    let (_, chosen, comm) = good
        .into_iter()
        .find(|(k, _, _)| *k == best)
        .ok_or_else(|| ImagesError::Empty {
            dir: path.to_owned(),
        })?;
    // Only images that would have been newer are worth mentioning.
    let skipped = refused
        .into_iter()
        .filter(|(p, _)| mtime(p) >= mtime(&chosen))
        .collect();
    Ok(Chosen {
        path: chosen,
        comm,
        skipped,
        from_dir: true,
    })
}

/// `(created, seq, mtime)`: what "newest" compares.
type Key = (u64, u32, i128);

fn key(p: &Path, m: &ImageMeta) -> Key {
    let seq = p
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| parse_image_name(n, IMAGE_SUFFIX))
        .map_or(0, |n| n.seq);
    (m.header.created_unix, seq, mtime(p))
}

fn mtime(p: &Path) -> i128 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p)
        .map(|m| i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crac_core::image::ImageWriter;

    fn write(dir: &Path, name: &str, created: u64, build: &str) -> PathBuf {
        let path = dir.join(name);
        let mut meta = ImageMeta::default();
        meta.header.created_unix = created;
        meta.header.build_id = build.into();
        meta.process.comm = "app".into();
        let file = File::create(&path).unwrap();
        ImageWriter::new(file).unwrap().finish(&meta).unwrap();
        path
    }

    #[test]
    fn a_directory_gives_its_newest_good_image_of_this_build() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(d, "app-1-0001.crac", 100, "ours");
        let want = write(d, "app-1-0002.crac", 200, "ours");
        write(d, "app-1-0003.crac", 200, "theirs");
        std::fs::write(d.join("app-1-0004.crac"), b"garbage").unwrap();
        std::fs::write(d.join("app-1-0005.crac.tmp"), b"half").unwrap();
        std::fs::write(d.join("notes.txt"), b"x").unwrap();
        let c = choose(d, Some("ours")).unwrap();
        assert_eq!(c.path, want);
        assert_eq!(c.comm, "app");
        assert!(c.from_dir);
        let skipped: Vec<String> = c
            .skipped
            .iter()
            .map(|(p, why)| format!("{}: {why}", p.file_name().unwrap().to_string_lossy()))
            .collect();
        assert!(
            skipped
                .iter()
                .any(|s| s.starts_with("app-1-0003.crac: written by another crac build")),
            "{skipped:?}"
        );
        assert!(
            skipped.iter().any(|s| s.starts_with("app-1-0004.crac: ")),
            "{skipped:?}"
        );
        // Equal creation times are told apart by the sequence number.
        let later = write(d, "app-1-0006.crac", 200, "ours");
        assert_eq!(choose(d, Some("ours")).unwrap().path, later);
        // Without a build-id to compare, every well-formed image counts.
        assert!(choose(d, None).is_ok());
    }

    #[test]
    fn a_file_must_be_an_image_and_a_directory_must_hold_one() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let img = write(d, "x.crac", 1, "b");
        let c = choose(&img, Some("other")).unwrap();
        assert!(
            !c.from_dir,
            "a file is used as given; the restorer checks its build"
        );
        let e = choose(&d.join("missing"), None).unwrap_err();
        assert!(matches!(e, ImagesError::Open { .. }), "{e}");
        let empty = tempfile::tempdir().unwrap();
        let e = choose(empty.path(), None).unwrap_err();
        assert!(e.to_string().contains("holds no checkpoint image"), "{e}");
        std::fs::write(empty.path().join("bad.crac"), b"no").unwrap();
        let e = choose(empty.path(), None).unwrap_err();
        assert!(
            e.to_string().contains("no image in") && e.to_string().contains("bad.crac"),
            "{e}"
        );
    }
}
