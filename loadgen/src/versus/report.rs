//! Printing comparisons: one block per server, a side-by-side table with ratios
//! Sockworks/GNS, and one `MATRIX_ROW` line that `scripts/gns-matrix.sh` collects.

use super::{Measured, Versus};

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| v.to_string())
}

fn mib(kib: Option<u64>) -> Option<String> {
    kib.map(|k| format!("{:.1}", k as f64 / 1024.0))
}

/// One server's block.
pub(super) fn print_one(v: &Versus, m: &Measured) {
    let r = &m.result;
    println!(
        "server {} <- {} clients{}: {}/{} connections, window {}, {} B {}, {:.1} s measured",
        m.server,
        v.clients.label(),
        match v.clients {
            super::Stack::Gns => format!(" ({} gns-load process(es))", v.client_procs.max(1)),
            super::Stack::Sockworks => " (in process)".to_owned(),
        },
        r.connected,
        r.connections,
        v.window,
        r.size,
        if r.reliable { "reliable" } else { "unreliable" },
        r.secs
    );
    let rate = |r: Option<i32>| r.map_or("default".to_owned(), |r| r.to_string());
    println!(
        "  send rates  Sockworks min {} max {}; GNS min {} max {} (B/s)",
        rate(v.send_rate_min),
        rate(v.send_rate_max),
        rate(v.gns_send_rate_min),
        rate(v.send_rate_max)
    );
    if let Some(age) = v.unreliable_max_age_ms {
        println!("  Sockworks   UnreliableMaxAge {age} ms");
    }
    println!(
        "  throughput  {:>10.0} msgs/s   {:.1} MB/s payload each way",
        r.msgs_per_sec, r.mb_per_sec
    );
    println!(
        "  rtt us      p50 {}  p99 {}  p99.9 {}  max {}",
        r.p50_us, r.p99_us, r.p999_us, r.max_us
    );
    if let Some(per) = m.cpu_us_per_handshake() {
        println!(
            "  connect     {} handshakes in {:.2} s ({:.0}/s): server {per:.0} us CPU per handshake (all threads, idle time included)",
            r.connected,
            m.connect_secs,
            r.connected as f64 / m.connect_secs.max(1e-9)
        );
    }
    match (m.server_cpu, m.cpu_us_per_msg()) {
        (Some(cpu), Some(per)) => println!(
            "  server cpu  {cpu:.2} s over {:.2} s (utime+stime, all threads): {per:.2} us per message",
            m.cpu_interval
        ),
        _ => println!("  server cpu  n/a (not our process)"),
    }
    println!("  server rss  peak {} MiB (VmHWM)", opt(mib(m.rss_kib)));
    println!(
        "  udp drops   {} datagrams dropped by full receive buffers (system-wide RcvbufErrors)",
        opt(m.udp_drops)
    );
    let c = &r.counts;
    println!(
        "  check       sent {} received {} lost {} dup {} reordered {} corrupt {} late {} -> {}",
        c.sent,
        c.received,
        c.lost,
        c.dup,
        c.reordered,
        c.corrupt,
        c.late,
        if r.passed() { "ok" } else { "FAILED" }
    );
}

fn ratio(sw: f64, gns: f64) -> String {
    if gns > 0.0 && sw.is_finite() {
        format!("{:.2}x", sw / gns)
    } else {
        "n/a".to_owned()
    }
}

fn num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The side-by-side table of a GNS and a Sockworks run, and its `MATRIX_ROW` line.
pub(crate) fn print_compare(v: &Versus, gns: &Measured, sw: &Measured) {
    let (g, s) = (&gns.result, &sw.result);
    let drops = |m: &Measured| m.udp_drops.map_or(f64::NAN, |d| d as f64);
    let per_hs = |m: &Measured| m.cpu_us_per_handshake().unwrap_or(f64::NAN);
    let rows: [(&str, f64, f64); 11] = [
        ("msgs/s", g.msgs_per_sec, s.msgs_per_sec),
        ("payload MB/s", g.mb_per_sec, s.mb_per_sec),
        ("RTT p50 us", g.p50_us as f64, s.p50_us as f64),
        ("RTT p99 us", g.p99_us as f64, s.p99_us as f64),
        ("RTT p99.9 us", g.p999_us as f64, s.p999_us as f64),
        ("RTT max us", g.max_us as f64, s.max_us as f64),
        (
            "server CPU us/msg",
            gns.cpu_us_per_msg().unwrap_or(f64::NAN),
            sw.cpu_us_per_msg().unwrap_or(f64::NAN),
        ),
        (
            "server peak RSS MiB",
            gns.rss_kib.map_or(f64::NAN, |k| k as f64 / 1024.0),
            sw.rss_kib.map_or(f64::NAN, |k| k as f64 / 1024.0),
        ),
        ("UDP receive-buffer drops", drops(gns), drops(sw)),
        ("connect phase s", gns.connect_secs, sw.connect_secs),
        ("server CPU us/handshake", per_hs(gns), per_hs(sw)),
    ];
    println!();
    println!(
        "| {} clients | GNS server | Sockworks server | Sockworks/GNS |",
        v.clients.label()
    );
    println!("|---|---|---|---|");
    for (name, a, b) in rows {
        println!("| {name} | {} | {} | {} |", num(a), num(b), ratio(b, a));
    }
    let bad = |r: &loadgen::load::result::LoadResult| {
        let c = &r.counts;
        format!("{}/{}/{}/{}", c.lost, c.dup, c.reordered, c.corrupt)
    };
    println!("| lost/dup/reordered/corrupt | {} | {} | |", bad(g), bad(s));
    let size = if v.size >= 1024 && v.size % 1024 == 0 {
        format!("{} KiB", v.size / 1024)
    } else {
        format!("{} B", v.size)
    };
    let mode = if v.reliable { "reliable" } else { "unreliable" };
    let cpu = |m: &Measured| m.cpu_us_per_msg().map_or_else(|| "n/a".to_owned(), num);
    println!(
        "MATRIX_ROW | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} / {} | {} / {} | {} / {} | {} | {} / {} | {} / {} | {} / {} |",
        v.connections,
        size,
        mode,
        v.window,
        num(g.msgs_per_sec),
        num(s.msgs_per_sec),
        ratio(s.msgs_per_sec, g.msgs_per_sec),
        g.p50_us,
        s.p50_us,
        g.p99_us,
        s.p99_us,
        g.p999_us,
        s.p999_us,
        cpu(gns),
        cpu(sw),
        ratio(
            sw.cpu_us_per_msg().unwrap_or(f64::NAN),
            gns.cpu_us_per_msg().unwrap_or(f64::NAN)
        ),
        opt(mib(gns.rss_kib)),
        opt(mib(sw.rss_kib)),
        bad(g),
        bad(s),
        opt(gns.udp_drops),
        opt(sw.udp_drops)
    );
}

/// The header of the `MATRIX_ROW` table.
pub(crate) const MATRIX_HEADER: &str = "| conns | size | mode | in flight | GNS msgs/s | Sockworks msgs/s | SW/GNS | RTT p50 us GNS / SW | RTT p99 us GNS / SW | RTT p99.9 us GNS / SW | server CPU us/msg GNS / SW | CPU SW/GNS | peak RSS MiB GNS / SW | lost/dup/reord/corrupt GNS / SW | UDP rcvbuf drops GNS / SW |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|";
