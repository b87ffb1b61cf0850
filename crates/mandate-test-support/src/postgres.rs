//! A real PostgreSQL server for tests, from Debian's `postgresql` package
//! (`scripts/test.sh` installs it): `initdb` in a temp dir, `pg_ctl start` on a free
//! loopback port, stopped (`pg_ctl stop -m immediate`) and removed on drop. When the
//! tests run as root, the server runs as `nobody` (PostgreSQL refuses root).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The directory of the PostgreSQL server binaries: `$MANDATE_PG_BIN` if set, else the
/// newest `/usr/lib/postgresql/<version>/bin` holding `pg_ctl`.
pub fn pg_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("MANDATE_PG_BIN") {
        return PathBuf::from(path);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!("PostgreSQL's server binaries are missing: install Debian's `postgresql` (scripts/test.sh does it)")
    })
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// A running PostgreSQL with a `mandate` database, reachable at [`Postgres::url`].
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_nobody: bool,
    password: String,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres").field("port", &self.port).finish()
    }
}

impl Postgres {
    /// `initdb` (user `mandate` with a random password, scram authentication on
    /// 127.0.0.1), start on a free port, create database `mandate`. Panics on failure.
    pub fn start() -> Postgres {
        let bin = pg_bin();
        let dir = tempfile::tempdir().unwrap();
        let as_nobody = is_root();
        let data = dir.path().join("data");
        let password = format!("pw-{}-{}", std::process::id(), crate::free_port());
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, &password).unwrap();
        if as_nobody {
            // `nobody` must reach its data and socket directory.
            for path in [dir.path(), pwfile.as_path()] {
                let status = Command::new("chown").arg("nobody:nogroup").arg(path).status().unwrap();
                assert!(status.success(), "chown {}", path.display());
            }
        }
        let pg = Postgres { dir, bin, port: 0, as_nobody, password };
        let out = pg
            .command("initdb")
            .args(["-A", "scram-sha-256", "-U", "mandate", "-E", "UTF8", "--no-sync", "--pwfile"])
            .arg(&pwfile)
            .arg("-D")
            .arg(&data)
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let mut pg = pg;
        for _ in 0..3 {
            pg.port = crate::free_port();
            if pg.pg_ctl_start() {
                pg.createdb();
                return pg;
            }
        }
        panic!("PostgreSQL did not start");
    }

    /// `pg_ctl start` on this server's port; whether it started.
    fn pg_ctl_start(&self) -> bool {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log");
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "30", "-o", &options, "start"])
            .stdout(Stdio::null())
            .output()
            .unwrap();
        if !out.status.success() {
            eprintln!(
                "pg_ctl start: {} {}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        out.status.success()
    }

    /// Stops the server at once (as a crash would), keeping its data.
    pub fn stop(&self) {
        let out = self.command("pg_ctl").arg("-D").arg(self.data()).args(["-m", "immediate", "stop"]).output();
        assert!(out.is_ok_and(|out| out.status.success()), "pg_ctl stop");
    }

    /// Starts the stopped server again on the same port, with its data.
    pub fn restart(&self) {
        assert!(self.pg_ctl_start(), "PostgreSQL did not start again");
    }

    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if self.as_nobody {
            let mut command = Command::new("runuser");
            command.args(["-u", "nobody", "--"]).arg(program);
            command.current_dir(self.dir.path());
            command
        } else {
            Command::new(program)
        }
    }

    fn createdb(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self
                .command("createdb")
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "mandate", "mandate"])
                .env("PGPASSWORD", &self.password)
                .output()
                .unwrap();
            if out.status.success() {
                return;
            }
            assert!(Instant::now() < deadline, "createdb: {}", String::from_utf8_lossy(&out.stderr));
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A fresh, empty database on this server; returns its URL.
    pub fn new_database(&self, name: &str) -> String {
        let out = self
            .command("createdb")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "mandate", name])
            .env("PGPASSWORD", &self.password)
            .output()
            .unwrap();
        assert!(out.status.success(), "createdb {name}: {}", String::from_utf8_lossy(&out.stderr));
        self.url_of(name)
    }

    /// The URL of database `name` made by [`Postgres::new_database`].
    pub fn new_database_url(&self, name: &str) -> String {
        self.url_of(name)
    }

    /// `postgres://mandate:<password>@127.0.0.1:<port>/mandate`.
    pub fn url(&self) -> String {
        self.url_of("mandate")
    }

    fn url_of(&self, database: &str) -> String {
        format!("postgres://mandate:{}@127.0.0.1:{}/{database}", self.password, self.port)
    }

    /// The password in [`Postgres::url`] (to check it is never shown).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's data directory (for `pg_ctl` by hand).
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.command("pg_ctl").arg("-D").arg(self.data()).args(["-m", "immediate", "stop"]).output();
    }
}
