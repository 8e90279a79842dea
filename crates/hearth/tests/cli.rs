//! The `hearth` binary as an operator runs it: configuration from flags and environment, the
//! "listening on" line, and a clean exit on SIGTERM (what `docker stop` sends).

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn hearth() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.env_remove("HEARTH_LISTEN")
        .env_remove("HEARTH_PUBLIC_URL")
        .env_remove("HEARTH_RTC_IP")
        .env_remove("HEARTH_PUBLIC_IP")
        .env_remove("HEARTH_UDP_PORTS")
        .env_remove("HEARTH_DATA_DIR")
        .env_remove("HEARTH_API_KEY")
        .env("RUST_LOG", "warn");
    cmd
}

/// Starts the binary and returns it with the URL it printed.
fn start(cmd: &mut Command) -> (Child, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn hearth");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("`listening on` line within 20 s");
    (child, url)
}

fn http_get(url: &str, path: &str) -> String {
    let host = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn serves_on_the_configured_address_and_stops_cleanly_on_sigterm() {
    let data = std::env::temp_dir().join(format!("hearth-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let (mut child, url) = start(
        hearth()
            .env("HEARTH_LISTEN", "127.0.0.1:0")
            .env("HEARTH_DATA_DIR", &data)
            .args(["--rtc-ip", "127.0.0.1", "--udp-ports", "47400-47420"]),
    );
    assert!(
        data.join("hearth.db").exists(),
        "the database lives in the data directory"
    );
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let health = http_get(&url, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let page = http_get(&url, "/");
    assert!(
        page.contains("<script"),
        "the embedded web client is served"
    );
    // The binary's allocator counts the bytes in use: the number that tells a leak from
    // pages kept for reuse.
    let metrics = http_get(&url, "/metrics");
    let heap: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hearth_heap_allocated_bytes "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no hearth_heap_allocated_bytes in\n{metrics}"));
    assert!(heap > 1e5, "a running server has heap in use: {heap}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = wait_exit(&mut child, Duration::from_secs(15));
    if status.is_none() {
        let _ = child.kill();
    }
    let status = status.expect("hearth exits after SIGTERM");
    assert!(status.success(), "clean exit, got {status}");
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn bad_configuration_is_refused_with_a_clear_message() {
    for args in [
        vec!["--udp-ports", "5000-4000"],
        vec!["--listen", "not-an-address"],
        vec!["--rtc-ip", "999.1.1.1"],
    ] {
        let output = hearth().args(&args).output().expect("run hearth");
        assert!(!output.status.success(), "{args:?} accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("invalid value"), "{args:?}: {stderr}");
    }
}
