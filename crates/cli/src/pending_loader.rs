//! TEMPORARY stand-in for `crac_loader`'s launch API until that crate lands; removed before the
//! final commit. It launches nothing: every launch fails with "not supported yet".

#![allow(missing_docs, clippy::missing_errors_doc)]

pub mod startup {
    #[derive(Debug)]
    pub struct StartupError;
    impl std::fmt::Display for StartupError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("not supported yet: the launch is being written")
        }
    }
    impl std::error::Error for StartupError {}
    pub fn ensure_no_aslr() -> Result<(), StartupError> {
        Ok(())
    }
    pub fn init_lower_half() -> Result<(), StartupError> {
        Ok(())
    }
}

pub mod fds {
    use std::io;
    use std::os::fd::OwnedFd;
    pub fn move_high(fd: OwnedFd) -> io::Result<OwnedFd> {
        Ok(fd)
    }
}

pub mod exec {
    use std::convert::Infallible;
    use std::ffi::{OsStr, OsString};
    pub struct Target;
    #[derive(Debug)]
    pub struct ResolveError;
    impl std::fmt::Display for ResolveError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("not supported yet: the launch is being written")
        }
    }
    impl ResolveError {
        pub fn exit_code(&self) -> i32 {
            127
        }
    }
    #[derive(Debug)]
    pub struct LoadError;
    impl std::fmt::Display for LoadError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("not supported yet: the launch is being written")
        }
    }
    pub fn resolve(_program: &OsStr, _args: &[OsString]) -> Result<Target, ResolveError> {
        Err(ResolveError)
    }
    pub fn enter(_target: Target, _env: Vec<OsString>) -> Result<Infallible, LoadError> {
        Err(LoadError)
    }
}
