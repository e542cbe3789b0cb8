//! Finding the built `crac` binary and giving it the names its argv[0] dispatch answers to.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::{Error, Result, io_err};

/// The underscore names of `crac`, linked to the binary in [`Tools::dir`].
#[derive(Debug)]
pub struct Tools {
    /// The directory holding the links.
    pub dir: PathBuf,
    /// `crac_launch`.
    pub launch: PathBuf,
    /// `crac_ckpt`.
    pub ckpt: PathBuf,
    /// `crac_restart`.
    pub restart: PathBuf,
}

/// The target directory's profile folder (`<target>/debug`) the tests were built into.
///
/// `$CARGO_TARGET_DIR/<profile>` when that variable is set, else derived from the test
/// executable, which cargo places at `<target>/<profile>/deps/<name>-<hash>`.
pub fn profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(io_err("locating", "the test executable"))?;
    let derived = exe
        .parent()
        .filter(|deps| deps.file_name().is_some_and(|n| n == "deps"))
        .and_then(Path::parent);
    let profile = derived
        .and_then(Path::file_name)
        .map_or_else(|| "debug".into(), ToOwned::to_owned);
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR").filter(|t| !t.is_empty()) {
        return Ok(PathBuf::from(target).join(profile));
    }
    derived
        .map(Path::to_path_buf)
        .ok_or(Error::TargetDir { exe })
}

/// A scratch folder of the harness inside the target directory (`<target>/<profile>/crac-e2e/<name>`),
/// created if missing.
pub fn cache_dir(name: &str) -> Result<PathBuf> {
    let dir = profile_dir()?.join("crac-e2e").join(name);
    std::fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
    Ok(dir)
}

fn locate() -> Result<PathBuf> {
    let path = match std::env::var_os("CRAC_BIN").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => profile_dir()?.join("crac"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::CracMissing { path })
    }
}

/// The `crac` binary under test.
///
/// # Panics
/// When it is missing, with the message "build it first: cargo build -p crac": every end-to-end
/// test needs it, so there is nothing better to do than stop the test with that advice.
pub fn crac_bin() -> &'static Path {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BIN.get_or_init(|| locate().map_err(|e| e.to_string())) {
        Ok(path) => path,
        Err(msg) => panic!("{msg}"),
    }
}

/// Points `link` at `target`, replacing whatever was there atomically (test processes running
/// side by side may do the same at once).
fn replace_symlink(target: &Path, link: &Path) -> Result<()> {
    let tmp = link.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).map_err(io_err("linking", &tmp))?;
    std::fs::rename(&tmp, link).map_err(io_err("renaming to", link))
}

fn make_tools() -> Result<Tools> {
    let bin = crac_bin();
    // One folder per crac binary, so test runs of different builds (CRAC_BIN) side by side never
    // swap each other's links.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(bin, &mut hasher);
    let dir = cache_dir(&format!("bin-{:016x}", std::hash::Hasher::finish(&hasher)))?;
    let names = ["crac_launch", "crac_ckpt", "crac_restart"];
    for name in names {
        replace_symlink(bin, &dir.join(name))?;
    }
    let [launch, ckpt, restart] = names.map(|n| dir.join(n));
    Ok(Tools {
        dir,
        launch,
        ckpt,
        restart,
    })
}

/// The `crac_launch`, `crac_ckpt` and `crac_restart` links to [`crac_bin`], made once per test
/// process.
///
/// # Panics
/// When `crac` is missing or the links cannot be made.
pub fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Result<Tools, String>> = OnceLock::new();
    match TOOLS.get_or_init(|| make_tools().map_err(|e| e.to_string())) {
        Ok(tools) => tools,
        Err(msg) => panic!("{msg}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_dir_is_where_cargo_put_this_test() {
        let dir = profile_dir().unwrap();
        let exe = std::env::current_exe().unwrap();
        if std::env::var_os("CARGO_TARGET_DIR").is_none() {
            assert_eq!(exe.parent().unwrap().parent().unwrap(), dir);
        }
        assert!(
            dir.ends_with("debug") || dir.ends_with("release"),
            "{dir:?}"
        );
    }

    #[test]
    fn symlinks_are_replaced_not_duplicated() {
        let tmp = tempfile::tempdir().unwrap();
        let link = tmp.path().join("crac_launch");
        replace_symlink(Path::new("/bin/true"), &link).unwrap();
        replace_symlink(Path::new("/bin/false"), &link).unwrap();
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/bin/false"));
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }
}
