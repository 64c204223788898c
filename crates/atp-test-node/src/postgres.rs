//! A real PostgreSQL server for tests: Debian's `postgresql` package, a cluster created by
//! `initdb` in a temporary directory, listening on 127.0.0.1 and a free port.
//!
//! `initdb` refuses to run as root, so when the tests run as root the cluster belongs to the
//! `postgres` user (`runuser -u postgres`). The server is stopped (`pg_ctl stop -m immediate`)
//! when the [`PgServer`] is dropped; a watchdog shell beside it also stops it once the test
//! process is gone, so that a test binary that exits without dropping (a shared server in a
//! `static`) leaves nothing running.
//!
//! When no PostgreSQL is installed, [`PgServer::start`] returns `None` after a loud SKIP, and
//! panics under `CI=true`: there a missing service is a failure, not a skip.

use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a server may take to accept connections.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// A running PostgreSQL server owned by a test.
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
    /// The server options `pg_ctl start` passes (port, socket directory, durability).
    options: String,
}

/// How the server trades durability for speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// PostgreSQL's defaults: every commit flushed to disk. For tests of crashes and
    /// acknowledged writes.
    Full,
    /// `fsync = off`: commits are not flushed (the data is lost only if the machine fails,
    /// never on a server crash). For tests of behaviour, which run many short transactions.
    Relaxed,
}

fn pg_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("postgres").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    // /proc/self/status names the real uid first on the Uid: line.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl PgServer {
    /// Starts a fresh server, or returns `None` (outside CI) when PostgreSQL is not installed.
    pub fn start(durability: Durability) -> Option<Self> {
        let Some(bin) = pg_bin_dir() else {
            let msg = "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); \
                       `bash scripts/test.sh` installs Debian's postgresql package";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true: {msg}");
            }
            eprintln!("\n*** SKIP: {msg} ***\n");
            return None;
        };
        let server = Self::start_with(bin, durability)
            .unwrap_or_else(|e| panic!("starting PostgreSQL failed: {e}"));
        Some(server)
    }

    fn start_with(bin: PathBuf, durability: Durability) -> io::Result<Self> {
        let server = Self::prepare(bin, durability)?;
        run(server.command("initdb").arg("-D").arg(server.data()).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]))?;
        server.launch()?;
        Ok(server)
    }

    /// A fresh directory (owned by the cluster's owner) and a free port; nothing started.
    fn prepare(bin: PathBuf, durability: Durability) -> io::Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = tempfile::Builder::new()
            .prefix(&format!("atp-pg-{}-", COUNTER.fetch_add(1, Ordering::Relaxed)))
            .tempdir()?;
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(dir.path()))?;
        }
        let port = free_port()?;
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c max_connections=200",
            dir.path().display()
        );
        if durability == Durability::Relaxed {
            options.push_str(" -c fsync=off -c full_page_writes=off");
        }
        Ok(Self { bin, dir, port, as_postgres, options })
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the server on its data directory and waits until it accepts connections.
    fn launch(&self) -> io::Result<()> {
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-o", &self.options, "-l"])
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "60", "start"]))?;
        self.spawn_watchdog(&self.data())?;
        self.wait_ready()
    }

    /// A streaming standby of this server (`pg_basebackup -R`), started and accepting
    /// read-only connections; with PostgreSQL's default durability. It retries its connection
    /// to the primary every 500 ms, not every 5 s: under synchronous replication every commit
    /// waits for it (docs/ha.md, "Production layouts").
    pub fn start_standby(&self) -> io::Result<PgServer> {
        let mut standby = Self::prepare(self.bin.clone(), Durability::Full)?;
        standby.options.push_str(" -c wal_retrieve_retry_interval=500ms");
        run(standby
            .command("pg_basebackup")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres"])
            .arg("-D")
            .arg(standby.data())
            .args(["-R", "-X", "stream", "--no-sync", "--checkpoint=fast"]))?;
        standby.launch()?;
        Ok(standby)
    }

    /// Makes every commit wait until a standby has it (`synchronous_standby_names = '*'`), and
    /// waits until a synchronous standby is connected.
    pub fn require_synchronous_standby(&self) -> io::Result<()> {
        self.psql("ALTER SYSTEM SET synchronous_standby_names = '*'")?;
        self.psql("SELECT pg_reload_conf()")?;
        let deadline = Instant::now() + START_DEADLINE;
        while self
            .psql("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")?
            .trim()
            != "1"
        {
            if Instant::now() > deadline {
                return Err(io::Error::other("no synchronous standby connected"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Stops the server the way a crash does (`pg_ctl stop -m immediate`: no checkpoint; the
    /// next start replays the WAL).
    pub fn crash(&self) -> io::Result<()> {
        run(self.command("pg_ctl").arg("-D").arg(self.data()).args(["-m", "immediate", "stop"]))
    }

    /// A crash and a start again on the same port and data (`-m immediate` restart).
    pub fn crash_and_restart(&self) -> io::Result<()> {
        self.crash()?;
        self.launch()
    }

    /// Promotes this standby to a primary and waits until it accepts writes.
    pub fn promote(&self) -> io::Result<()> {
        run(self.command("pg_ctl").arg("-D").arg(self.data()).args(["-w", "promote"]))
    }

    /// A command of the PostgreSQL installation, as the cluster's owner.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// Stops the server once this process is gone (checked every second).
    fn spawn_watchdog(&self, data: &Path) -> io::Result<()> {
        let script = format!(
            "while [ -d /proc/{pid} ]; do sleep 1; done; {pg_ctl} -D {data} -m immediate stop",
            pid = std::process::id(),
            pg_ctl = self.bin.join("pg_ctl").display(),
            data = data.display(),
        );
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", "sh", "-c", &script]);
            c
        } else {
            let mut c = Command::new("sh");
            c.args(["-c", &script]);
            c
        };
        c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
        Ok(())
    }

    fn wait_ready(&self) -> io::Result<()> {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let status = Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres"])
                .stdout(Stdio::null())
                .status()?;
            if status.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::other("PostgreSQL did not become ready"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The cluster's data directory (every database's files and the write-ahead log).
    pub fn data_dir(&self) -> PathBuf {
        self.data()
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The connection URL of database `db` (user `postgres`, no password: the cluster trusts
    /// local connections).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs one SQL statement with `psql` on database `postgres`, returning its output.
    pub fn psql(&self, sql: &str) -> io::Result<String> {
        self.psql_in("postgres", sql)
    }

    /// Runs one SQL statement with `psql` on database `db`, returning its output (unaligned,
    /// tuples only).
    pub fn psql_in(&self, db: &str, sql: &str) -> io::Result<String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres"])
            .args(["-d", db, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "psql {sql:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// An interactive `psql` session on database `db`, for a test that holds a transaction (a
    /// lock) open while the nodes run: see [`PsqlSession`].
    pub fn session(&self, db: &str) -> io::Result<PsqlSession> {
        let mut child = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres"])
            .args(["-d", db, "-v", "ON_ERROR_STOP=1", "-q", "-At"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take().ok_or_else(|| io::Error::other("psql has no stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| io::Error::other("psql has no stdout"))?;
        Ok(PsqlSession { child, stdin, stdout: io::BufReader::new(stdout) })
    }

    /// Serves TLS with this certificate chain and key (PEM) from the next connection on
    /// (`ssl = on`, reloaded, and waited for). Plain connections are still accepted.
    pub fn enable_tls(&self, cert_pem: &str, key_pem: &str) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let cert = self.dir.path().join("server.crt");
        let key = self.dir.path().join("server.key");
        std::fs::write(&cert, cert_pem)?;
        std::fs::write(&key, key_pem)?;
        // PostgreSQL refuses a key that others may read.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
        if self.as_postgres {
            run(Command::new("chown").arg("postgres:").arg(&cert).arg(&key))?;
        }
        self.psql(&format!("ALTER SYSTEM SET ssl_cert_file = '{}'", cert.display()))?;
        self.psql(&format!("ALTER SYSTEM SET ssl_key_file = '{}'", key.display()))?;
        self.psql("ALTER SYSTEM SET ssl = on")?;
        self.psql("SELECT pg_reload_conf()")?;
        let deadline = Instant::now() + START_DEADLINE;
        while self.psql("SHOW ssl")?.trim() != "on" {
            if Instant::now() > deadline {
                return Err(io::Error::other("ssl = on was not taken up"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Creates a new, empty database and returns its name.
    pub fn create_database(&self) -> io::Result<String> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = format!("atp_test_{}", COUNTER.fetch_add(1, Ordering::Relaxed));
        self.psql(&format!("CREATE DATABASE {name}"))?;
        Ok(name)
    }

    /// The server's log so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

/// A `psql` process kept open: one database session, ended when this is dropped.
#[derive(Debug)]
pub struct PsqlSession {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: io::BufReader<std::process::ChildStdout>,
}

impl PsqlSession {
    /// Runs `sql` (one or more statements) in the session and waits until it finished; an
    /// error stops `psql` (`ON_ERROR_STOP`), which this reports as the end of its output.
    pub fn run(&mut self, sql: &str) -> io::Result<()> {
        use std::io::{BufRead, Write};
        const DONE: &str = "atp-psql-session-done";
        writeln!(self.stdin, "{sql}\nSELECT '{DONE}';")?;
        self.stdin.flush()?;
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line)? == 0 {
                return Err(io::Error::other(format!("psql ended while running {sql:?}")));
            }
            if line.trim() == DONE {
                return Ok(());
            }
        }
    }
}

impl Drop for PsqlSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn run(command: &mut Command) -> io::Result<()> {
    let out = command.output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}
