//! `loadgen --mode churn` end to end: a few seconds, a few dozen connections turning over,
//! against the `--serve` child it spawns; the run must report zero loss and write its series
//! and plot.

use std::process::Command;

#[test]
fn a_short_churn_loses_nothing() {
    let dir = std::env::temp_dir().join(format!("loadgen-churn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (csv, png) = (dir.join("s.csv"), dir.join("p.png"));
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "--mode",
            "churn",
            "--connections",
            "32",
            "--exchange",
            "10",
            "--message-size",
            "200",
            "--seconds",
            "3",
            "--max-seconds",
            "30",
        ])
        .arg("--series")
        .arg(&csv)
        .arg("--plot")
        .arg(&png)
        .output()
        .expect("run loadgen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let check = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("check:"))
        .expect("a check line");
    assert!(check.contains(" 0 lost, 0 connections failed"), "{check}");
    assert!(stdout.contains("verdict: RSS"), "{stdout}");
    let series = std::fs::read_to_string(&csv).expect("series");
    assert!(series.lines().count() >= 3, "{series}");
    let bytes = std::fs::read(&png).expect("plot");
    assert_eq!(&bytes[1..4], b"PNG");
    let _ = std::fs::remove_dir_all(&dir);
}
