//! How many malloc arenas `pds serve` uses.
//!
//! glibc's malloc gives threads that allocate at the same time arenas of
//! their own, up to 8 per CPU. The server runs SQLite, scrypt and file work
//! on tokio's blocking pool, whose threads come and go, and memory freed in
//! an arena mostly stays in it. After a load run (writes on 20 accounts,
//! 100 firehose subscribers, a 100,000-record getRepo) the server held
//! 197 MiB with glibc's default, 136 MiB with two arenas; after 10,000
//! more accounts, 209 MiB and 165 MiB (a busy 2-CPU machine).
//!
//! glibc reads `MALLOC_ARENA_MAX` only when a process starts, so the server
//! starts itself again, once, with it set. An operator who sets it keeps
//! their value.

/// The environment variable glibc reads for the most malloc arenas.
pub const ARENA_VARIABLE: &str = "MALLOC_ARENA_MAX";

/// The arenas of the server when the operator does not say.
pub const SERVER_ARENAS: &str = "2";

/// Unless [`ARENA_VARIABLE`] is set, replaces this process (same pid and
/// arguments) by the same program with it set to [`SERVER_ARENAS`]. Returns
/// when it is already set, on systems without glibc, or if the restart
/// failed (then the server runs with glibc's default and says so).
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;

        if std::env::var_os(ARENA_VARIABLE).is_some() {
            return;
        }
        let Ok(program) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let arg0 = args
            .next()
            .unwrap_or_else(|| program.clone().into_os_string());
        let err = std::process::Command::new(&program)
            .arg0(arg0)
            .args(args)
            .env(ARENA_VARIABLE, SERVER_ARENAS)
            .exec();
        eprintln!("pds: could not restart with {ARENA_VARIABLE}={SERVER_ARENAS}: {err}");
    }
}
