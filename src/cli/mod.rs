//! The command line (docs/behaviour.md §9): the subcommands ([`commands`]) and the server
//! settings ([`Config`]), accepted anywhere on the line. `gatehouse --help` and
//! `gatehouse serve --help` list every setting; an admin subcommand's `--help` shows only its
//! own arguments and the settings it reads ([`settings_read_by`]).

mod commands;

use clap::{CommandFactory, FromArgMatches, Parser};

pub use self::commands::{
    BenchDataArgs, Command, DbCommand, GroupCommand, KeyCommand, MailCommand, SessionCommand,
    UserCommand,
};
pub use crate::config::{Config, SignUp};

/// Gatehouse: a self-hosted sign-up / sign-in website. Run without arguments to serve on
/// http://127.0.0.1:8080 with ./users.database.
///
/// The subcommands as clap derives them; [`command`] adds the server settings to every level.
#[derive(Parser, Debug)]
#[command(name = "gatehouse", version, about, long_about = None, args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

/// What to run, with the settings given before, between or after the subcommand's words (the
/// last one given wins, then the environment, then the default).
#[derive(Debug)]
pub struct Invocation {
    pub config: Config,
    /// `None` serves, like `Some(Command::Serve)`.
    pub command: Option<Command>,
}

/// The server settings an admin command reads, which its `--help` shows. Every subcommand
/// accepts every setting, hidden where it does nothing, because scripts (and `gadm` aliases)
/// pass `--database` and the Argon2 costs to all of them, before or after the subcommand.
fn settings_read_by(path: &[&str]) -> &'static [&'static str] {
    const HASHING: &[&str] = &["database", "argon2_m", "argon2_t", "argon2_p"];
    const BULK: &[&str] = &[
        "database",
        "argon2_m",
        "argon2_t",
        "argon2_p",
        "kdf_threads",
    ];
    const SESSIONS: &[&str] = &["database", "session_idle"];
    const MAIL: &[&str] = &[
        "database",
        "secret_key_file",
        "public_url",
        "smtp_url",
        "mail_from",
    ];
    match path {
        ["user", "add" | "set-password"] => HASHING,
        ["user", "show"] | ["session", "list" | "purge-expired"] => SESSIONS,
        ["user", "reset-link"] => &["database", "public_url", "reset_ttl"],
        ["import-seed" | "bench-data"] => BULK,
        ["bench-kdf"] => &["argon2_m", "argon2_t", "argon2_p"],
        ["mail", "test"] => MAIL,
        ["key", "rotate"] => &["database", "secret_key_file"],
        ["db", "copy"] => &["database", "db_connect_timeout"],
        // Groups: their subcommands say what they read.
        ["user" | "session" | "db" | "mail" | "key"] => &[],
        _ => &["database"],
    }
}

/// Every server setting, as `gatehouse --help` lists it.
fn settings() -> Vec<clap::Arg> {
    Config::command()
        .get_arguments()
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
        .cloned()
        .collect()
}

/// The whole command line: the subcommands, and the server settings on every level (shown on
/// `gatehouse` and `serve`, and on each admin command only where [`settings_read_by`] says).
pub fn command() -> clap::Command {
    let settings = settings();
    with_settings(Cli::command().args(settings.clone()), &settings, &[])
}

fn with_settings(cmd: clap::Command, settings: &[clap::Arg], path: &[&str]) -> clap::Command {
    cmd.mut_subcommands(|sub| {
        let name = sub.get_name().to_owned();
        let path: Vec<&str> = path.iter().copied().chain([name.as_str()]).collect();
        let serve = path == ["serve"];
        let shown = |a: &clap::Arg| serve || settings_read_by(&path).contains(&a.get_id().as_str());
        // An admin command lists its own options first, then the settings it reads.
        let heading = (!serve).then_some("Settings");
        let sub = sub.args_override_self(true).args(
            settings
                .iter()
                .map(|a| a.clone().hide(!shown(a)).help_heading(heading)),
        );
        with_settings(sub, settings, &path)
    })
}

/// Parses the process's arguments; a usage error or `--help` exits.
pub fn parse() -> Invocation {
    try_parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
}

pub fn try_parse_from<I, T>(args: I) -> Result<Invocation, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut cmd = command();
    let matches = cmd.try_get_matches_from_mut(args)?;
    let cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))?;
    let config = merged_settings(&matches).map_err(|e| e.format(&mut cmd))?;
    Ok(Invocation {
        config,
        command: cli.command,
    })
}

/// The settings as given at any level: for each, the innermost command-line occurrence (the
/// last one typed), else its environment variable, else its default. Rebuilt as a plain
/// `gatehouse --flag=value …` line and parsed as [`Config`] once more, so that parsing stays
/// clap's: the values were already checked, and env and defaults apply the usual way.
fn merged_settings(matches: &clap::ArgMatches) -> Result<Config, clap::Error> {
    let settings = settings();
    let mut given: Vec<Option<Vec<std::ffi::OsString>>> = vec![None; settings.len()];
    let mut level = Some(matches);
    while let Some(m) = level {
        for (arg, slot) in settings.iter().zip(&mut given) {
            let id = arg.get_id().as_str();
            if m.value_source(id) == Some(clap::parser::ValueSource::CommandLine) {
                *slot = Some(as_flags(arg, m));
            }
        }
        level = m.subcommand().map(|(_, sub)| sub);
    }
    let line = std::iter::once("gatehouse".into()).chain(given.into_iter().flatten().flatten());
    Config::try_parse_from(line)
}

/// `--long` for a switch, `--long=VALUE` for each value of an option.
fn as_flags(arg: &clap::Arg, m: &clap::ArgMatches) -> Vec<std::ffi::OsString> {
    let long = format!(
        "--{}",
        arg.get_long().expect("every setting is a long flag")
    );
    if !arg.get_action().takes_values() {
        return vec![long.into()];
    }
    m.get_raw(arg.get_id().as_str())
        .into_iter()
        .flatten()
        .map(|v| {
            let mut flag = std::ffi::OsString::from(format!("{long}="));
            flag.push(v);
            flag
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    fn help_of(words: &[&str]) -> String {
        let line = ["gatehouse"].iter().chain(words).chain(&["--help"]);
        let err = try_parse_from(line).expect_err("--help stops parsing");
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
        err.render().to_string()
    }

    /// Every command, hidden ones included, with its words (`["user", "add"]`).
    fn all_commands(
        cmd: &clap::Command,
        path: Vec<String>,
        out: &mut Vec<(Vec<String>, clap::Command)>,
    ) {
        for sub in cmd.get_subcommands() {
            let mut words = path.clone();
            words.push(sub.get_name().to_owned());
            all_commands(sub, words.clone(), out);
            out.push((words, sub.clone()));
        }
    }

    #[test]
    fn every_argument_of_every_command_says_what_it_is() {
        let root = command();
        let mut commands = vec![(Vec::new(), root.clone())];
        all_commands(&root, Vec::new(), &mut commands);
        assert!(commands.len() > 20, "{} commands", commands.len());
        for (words, cmd) in &commands {
            if !words.is_empty() {
                assert!(
                    cmd.get_about().is_some(),
                    "gatehouse {words:?} has no description"
                );
            }
            for arg in cmd.get_arguments() {
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                assert!(
                    help.trim().len() > 5,
                    "gatehouse {words:?}: {} has no help line",
                    arg.get_id()
                );
            }
        }
    }

    #[test]
    fn admin_help_lists_its_own_options_and_only_the_settings_it_reads() {
        let add = help_of(&["user", "add"]);
        assert!(add.contains("--email <EMAIL>"), "{add}");
        assert!(add.contains("Email address (optional; unique"), "{add}");
        assert!(add.contains("--full-name"), "{add}");
        assert!(
            add.contains("--database") && add.contains("GATEHOUSE_DATABASE"),
            "{add}"
        );
        assert!(add.contains("--argon2-m"), "{add}");
        for server_only in [
            "--ip-kdf-rate",
            "--bind",
            "--workers",
            "--tls-cert",
            "--kdf-queue",
        ] {
            assert!(
                !add.contains(server_only),
                "user add --help lists {server_only}:\n{add}"
            );
        }
        let import = help_of(&["import-seed"]);
        assert!(
            import.contains("--kdf-threads") && import.contains("--argon2-t"),
            "{import}"
        );
        for words in [
            &["user"][..],
            &["user", "list"],
            &["session", "revoke"],
            &["db", "backup"],
            &["db", "check"],
            &["audit"],
        ] {
            let help = help_of(words);
            assert!(!help.contains("--ip-kdf-rate"), "{words:?}:\n{help}");
            assert!(!help.contains("--argon2-m"), "{words:?}:\n{help}");
            assert_eq!(
                help.contains("--database"),
                words != ["user"],
                "{words:?}:\n{help}"
            );
        }
        assert!(help_of(&["session", "list"]).contains("--session-idle"));
        // The server keeps every flag.
        for words in [&[][..], &["serve"]] {
            let help = help_of(words);
            for flag in [
                "--ip-kdf-rate",
                "--bind",
                "--database",
                "--tls-cert",
                "--log-level",
            ] {
                assert!(help.contains(flag), "{words:?} lacks {flag}:\n{help}");
            }
        }
    }

    fn config_of(line: &[&str]) -> Config {
        try_parse_from(line)
            .unwrap_or_else(|e| panic!("{line:?}: {e}"))
            .config
    }

    #[test]
    fn settings_count_wherever_they_stand_on_the_line() {
        for line in [
            &["gatehouse", "--database", "a.db", "user", "add", "al"][..],
            &["gatehouse", "user", "--database", "a.db", "add", "al"],
            &["gatehouse", "user", "add", "al", "--database", "a.db"],
            &["gatehouse", "user", "add", "--database=a.db", "al"],
            &[
                "gatehouse",
                "--database",
                "x.db",
                "user",
                "add",
                "al",
                "--database",
                "a.db",
            ],
        ] {
            let got = try_parse_from(line).unwrap();
            assert_eq!(got.config.database, PathBuf::from("a.db"), "{line:?}");
            assert!(
                matches!(got.command, Some(Command::User(UserCommand::Add { ref username, .. })) if username == "al"),
                "{line:?}"
            );
        }
        // Settings an admin command hides still parse, so scripts that pass them keep working.
        let c = config_of(&[
            "gatehouse",
            "db",
            "check",
            "--ip-kdf-rate",
            "7",
            "--argon2-m",
            "64",
        ]);
        assert_eq!((c.ip_kdf_rate, c.argon2_m), (7, 64));
        // The server: before and after `serve`, switches, lists, the later one winning.
        let c = config_of(&[
            "gatehouse",
            "--argon2-m",
            "64",
            "--bind",
            "127.0.0.1:0",
            "serve",
            "--argon2-m",
            "128",
            "--secure-cookies",
            "--trusted-proxies",
            "10.0.0.1,192.168.0.0/16",
            "--lock-window",
            "2s",
        ]);
        assert_eq!(c.argon2_m, 128);
        assert_eq!(c.bind.to_string(), "127.0.0.1:0");
        assert!(c.secure_cookies);
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.lock_window, Duration::from_secs(2));
        let c = config_of(&["gatehouse", "--secure-cookies", "serve"]);
        assert!(c.secure_cookies);
        let c = config_of(&["gatehouse"]);
        assert_eq!(c.database, PathBuf::from("users.database"));
        assert!(!c.secure_cookies);
        // A value that looks like a flag survives the merge.
        let c = config_of(&["gatehouse", "user", "list", "--database=-odd.db"]);
        assert_eq!(c.database, PathBuf::from("-odd.db"));
        assert!(try_parse_from(["gatehouse", "user", "list", "--lock-window", "soon"]).is_err());
        assert!(try_parse_from(["gatehouse", "user", "list", "--no-such-flag"]).is_err());
    }
}
