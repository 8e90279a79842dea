//! Network tests in a private network namespace: the test re-runs itself under `unshare -n`,
//! where only a loopback interface exists, and shapes that loopback with nftables (this kernel
//! has no netem, but nftables can drop at random, police a rate and count bytes). Nothing
//! leaves the namespace, and the machine's own loopback is never touched.

use std::io::Write;
use std::process::{Command, Stdio};

/// Set in the child that runs inside the namespace.
const INSIDE: &str = "HEARTH_TEST_IN_NETNS";

/// Call first in a network test named `test_name`. Outside a namespace it runs this very test
/// again in a new one, fails if that run fails, and returns `false` (the caller returns). In
/// the namespace it brings loopback up and returns `true`: run the test body.
///
/// Needs root (or CAP_SYS_ADMIN) for `unshare -n`, plus `ip` and `nft`; `scripts/test`
/// installs them. Without them the test fails with a message saying so, never passes silently.
pub fn enter(test_name: &str) -> bool {
    if std::env::var_os(INSIDE).is_some() {
        run("ip", &["link", "set", "lo", "up"]);
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let status = Command::new("unshare")
        .arg("--net")
        .arg("--")
        .arg(exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .status()
        .expect("running unshare (util-linux)");
    assert!(
        status.success(),
        "{test_name} failed inside its network namespace ({status}); `unshare --net` needs root"
    );
    false
}

/// A runtime for the test body, made inside the namespace so that all its threads are too.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Applies an nftables script (`nft -f -`).
pub fn nft(script: &str) {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running nft (package nftables)");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(script.as_bytes())
        .expect("writing the nft script");
    let out = child.wait_with_output().expect("nft finished");
    assert!(
        out.status.success(),
        "nft refused:\n{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The bytes a named nftables counter in table `inet <table>` has counted.
pub fn counter_bytes(table: &str, counter: &str) -> u64 {
    let out = Command::new("nft")
        .args(["list", "counter", "inet", table, counter])
        .output()
        .expect("running nft");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .skip_while(|w| *w != "bytes")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte count in {text:?}"))
}
