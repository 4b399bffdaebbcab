//! Building and running the programs of `capi/c` against a `libGameNetworkingSockets.so`.
//!
//! ```text
//!   library under test   SOCKWORKS_CAPI_LIB_DIR, else ours: the newest .so in
//!                        <target>/<profile>/ or <target>/<profile>/deps/ (built if missing)
//!   real Valve GNS       SOCKWORKS_GNS_REAL_LIB_DIR, else <target>/gns-real/, made by
//!                        capi/c/make-real-gns-so.sh from game-networking-sockets-sys' archive
//!   GNS headers          SOCKWORKS_GNS_INCLUDE, else that build's out/include, else the crate
//!                        source in the cargo registry
//!   build outputs        <target>/capi-programs/<library>/   (cc and c++ from PATH, or CC/CXX)
//! ```
//!
//! `<target>/<profile>` is where this test executable lives. Each program is linked with an
//! rpath to its library, so swapping the library needs no environment. Every run is bounded:
//! a watchdog kills a child that outlives its limit, and waits for output lines are bounded
//! too. Ports are picked by binding a UDP socket to 127.0.0.1:0 and dropping it; a server that
//! loses the race reports `error=listen` and is started again on another port.

#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "test helpers: a poisoned lock is a failed test"
)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

/// The longest any one program may run before the watchdog kills it.
pub(crate) const PROCESS_LIMIT: Duration = Duration::from_secs(30);
/// The programs' own timeout (ms), below [`PROCESS_LIMIT`] so they report before being killed.
pub(crate) const PROGRAM_TIMEOUT_MS: &str = "20000";

/// `capi/c`, where the programs' sources live.
pub(crate) fn sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("c")
}

/// `<target>/<profile>`: the directory above the `deps/` holding this test executable.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe
        .parent()
        .expect("the test executable lives in a directory");
    deps.parent()
        .expect("deps/ lives in the profile directory")
        .to_path_buf()
}

/// The cargo target directory (the parent of the profile directory).
pub(crate) fn target_dir() -> PathBuf {
    profile_dir()
        .parent()
        .expect("the profile directory has a parent")
        .to_path_buf()
}

fn newest(paths: impl IntoIterator<Item = PathBuf>) -> Option<PathBuf> {
    paths
        .into_iter()
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .max_by_key(|(modified, _)| *modified)
        .map(|(_, p)| p)
}

/// The directory of the library under test (see the module documentation).
pub(crate) fn lib_under_test() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("SOCKWORKS_CAPI_LIB_DIR") {
            // Absolute, as it becomes the programs' rpath.
            let dir = std::fs::canonicalize(&dir).unwrap_or_else(|_| PathBuf::from(dir));
            assert!(
                dir.join("libGameNetworkingSockets.so").is_file(),
                "SOCKWORKS_CAPI_LIB_DIR={} holds no libGameNetworkingSockets.so",
                dir.display()
            );
            return dir;
        }
        let profile = profile_dir();
        let find = || {
            newest(
                [profile.clone(), profile.join("deps")]
                    .map(|d| d.join("libGameNetworkingSockets.so")),
            )
        };
        let so = find().unwrap_or_else(|| {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut build = Command::new(cargo);
            build
                .args(["build", "-p", "sockworks-capi", "--target-dir"])
                .arg(target_dir());
            // The profile whose directory this executable is in (`debug` is `dev`).
            match profile.file_name().and_then(|p| p.to_str()) {
                Some("debug") | None => {}
                Some(name) => {
                    build.args(["--profile", name]);
                }
            }
            let status = build
                .status()
                .expect("running cargo build -p sockworks-capi");
            assert!(status.success(), "cargo build -p sockworks-capi failed");
            find().expect("cargo build -p sockworks-capi made no libGameNetworkingSockets.so")
        });
        so.parent().expect("a file has a parent").to_path_buf()
    })
    .clone()
}

/// The directory of Valve's real library, made by `make-real-gns-so.sh` when not given.
pub(crate) fn real_gns() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("SOCKWORKS_GNS_REAL_LIB_DIR") {
            return std::fs::canonicalize(&dir).unwrap_or_else(|_| PathBuf::from(dir));
        }
        let target = target_dir();
        let out = Command::new("bash")
            .arg(sources().join("make-real-gns-so.sh"))
            .arg(&target)
            .output()
            .expect("running bash capi/c/make-real-gns-so.sh");
        assert!(
            out.status.success(),
            "make-real-gns-so.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.join("gns-real")
    })
    .clone()
}

/// The directory holding `steam/steamnetworkingsockets.h` (see the module documentation).
fn gns_include() -> PathBuf {
    if let Some(dir) = std::env::var_os("SOCKWORKS_GNS_INCLUDE") {
        return PathBuf::from(dir);
    }
    let profile_dir_builds = std::fs::read_dir(profile_dir().join("build"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("game-networking-sockets-sys-")
        })
        .map(|e| e.path().join("out/include/GameNetworkingSockets"));
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let registry = cargo_home
        .map(|h| h.join("registry/src"))
        .and_then(|r| std::fs::read_dir(r).ok())
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|index| {
            std::fs::read_dir(index.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("game-networking-sockets-sys-")
        })
        .map(|e| e.path().join("thirdparty/GameNetworkingSockets/include"));
    newest(
        profile_dir_builds
            .chain(registry)
            .filter(|d| d.join("steam/steamnetworkingsockets.h").is_file()),
    )
    .expect(
        "GNS headers not found: set SOCKWORKS_GNS_INCLUDE, or build sockworks-interop \
         (game-networking-sockets-sys installs them)",
    )
}

/// The programs of `capi/c`, built against one library.
#[derive(Debug, Clone)]
pub(crate) struct Programs {
    /// The directory of the `libGameNetworkingSockets.so` they load.
    pub(crate) lib_dir: PathBuf,
    /// `echo_flat`: the C echo server.
    pub(crate) echo_flat: PathBuf,
    /// `chat`: the C++ chat server and client.
    pub(crate) chat: PathBuf,
    /// `misuse`: the C program calling the API wrongly.
    pub(crate) misuse: PathBuf,
    /// `p2p_self`: the C program connecting to itself over P2P custom signaling.
    pub(crate) p2p_self: PathBuf,
}

impl Programs {
    /// `echo_client.py` invoked with this library: `python3 echo_client.py <lib> ...args`.
    pub(crate) fn python_client(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("python3");
        cmd.arg(sources().join("echo_client.py"))
            .arg(self.lib_dir.join("libGameNetworkingSockets.so"))
            .args(args);
        cmd
    }
}

/// Builds (once per test process and library) the programs against the library in `lib_dir`.
/// A missing compiler fails the test: CI installs build-essential.
pub(crate) fn programs(lib_dir: &Path) -> Programs {
    static BUILT: OnceLock<Mutex<HashMap<PathBuf, Programs>>> = OnceLock::new();
    // A test that panicked while compiling poisons the lock; the next one compiles again and
    // reports the same error itself.
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(p) = built.get(lib_dir) {
        return p.clone();
    }
    let tag: String = lib_dir
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let out = target_dir().join("capi-programs").join(tag);
    std::fs::create_dir_all(&out).expect("creating the build directory");
    let src = sources();
    let link = |cmd: &mut Command| {
        cmd.arg(format!("-L{}", lib_dir.display()))
            .arg("-lGameNetworkingSockets")
            .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
            .arg("-Wl,--disable-new-dtags");
    };
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let c_program = |name: &str| {
        let mut cmd = Command::new(&cc);
        cmd.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1"])
            .arg(src.join(format!("{name}.c")));
        link(&mut cmd);
        compile(cmd, &out.join(name))
    };
    let programs = Programs {
        lib_dir: lib_dir.to_path_buf(),
        echo_flat: c_program("echo_flat"),
        misuse: c_program("misuse"),
        p2p_self: c_program("p2p_self"),
        chat: {
            let mut cmd = Command::new(&cxx);
            cmd.args(["-std=c++17", "-Wall", "-O1"])
                .arg(format!("-I{}", gns_include().display()))
                .arg(src.join("chat.cpp"));
            link(&mut cmd);
            compile(cmd, &out.join("chat"))
        },
    };
    built.insert(lib_dir.to_path_buf(), programs.clone());
    programs
}

/// Runs a compiler command with `-o <output>` (through a temporary name, so a concurrent
/// test process never runs half a file).
fn compile(mut cmd: Command, output: &Path) -> PathBuf {
    let tmp = output.with_extension(format!("tmp{}", std::process::id()));
    cmd.arg("-o").arg(&tmp);
    let result = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} (install build-essential): {e}"));
    assert!(
        result.status.success(),
        "compiling {} failed: {cmd:?}\n{}",
        output.display(),
        String::from_utf8_lossy(&result.stderr)
    );
    std::fs::rename(&tmp, output).expect("renaming the compiled program");
    output.to_path_buf()
}

/// A free UDP port on 127.0.0.1 (free when this returns; a server may still lose it).
pub(crate) fn free_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    socket
        .local_addr()
        .expect("a bound socket's address")
        .port()
}

/// A running program: its stdout line by line, stderr kept whole, and a watchdog.
pub(crate) struct Running {
    name: String,
    child: Arc<Mutex<Child>>,
    lines: Receiver<String>,
    stdout: Vec<String>,
    stderr: thread::JoinHandle<String>,
    watchdog_done: mpsc::Sender<()>,
}

/// What a finished program said.
#[derive(Debug)]
pub(crate) struct Output {
    /// The program's name, for messages.
    pub(crate) name: String,
    /// Exit status code (`None`: killed by a signal, e.g. the watchdog).
    pub(crate) code: Option<i32>,
    /// Every stdout line.
    pub(crate) stdout: Vec<String>,
    /// All of stderr.
    pub(crate) stderr: String,
}

impl Running {
    /// Starts `cmd`, killed after [`PROCESS_LIMIT`] if still running.
    pub(crate) fn spawn(name: &str, mut cmd: Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        });
        let child = Arc::new(Mutex::new(child));
        let (watchdog_done, done) = mpsc::channel::<()>();
        let victim = Arc::clone(&child);
        thread::spawn(move || {
            // Killed when over time, or when the test dropped it without `finish` (a panic).
            if done.recv_timeout(PROCESS_LIMIT).is_err() {
                let _ = victim.lock().unwrap().kill();
            }
        });
        Running {
            name: name.to_owned(),
            child,
            lines,
            stdout: Vec::new(),
            stderr,
            watchdog_done,
        }
    }

    /// Waits (at most [`PROCESS_LIMIT`]) for a stdout line starting with `prefix`; `None` if
    /// the program ended first.
    pub(crate) fn wait_line(&mut self, prefix: &str) -> Option<String> {
        while let Some(line) = self.next_line() {
            if line.starts_with(prefix) {
                return Some(line);
            }
        }
        None
    }

    /// The next stdout line, `None` once stdout is closed. The watchdog bounds the wait: a
    /// killed program closes its stdout.
    fn next_line(&mut self) -> Option<String> {
        let line = self.lines.recv().ok()?;
        self.stdout.push(line.clone());
        Some(line)
    }

    /// Waits for the program to end (the watchdog bounds it) and collects its output.
    pub(crate) fn finish(mut self) -> Output {
        while self.next_line().is_some() {}
        let _ = self.watchdog_done.send(());
        let status = self
            .child
            .lock()
            .unwrap()
            .wait()
            .expect("waiting for a child");
        let stderr = self.stderr.join().unwrap_or_default();
        Output {
            name: self.name,
            code: status.code(),
            stdout: self.stdout,
            stderr,
        }
    }
}

impl Output {
    /// The `key=value` fields of the `RESULT <program>` line; panics with the whole output
    /// when there is none.
    pub(crate) fn result(&self, program: &str) -> HashMap<String, String> {
        let prefix = format!("RESULT {program} ");
        let line = self
            .stdout
            .iter()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("{}: no `{prefix}` line\n{self}", self.name));
        line[prefix.len()..]
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "--- {} (exit {:?}) stdout:", self.name, self.code)?;
        for line in &self.stdout {
            writeln!(f, "{line}")?;
        }
        writeln!(f, "--- {} stderr:\n{}", self.name, self.stderr)
    }
}

/// Starts a server `cmd(port)` on a free port and waits for its `READY` line, trying other
/// ports while it reports `error=listen` (another process took the port first).
pub(crate) fn start_server(name: &str, cmd: impl Fn(u16) -> Command) -> (Running, u16) {
    let mut failures = Vec::new();
    for _ in 0..5 {
        let port = free_port();
        let mut server = Running::spawn(name, cmd(port));
        if server.wait_line("READY ").is_some() {
            return (server, port);
        }
        let out = server.finish();
        assert!(
            out.stdout.iter().any(|l| l.contains("error=listen")),
            "{name} did not start:\n{out}"
        );
        failures.push(out.to_string());
    }
    panic!(
        "{name} could not listen on 5 free ports:\n{}",
        failures.join("\n")
    );
}
