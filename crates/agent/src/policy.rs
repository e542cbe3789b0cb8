//! Where checkpoint images go and which old ones are removed.
//!
//! An image is named `<name>-<lineage>-<seq>.crac`:
//! - `<name>`: the program's name (its file name, at most 32 bytes, characters other than
//!   letters, digits, `_`, `.` and `+` replaced by `_`), for people;
//! - `<lineage>`: the pid `crac_launch` ran the program as. A restarted process keeps the lineage
//!   of the image it was restarted from (`crac_restart` calls [`continue_lineage`]), so every
//!   image of one computation, across any number of restarts, shares it;
//! - `<seq>`: 1, 2, 3, … (at least four digits) over the lineage: one more than the largest
//!   sequence number of the lineage already in the directory (or the image restarted from), so a
//!   restart from an older image never overwrites a newer one.
//!
//! `--keep N` ([`rotate`]) runs after a good image and removes the lineage's older images in
//! that directory (and its `.crac.tmp` files left by a write that was killed), keeping the `N`
//! with the largest sequence numbers. Other files, and other lineages' images, are never
//! touched. Two different launches that got the same pid (years apart, pid reuse) and write to
//! the same directory would share a lineage; give each job its own `--dir` where that matters.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file name suffix of an image.
pub const IMAGE_SUFFIX: &str = ".crac";
/// Suffix of an image being written.
pub const TMP_SUFFIX: &str = ".crac.tmp";

/// Why an image name could not be chosen or old images could not be removed.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The checkpoint directory cannot be read.
    #[error(
        "cannot read the checkpoint directory {dir}: {source}; check that it exists and is writable"
    )]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The directory is not absolute.
    #[error("checkpoint directory {dir} is not an absolute path")]
    RelativeDir {
        /// The directory.
        dir: PathBuf,
    },
    /// An old image could not be removed.
    #[error("cannot remove the old image {path}: {source}")]
    Remove {
        /// The image.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// The images of one computation: its name and the pid it was launched as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lineage {
    /// The program's name, already made safe for a file name.
    pub name: String,
    /// The launch pid.
    pub id: u32,
    /// The largest sequence number known to be taken (0 when none).
    pub last_seq: u32,
}

/// A parsed image file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageName {
    /// `<name>`.
    pub name: String,
    /// `<lineage>`.
    pub id: u32,
    /// `<seq>`.
    pub seq: u32,
}

static LINEAGE: Mutex<Option<Lineage>> = Mutex::new(None);

/// `s` as a file-name-safe program name.
pub fn safe_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+') {
                c
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    if out.is_empty() || out.starts_with('.') {
        out.insert(0, 'p');
    }
    out
}

/// `<name>-<id>-<seq>.crac`.
pub fn image_file_name(name: &str, id: u32, seq: u32) -> String {
    format!("{name}-{id}-{seq:04}{IMAGE_SUFFIX}")
}

/// Parses a file name written by [`image_file_name`] (with `suffix`, [`IMAGE_SUFFIX`] or
/// [`TMP_SUFFIX`]).
pub fn parse_image_name(file_name: &str, suffix: &str) -> Option<ImageName> {
    let stem = file_name.strip_suffix(suffix)?;
    let mut parts = stem.rsplitn(3, '-');
    let seq = parts.next()?.parse().ok()?;
    let id = parts.next()?.parse().ok()?;
    let name = parts.next().filter(|n| !n.is_empty())?.to_owned();
    Some(ImageName { name, id, seq })
}

/// Starts this process's lineage as a launch: `program`'s name, this pid.
pub fn start_lineage(program: &str, pid: u32) {
    let name = Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .map_or_else(|| safe_name(program), safe_name);
    *lock() = Some(Lineage {
        name,
        id: pid,
        last_seq: 0,
    });
}

/// Continues the lineage of the image at `image` (called by `crac_restart` before it restores):
/// later images of this process get its name and lineage, and sequence numbers above its own.
/// An image whose file name is not crac's scheme starts a new lineage named `fallback_name`
/// with this pid.
pub fn continue_lineage(image: &Path, fallback_name: &str, pid: u32) {
    let parsed = image
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| parse_image_name(n, IMAGE_SUFFIX));
    *lock() = Some(match parsed {
        Some(p) => Lineage {
            name: p.name,
            id: p.id,
            last_seq: p.seq,
        },
        None => Lineage {
            name: safe_name(fallback_name),
            id: pid,
            last_seq: 0,
        },
    });
}

/// This process's lineage (a new one named after `/proc/self/comm` if none was started).
pub fn lineage() -> Lineage {
    let mut l = lock();
    l.get_or_insert_with(|| {
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap_or_default();
        Lineage {
            name: safe_name(comm.trim_end()),
            id: std::process::id(),
            last_seq: 0,
        }
    })
    .clone()
}

/// The path of the next image in `dir` (absolute): the lineage's next sequence number, above
/// every image or temporary file of the lineage already in `dir`.
pub fn next_image_path(dir: &Path) -> Result<PathBuf, PolicyError> {
    if !dir.is_absolute() {
        return Err(PolicyError::RelativeDir {
            dir: dir.to_owned(),
        });
    }
    let l = lineage();
    let taken = lineage_files(dir, l.id)?
        .iter()
        .map(|(n, _, _)| n.seq)
        .max()
        .unwrap_or(0);
    let seq = taken.max(l.last_seq).saturating_add(1);
    if let Some(cur) = lock().as_mut() {
        cur.last_seq = seq;
    }
    Ok(dir.join(image_file_name(&l.name, l.id, seq)))
}

/// The lineage `id`'s files in `dir`: `(name, path, is_tmp)`.
fn lineage_files(dir: &Path, id: u32) -> Result<Vec<(ImageName, PathBuf, bool)>, PolicyError> {
    let read_err = |source| PolicyError::ReadDir {
        dir: dir.to_owned(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let Some(file) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let parsed = parse_image_name(&file, IMAGE_SUFFIX)
            .map(|n| (n, false))
            .or_else(|| parse_image_name(&file, TMP_SUFFIX).map(|n| (n, true)));
        if let Some((n, tmp)) = parsed.filter(|(n, _)| n.id == id) {
            out.push((n, entry.path(), tmp));
        }
    }
    Ok(out)
}

/// After a good image `written` in `dir`: removes the lineage's images there except the
/// `keep` newest (by sequence number), and its temporary files older than `written`. Returns
/// what it removed.
pub fn rotate(dir: &Path, written: &Path, keep: u32) -> Result<Vec<PathBuf>, PolicyError> {
    let Some(current) = written
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| parse_image_name(n, IMAGE_SUFFIX))
    else {
        return Ok(Vec::new());
    };
    let mut files = lineage_files(dir, current.id)?;
    files.sort_by_key(|(n, _, _)| std::cmp::Reverse(n.seq));
    let mut kept = 0u32;
    let mut removed = Vec::new();
    for (name, path, tmp) in files {
        let remove = if tmp {
            name.seq < current.seq
        } else if name.seq > current.seq || path == written {
            false
        } else {
            // The written image is one of the `keep`.
            kept += 1;
            kept >= keep.max(1)
        };
        if path == written {
            continue;
        }
        if remove {
            match std::fs::remove_file(&path) {
                Ok(()) => removed.push(path),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(PolicyError::Remove { path, source }),
            }
        }
    }
    Ok(removed)
}

fn lock() -> std::sync::MutexGuard<'static, Option<Lineage>> {
    LINEAGE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_safe() {
        let n = image_file_name(&safe_name("my-app v2"), 4242, 7);
        assert_eq!(n, "my_app_v2-4242-0007.crac");
        assert_eq!(
            parse_image_name(&n, IMAGE_SUFFIX),
            Some(ImageName {
                name: "my_app_v2".into(),
                id: 4242,
                seq: 7
            })
        );
        assert_eq!(
            parse_image_name("a-b-1-12345.crac", IMAGE_SUFFIX)
                .unwrap()
                .seq,
            12345
        );
        assert_eq!(
            parse_image_name("x-1-2.crac.tmp", TMP_SUFFIX).unwrap().id,
            1
        );
        for bad in [
            "x.crac",
            "-1-2.crac",
            "a-b-c.crac",
            "a-1-2.img",
            "a-1-x.crac",
        ] {
            assert_eq!(parse_image_name(bad, IMAGE_SUFFIX), None, "{bad}");
        }
        assert_eq!(safe_name(""), "p");
        assert_eq!(safe_name(".hidden"), "p.hidden");
        assert_eq!(safe_name(&"z".repeat(99)).len(), 32);
    }

    #[test]
    fn rotation_keeps_the_newest_of_the_lineage_only() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let touch = |n: &str| std::fs::write(d.join(n), b"x").unwrap();
        for s in 1..=5 {
            touch(&image_file_name("app", 10, s));
        }
        touch("app-10-0002.crac.tmp");
        touch("app-10-0009.crac.tmp");
        touch("app-11-0001.crac");
        touch("notes.txt");
        let written = d.join(image_file_name("app", 10, 5));
        let removed = rotate(d, &written, 2).unwrap();
        assert_eq!(removed.len(), 4, "{removed:?}");
        let mut left: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "app-10-0004.crac",
                "app-10-0005.crac",
                "app-10-0009.crac.tmp",
                "app-11-0001.crac",
                "notes.txt"
            ]
        );
        assert!(matches!(
            next_image_path(Path::new("rel")),
            Err(PolicyError::RelativeDir { .. })
        ));
    }

    #[test]
    fn the_next_sequence_is_above_everything_of_the_lineage() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("old-77-0012.crac"), b"x").unwrap();
        continue_lineage(&d.join("old-77-0003.crac"), "unused", 5);
        let p = next_image_path(d).unwrap();
        assert_eq!(p, d.join("old-77-0013.crac"));
        let p = next_image_path(d).unwrap();
        assert_eq!(p, d.join("old-77-0014.crac"));
        continue_lineage(Path::new("/x/renamed.crac"), "py thon", 9);
        assert_eq!(
            lineage(),
            Lineage {
                name: "py_thon".into(),
                id: 9,
                last_seq: 0
            }
        );
    }
}
