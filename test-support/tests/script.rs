//! PyScript against a real Python echo script (`tests/py/echo.py`).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use gateway_test_support::script::PyScript;

fn echo(args: &[&str]) -> PyScript {
    PyScript::start(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/echo.py"),
        args,
    )
}

#[tokio::test]
async fn args_reach_the_script_and_lines_come_back_in_order() {
    let mut script = echo(&["a", "b"]);
    assert_eq!(script.label(), "echo.py");
    assert!(script.pid().is_some());
    assert_eq!(script.next().await, "READY a b");
    script.send("one").await;
    script.send("two").await;
    let (first_at, first) = script.next_at().await;
    let (second_at, second) = script.line_at(|l| l.starts_with("ECHO")).await;
    assert_eq!((first.as_str(), second.as_str()), ("ECHO one", "ECHO two"));
    assert!(first_at <= second_at);
}

#[tokio::test]
async fn line_skips_lines_that_do_not_match() {
    let mut script = echo(&[]);
    for word in ["x", "y", "z"] {
        script.send(word).await;
    }
    assert_eq!(script.line(|l| l.ends_with('z')).await, "ECHO z");
    script.send("last").await;
    assert_eq!(script.next().await, "ECHO last");
}

#[tokio::test]
async fn drain_returns_what_arrived_without_waiting() {
    let mut script = echo(&[]);
    script.line(|l| l == "READY").await;
    assert!(script.drain().is_empty());
    script.send("p").await;
    script.send("q").await;
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while got.len() < 2 {
            got.extend(script.drain());
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    assert_eq!(got, ["ECHO p", "ECHO q"]);
}

#[tokio::test]
#[should_panic(expected = "echo.py output timed out")]
async fn a_missing_line_times_out_naming_the_script() {
    let mut script = echo(&[]).with_wait(Duration::from_millis(300));
    script.line(|l| l == "never").await;
}

#[tokio::test]
#[should_panic(expected = "echo.py exited")]
async fn an_exited_script_is_reported() {
    let mut script = echo(&[]);
    script.send("exit").await;
    script.line(|l| l == "never").await;
}

#[tokio::test]
#[should_panic(expected = "echo.py exited")]
async fn kill_ends_the_script() {
    let mut script = echo(&[]);
    script.line(|l| l == "READY").await;
    script.kill().await;
    assert!(script.pid().is_none());
    script.next().await;
}

#[tokio::test]
async fn unbuffered_python_delivers_unflushed_lines() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/echo.py");
    let mut script = PyScript::start_unbuffered(&script, &["--no-flush"]);
    assert_eq!(script.next().await, "READY --no-flush");
    script.send("u").await;
    assert_eq!(script.next().await, "ECHO u");
}
