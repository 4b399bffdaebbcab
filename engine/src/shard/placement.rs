//! CPU placement: pins a shard thread to one core, so its caches, its socket's softirq work
//! (with steering) and its timers stay on that core.

/// Cores this process may run on.
pub fn available_cores() -> usize {
    core_affinity::get_core_ids().map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |ids| ids.len().max(1),
    )
}

/// Pins the calling thread to the `index`-th available core (modulo the count). Returns
/// whether pinning succeeded (it may not in restricted containers; the shard runs anyway).
pub fn pin_current_thread(index: usize) -> bool {
    match core_affinity::get_core_ids() {
        Some(ids) if !ids.is_empty() => core_affinity::set_for_current(ids[index % ids.len()]),
        _ => false,
    }
}
