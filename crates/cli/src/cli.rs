//! The command line: one binary answering to `crac` (with subcommands) and to `crac_launch`,
//! `crac_ckpt` and `crac_restart` (chosen by the name it was started under).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

/// `crac`: every verb as a subcommand.
#[derive(Debug, Parser)]
#[command(
    name = "crac",
    about = "Transparent checkpoint-restart for CUDA programs on Linux",
    long_about = "Transparent checkpoint-restart for CUDA programs on Linux.\n\n\
        crac runs an unmodified program in a split process: the program above, crac below in \
        the same address space. The same binary also answers to crac_launch, crac_ckpt and \
        crac_restart.\n\n\
        Set CRAC_LOG=debug (or info, trace) for more diagnostics on stderr."
)]
pub struct Crac {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a program under crac (the same as crac_launch)
    #[command(override_usage = "crac launch [OPTIONS] [--] PROGRAM [ARGS]...")]
    Launch(LaunchArgs),
    /// Show or checkpoint a process started by crac_launch (the same as crac_ckpt)
    Ckpt(CkptArgs),
    /// Resume a program from a checkpoint image (the same as crac_restart)
    Restart(RestartArgs),
    /// Print what a checkpoint image holds
    Inspect(InspectArgs),
    /// Install or remove the "Python 3 (crac)" Jupyter kernel
    Jupyter(JupyterArgs),
}

/// Arguments of `crac_launch`.
#[derive(Debug, Args)]
#[command(
    after_help = "Everything after PROGRAM is passed to the program unchanged, so \
        `crac_launch ls -l` runs `ls -l`. Use `--` before a PROGRAM that starts with `-`.\n\n\
        The program's stdin, stdout, stderr, exit status and signals behave as without crac.\n\n\
        Images are named <program>-<launch pid>-<sequence>.crac; a restarted program keeps its \
        checkpoint options and goes on with the same names. A program stopped by \
        --exit-after-ckpt (or crac_ckpt --exit) exits with status 85."
)]
pub struct LaunchArgs {
    /// Write a checkpoint when the process receives SIG (a name such as USR1 or SIGUSR1, or a
    /// number), e.g. from `sbatch --signal=B:USR1@300`
    #[arg(long, value_name = "SIG", value_parser = parse_signal)]
    pub ckpt_signal: Option<i32>,
    /// With --ckpt-signal: stop the program (status 85) once that checkpoint is written
    #[arg(long, requires = "ckpt_signal")]
    pub exit_after_ckpt: bool,
    /// Write a checkpoint every SECS seconds (counted from the end of the previous one)
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub interval: Option<u64>,
    /// Keep only the N newest images of this program in the checkpoint directory
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: Option<u32>,
    /// Where images go [default: $CRAC_DIR, else the current directory]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Serve the program's CUDA runtime calls with this device backend
    #[arg(long, value_name = "BACKEND", value_enum)]
    pub gpu: Option<crate::gpu::GpuKind>,
    /// The program to run (looked up in PATH when it has no `/`), then its arguments
    #[arg(
        value_name = "PROGRAM",
        required = true,
        num_args = 1..,
        trailing_var_arg = true
    )]
    command: Vec<OsString>,
}

impl LaunchArgs {
    /// The program to run.
    pub fn program(&self) -> &OsStr {
        self.command
            .first()
            .map_or(OsStr::new(""), OsString::as_os_str)
    }

    /// The program's arguments.
    pub fn args(&self) -> &[OsString] {
        self.command.get(1..).unwrap_or_default()
    }
}

/// Arguments of `crac_ckpt`.
#[derive(Debug, Args)]
#[command(
    group(clap::ArgGroup::new("what").required(true).args(["pids", "all", "status"])),
    after_help = "Prints the path of each image written, one a line (the last line is the last \
        image). Exit status: 0 when every checkpoint was written, 1 when one failed (the reason \
        is on stderr; the process goes on running), 2 for a bad command line."
)]
pub struct CkptArgs {
    /// Print the threads and memory of process PID, split into the program's and crac's
    #[arg(long, value_name = "PID", conflicts_with_all = ["pids", "all", "exit", "dir"])]
    pub status: Option<u32>,
    /// With --status: print JSON instead of text
    #[arg(long, requires = "status")]
    pub json: bool,
    /// Stop each process (exit status 85) once its image is written
    #[arg(long)]
    pub exit: bool,
    /// Where images go [default: $CRAC_DIR, else the current directory]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Checkpoint every process of yours running under crac with the same runtime directory
    /// ($XDG_RUNTIME_DIR, else /tmp)
    #[arg(long, conflicts_with = "pids")]
    pub all: bool,
    /// Processes to checkpoint (started by crac_launch or crac_restart)
    #[arg(value_name = "PID")]
    pub pids: Vec<u32>,
}

/// Arguments of `crac_restart`.
#[derive(Debug, Args)]
#[command(
    after_help = "Given a directory, uses the newest image in it whose header and metadata check \
        out and that this crac build can restart, and says which on stderr.\n\n\
        Exit status: the program's own once it runs; 1 when the image cannot be restarted (the \
        reason is on stderr), 2 for a bad command line."
)]
pub struct RestartArgs {
    /// A checkpoint image, or a directory whose newest good image is used
    #[arg(value_name = "IMAGE|DIR")]
    pub image: PathBuf,
    /// Read all memory into place (checking every checksum) before the program resumes, instead
    /// of mapping it from the image on demand
    #[arg(long)]
    pub eager: bool,
    /// The device backend for a program that used CUDA (default: the one the image was taken
    /// with); `sim` resumes an image taken with `cuda` when its kernels carry PTX
    #[arg(long, value_enum, value_name = "BACKEND")]
    pub gpu: Option<crate::gpu::GpuKind>,
    /// Resume the program under the process id it had when it was checkpointed (in a new pid
    /// namespace); programs that remember their pid (Python's asyncio, ZeroMQ) need it
    #[arg(long)]
    pub same_pid: bool,
}

/// Arguments of `crac jupyter`.
#[derive(Debug, Args)]
pub struct JupyterArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: JupyterAction,
}

/// `crac jupyter install|uninstall`.
#[derive(Debug, Subcommand)]
pub enum JupyterAction {
    /// Write a "Python 3 (crac)" kernelspec for a Python that has ipykernel
    Install(JupyterInstallArgs),
    /// Remove a kernelspec written by `crac jupyter install`
    Uninstall(JupyterUninstallArgs),
}

/// Arguments of `crac jupyter install`.
#[derive(Debug, Args)]
pub struct JupyterInstallArgs {
    /// Install for the current user (the default)
    #[arg(long, conflicts_with = "sys_prefix")]
    pub user: bool,
    /// Install into the Python environment's prefix (sys.prefix) of --python
    #[arg(long)]
    pub sys_prefix: bool,
    /// The kernelspec's directory name [default: python3-crac; python3-crac-sim or
    /// python3-crac-cuda with --gpu]
    #[arg(long)]
    pub name: Option<String>,
    /// The Python the kernel runs (default: python3 on PATH)
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Run the kernel's CUDA calls on this device backend (`crac launch --gpu`): the device
    /// memory of a CUDA library the notebook loads (built with `nvcc -cudart shared`) is then
    /// part of its checkpoints
    #[arg(long, value_name = "BACKEND")]
    pub gpu: Option<crate::gpu::GpuKind>,
}

/// Arguments of `crac jupyter uninstall`.
#[derive(Debug, Args)]
pub struct JupyterUninstallArgs {
    /// Remove it from the current user's kernels (the default)
    #[arg(long, conflicts_with = "sys_prefix")]
    pub user: bool,
    /// Remove it from the Python environment's prefix of --python
    #[arg(long)]
    pub sys_prefix: bool,
    /// The kernelspec's directory name
    #[arg(long, default_value = "python3-crac")]
    pub name: String,
    /// The Python whose prefix --sys-prefix means (default: python3 on PATH)
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
}

/// Arguments of `crac inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The checkpoint image to describe
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,
    /// Print JSON (the image's metadata and a summary) instead of text
    #[arg(long)]
    pub json: bool,
    /// Also check every payload's checksum (reads the whole image)
    #[arg(long)]
    pub verify: bool,
}

/// Parses a signal given as a name (`USR1`, `SIGUSR1`, `sigusr1`, `RTMIN+2`) or a number.
pub fn parse_signal(s: &str) -> Result<i32, String> {
    const NAMES: [(&str, i32); 31] = [
        ("HUP", 1),
        ("INT", 2),
        ("QUIT", 3),
        ("ILL", 4),
        ("TRAP", 5),
        ("ABRT", 6),
        ("IOT", 6),
        ("BUS", 7),
        ("FPE", 8),
        ("KILL", 9),
        ("USR1", 10),
        ("SEGV", 11),
        ("USR2", 12),
        ("PIPE", 13),
        ("ALRM", 14),
        ("TERM", 15),
        ("STKFLT", 16),
        ("CHLD", 17),
        ("CONT", 18),
        ("STOP", 19),
        ("TSTP", 20),
        ("TTIN", 21),
        ("TTOU", 22),
        ("URG", 23),
        ("XCPU", 24),
        ("XFSZ", 25),
        ("VTALRM", 26),
        ("PROF", 27),
        ("WINCH", 28),
        ("IO", 29),
        ("PWR", 30),
    ];
    // glibc reserves the first two real-time signals for itself.
    const RTMIN: i32 = 34;
    const RTMAX: i32 = 64;
    let upper = s.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let signo = if let Ok(n) = bare.parse::<i32>() {
        n
    } else if let Some((_, n)) = NAMES.iter().find(|(name, _)| *name == bare) {
        *n
    } else if bare == "SYS" {
        31
    } else if let Some(rest) = bare.strip_prefix("RTMIN") {
        RTMIN
            + rest
                .strip_prefix('+')
                .map_or(Ok(0), str::parse)
                .map_err(|_| bad(s))?
    } else if let Some(rest) = bare.strip_prefix("RTMAX") {
        RTMAX
            - rest
                .strip_prefix('-')
                .map_or(Ok(0), str::parse)
                .map_err(|_| bad(s))?
    } else {
        return Err(bad(s));
    };
    crac_agent::trigger::check_signal(signo).map_err(|e| e.to_string())?;
    Ok(signo)
}

fn bad(s: &str) -> String {
    format!("{s:?} is not a signal; give a name such as USR1 or a number")
}

/// `crac_launch`.
#[derive(Debug, Parser)]
#[command(
    name = "crac_launch",
    about = "Run a program under crac so that it can be checkpointed and restarted",
    override_usage = "crac_launch [OPTIONS] [--] PROGRAM [ARGS]..."
)]
pub struct LaunchCli {
    #[command(flatten)]
    args: LaunchArgs,
}

/// `crac_ckpt`.
#[derive(Debug, Parser)]
#[command(
    name = "crac_ckpt",
    about = "Checkpoint (or show) processes started by crac_launch",
    override_usage = "crac_ckpt [--exit] [--dir DIR] (PID...|--all)\n       crac_ckpt --status PID [--json]"
)]
pub struct CkptCli {
    #[command(flatten)]
    args: CkptArgs,
}

/// `crac_restart`.
#[derive(Debug, Parser)]
#[command(
    name = "crac_restart",
    about = "Resume a program from a checkpoint image"
)]
pub struct RestartCli {
    #[command(flatten)]
    args: RestartArgs,
}

/// The name the binary was started under (the basename of argv[0]).
pub fn invoked_name(argv0: Option<&OsStr>) -> &str {
    argv0
        .and_then(|a| Path::new(a).file_name())
        .and_then(OsStr::to_str)
        .unwrap_or("crac")
}

/// What the user asked for, and the name to prefix our messages with.
#[derive(Debug)]
pub struct Invocation {
    /// The verb and its arguments.
    pub command: Command,
    /// `crac_launch`, `crac_ckpt`, `crac_restart` or `crac`.
    pub name: &'static str,
}

/// Parses `argv` (argv[0] included) by the name in argv[0]; `version` is what `--version`
/// prints after the name.
pub fn parse(argv: Vec<OsString>, version: &'static str) -> Result<Invocation, clap::Error> {
    fn with<P: CommandFactory + FromArgMatches>(
        argv: Vec<OsString>,
        version: &'static str,
    ) -> Result<P, clap::Error> {
        let mut cmd = P::command().version(version);
        let matches = cmd.try_get_matches_from_mut(argv)?;
        P::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))
    }
    let name = match invoked_name(argv.first().map(OsString::as_os_str)) {
        "crac_launch" => "crac_launch",
        "crac_ckpt" => "crac_ckpt",
        "crac_restart" => "crac_restart",
        _ => "crac",
    };
    let command = match name {
        "crac_launch" => Command::Launch(with::<LaunchCli>(argv, version)?.args),
        "crac_ckpt" => Command::Ckpt(with::<CkptCli>(argv, version)?.args),
        "crac_restart" => Command::Restart(with::<RestartCli>(argv, version)?.args),
        _ => with::<Crac>(argv, version)?.command,
    };
    Ok(Invocation { command, name })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(args: &[&str]) -> Result<Invocation, clap::Error> {
        parse(args.iter().map(OsString::from).collect(), "0.0.0-test")
    }

    fn launch(args: &[&str]) -> LaunchArgs {
        match parse_str(args).unwrap().command {
            Command::Launch(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_name_parses_its_verb() {
        let l = launch(&["/usr/local/bin/crac_launch", "ls", "-l"]);
        assert_eq!(l.program(), "ls");
        assert_eq!(l.args(), ["-l"]);
        let l = launch(&["crac", "launch", "--", "ls", "--help", "-x", "--", "y"]);
        assert_eq!(l.program(), "ls");
        assert_eq!(l.args(), ["--help", "-x", "--", "y"]);
        let l = launch(&[
            "crac_launch",
            "prog",
            "-h",
            "--help",
            "--",
            "--version",
            "-",
        ]);
        assert_eq!(l.args(), ["-h", "--help", "--", "--version", "-"]);
        let l = launch(&["crac_launch", "--", "-dash", "-V"]);
        assert_eq!(
            (l.program(), l.args()),
            (OsStr::new("-dash"), &["-V".into()][..])
        );
        assert!(launch(&["crac_launch", "ls"]).args().is_empty());

        let inv = parse_str(&["crac_ckpt", "--status", "42", "--json"]).unwrap();
        assert_eq!(inv.name, "crac_ckpt");
        assert!(matches!(
            inv.command,
            Command::Ckpt(CkptArgs {
                status: Some(42),
                json: true,
                ..
            })
        ));
        let inv = parse_str(&["crac", "ckpt", "1", "2"]).unwrap();
        assert_eq!(inv.name, "crac");
        assert!(
            matches!(inv.command, Command::Ckpt(CkptArgs { status: None, ref pids, .. }) if pids == &[1, 2])
        );
        let inv = parse_str(&["./crac_restart", "img.crac"]).unwrap();
        assert!(
            matches!(inv.command, Command::Restart(RestartArgs { ref image, eager: false, gpu: None, same_pid: false }) if image == Path::new("img.crac"))
        );
        let inv = parse_str(&["crac_restart", "--eager", "d"]).unwrap();
        assert!(matches!(
            inv.command,
            Command::Restart(RestartArgs { eager: true, .. })
        ));
        let inv = parse_str(&["crac_ckpt", "--exit", "--dir", "/d", "7"]).unwrap();
        assert!(
            matches!(inv.command, Command::Ckpt(CkptArgs { exit: true, dir: Some(ref d), ref pids, .. }) if d == Path::new("/d") && pids == &[7])
        );
        let inv = parse_str(&["crac_ckpt", "--all"]).unwrap();
        assert!(matches!(
            inv.command,
            Command::Ckpt(CkptArgs { all: true, .. })
        ));
        let l = launch(&[
            "crac_launch",
            "--ckpt-signal",
            "SIGUSR1",
            "--exit-after-ckpt",
            "--interval",
            "30",
            "--keep",
            "2",
            "--dir",
            "/ck",
            "prog",
            "--keep",
        ]);
        assert_eq!(
            (l.ckpt_signal, l.exit_after_ckpt, l.interval, l.keep),
            (Some(libc::SIGUSR1), true, Some(30), Some(2))
        );
        assert_eq!(l.dir.as_deref(), Some(Path::new("/ck")));
        assert_eq!(
            (l.program(), l.args()),
            (OsStr::new("prog"), &["--keep".into()][..])
        );
        let inv = parse_str(&["crac", "inspect", "x"]).unwrap();
        assert!(matches!(inv.command, Command::Inspect(_)));
    }

    #[test]
    fn bad_command_lines_are_errors() {
        use clap::error::ErrorKind;
        let kind = |a: &[&str]| parse_str(a).unwrap_err().kind();
        assert_eq!(kind(&["crac_launch"]), ErrorKind::MissingRequiredArgument);
        assert_eq!(
            kind(&["crac_launch", "-l", "ls"]),
            ErrorKind::UnknownArgument
        );
        assert_eq!(
            kind(&["crac_ckpt", "--json"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            kind(&["crac_ckpt", "--status", "x"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind(&["crac_ckpt", "--status", "1", "2"]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            kind(&["crac_ckpt", "--all", "2"]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(kind(&["crac_ckpt"]), ErrorKind::MissingRequiredArgument);
        assert_eq!(
            kind(&["crac_ckpt", "--exit"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            kind(&["crac_launch", "--exit-after-ckpt", "ls"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            kind(&["crac_launch", "--interval", "0", "ls"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind(&["crac_launch", "--ckpt-signal", "KILL", "ls"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind(&["crac_launch", "--keep", "0", "ls"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind(&["crac"]),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        );
        assert_eq!(kind(&["crac", "--version"]), ErrorKind::DisplayVersion);
        assert_eq!(kind(&["crac_launch", "--help"]), ErrorKind::DisplayHelp);
    }

    #[test]
    fn help_and_version_read_well() {
        let help = parse_str(&["crac_launch", "--help"])
            .unwrap_err()
            .to_string();
        assert!(
            help.contains("Usage: crac_launch [OPTIONS] [--] PROGRAM [ARGS]...\n"),
            "{help}"
        );
        assert!(help.contains("`crac_launch ls -l` runs `ls -l`"), "{help}");
        let v = parse_str(&["crac_ckpt", "--version"])
            .unwrap_err()
            .to_string();
        assert_eq!(v, "crac_ckpt 0.0.0-test\n");
        Crac::command().debug_assert();
        LaunchCli::command().debug_assert();
        CkptCli::command().debug_assert();
        RestartCli::command().debug_assert();
    }

    #[test]
    fn signals_parse_by_name_or_number() {
        for (text, n) in [
            ("USR1", 10),
            ("SIGUSR1", 10),
            ("sigusr2", 12),
            ("term", 15),
            ("12", 12),
            ("RTMIN", 34),
            ("SIGRTMIN+3", 37),
            ("RTMAX-1", 63),
            ("63", 63),
            ("SYS", 31),
        ] {
            assert_eq!(parse_signal(text), Ok(n), "{text}");
        }
        for text in [
            "", "USR3", "SIGKILL", "9", "STOP", "0", "65", "RTMIN+x", "-1",
        ] {
            assert!(parse_signal(text).is_err(), "{text}");
        }
    }

    #[test]
    fn invoked_name_is_the_basename() {
        assert_eq!(
            invoked_name(Some(OsStr::new("/a/b/crac_ckpt"))),
            "crac_ckpt"
        );
        assert_eq!(invoked_name(None), "crac");
    }
}
