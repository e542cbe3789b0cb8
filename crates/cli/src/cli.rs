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
    #[command(override_usage = "crac launch [--] PROGRAM [ARGS]...")]
    Launch(LaunchArgs),
    /// Show or checkpoint a process started by crac_launch (the same as crac_ckpt)
    Ckpt(CkptArgs),
    /// Resume a program from a checkpoint image (the same as crac_restart)
    Restart(RestartArgs),
    /// Print what a checkpoint image holds
    Inspect(InspectArgs),
}

/// Arguments of `crac_launch`.
#[derive(Debug, Args)]
#[command(
    after_help = "Everything after PROGRAM is passed to the program unchanged, so \
        `crac_launch ls -l` runs `ls -l`. Use `--` before a PROGRAM that starts with `-`.\n\n\
        The program's stdin, stdout, stderr, exit status and signals behave as without crac."
)]
pub struct LaunchArgs {
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
pub struct CkptArgs {
    /// Print the threads and memory of process PID, split into the program's and crac's
    #[arg(long, value_name = "PID", conflicts_with = "pids")]
    pub status: Option<u32>,
    /// With --status: print JSON instead of text
    #[arg(long, requires = "status")]
    pub json: bool,
    /// Processes to checkpoint (not available in this build yet)
    #[arg(value_name = "PID")]
    pub pids: Vec<u32>,
}

/// Arguments of `crac_restart`.
#[derive(Debug, Args)]
pub struct RestartArgs {
    /// A checkpoint image, or a directory whose newest good image is used
    #[arg(value_name = "IMAGE|DIR")]
    pub image: PathBuf,
}

/// Arguments of `crac inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The checkpoint image to describe
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,
}

/// `crac_launch`.
#[derive(Debug, Parser)]
#[command(
    name = "crac_launch",
    about = "Run a program under crac so that it can be checkpointed and restarted",
    override_usage = "crac_launch [--] PROGRAM [ARGS]..."
)]
pub struct LaunchCli {
    #[command(flatten)]
    args: LaunchArgs,
}

/// `crac_ckpt`.
#[derive(Debug, Parser)]
#[command(
    name = "crac_ckpt",
    about = "Show or checkpoint a process started by crac_launch"
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
            matches!(inv.command, Command::Restart(RestartArgs { ref image }) if image == Path::new("img.crac"))
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
            help.contains("Usage: crac_launch [--] PROGRAM [ARGS]...\n"),
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
    fn invoked_name_is_the_basename() {
        assert_eq!(
            invoked_name(Some(OsStr::new("/a/b/crac_ckpt"))),
            "crac_ckpt"
        );
        assert_eq!(invoked_name(None), "crac");
    }
}
