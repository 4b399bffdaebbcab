//! Tests for the timer wheel: hand-picked edge cases, then a proptest that drives the wheel and
//! a `BTreeSet<(Timestamp, u32)>` model (the endpoint's current queue) with the same operations.

use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;

use super::*;

fn us(v: u64) -> Timestamp {
    Timestamp::from_micros(v)
}

fn ms(v: u64) -> Timestamp {
    Timestamp::from_micros(v * 1000)
}

fn pop(w: &mut TimerWheel, now: Timestamp) -> Vec<(Timestamp, u32)> {
    let mut due = Vec::new();
    w.pop_due(now, &mut due);
    due
}

#[test]
fn pops_in_deadline_then_id_order_with_microsecond_precision() {
    let mut w = TimerWheel::new(ms(0));
    w.insert(us(1_500), 7);
    w.insert(us(1_499), 9);
    w.insert(us(1_500), 3);
    w.insert(ms(60_000), 1);
    assert_eq!(w.first(), Some(us(1_499)));
    assert_eq!(pop(&mut w, us(1_498)), vec![]);
    assert_eq!(pop(&mut w, us(1_499)), vec![(us(1_499), 9)]);
    assert_eq!(w.first(), Some(us(1_500)));
    assert_eq!(pop(&mut w, us(1_500)), vec![(us(1_500), 3), (us(1_500), 7)]);
    assert_eq!(w.first(), Some(ms(60_000)));
    assert_eq!(pop(&mut w, ms(59_999)), vec![]);
    assert_eq!(pop(&mut w, ms(70_000)), vec![(ms(60_000), 1)]);
    assert!(w.is_empty() && w.first().is_none());
}

#[test]
fn insert_replaces_and_remove_returns_the_deadline() {
    let mut w = TimerWheel::new(ms(0));
    assert_eq!(w.insert(ms(5), 1), None);
    assert_eq!(w.insert(ms(9), 1), Some(ms(5)), "one deadline per id");
    assert_eq!(w.len(), 1);
    assert_eq!(w.deadline(1), Some(ms(9)));
    w.insert(ms(2), 2);
    assert_eq!(w.first(), Some(ms(2)));
    assert_eq!(w.remove(2), Some(ms(2)));
    assert_eq!(w.remove(2), None);
    assert_eq!(w.first(), Some(ms(9)), "recomputed after the earliest left");
    assert_eq!(pop(&mut w, ms(8)), vec![]);
    assert_eq!(pop(&mut w, ms(9)), vec![(ms(9), 1)]);
}

#[test]
fn past_deadlines_and_a_clock_going_back_are_still_exact() {
    let mut w = TimerWheel::new(ms(100));
    w.insert(ms(3), 1); // before the wheel's clock
    w.insert(ms(100) + std::time::Duration::from_micros(700), 2);
    assert_eq!(w.first(), Some(ms(3)));
    assert_eq!(
        pop(&mut w, ms(2)),
        vec![],
        "an earlier now pops nothing early"
    );
    assert_eq!(pop(&mut w, ms(3)), vec![(ms(3), 1)]);
    assert_eq!(pop(&mut w, us(100_699)), vec![]);
    assert_eq!(pop(&mut w, us(100_700)), vec![(us(100_700), 2)]);
}

#[test]
fn far_deadlines_cascade_down_every_level() {
    let mut w = TimerWheel::new(Timestamp::ZERO);
    let far = [
        u64::MAX,
        u64::MAX - 1,
        1 << 50,
        1 << 40,
        1 << 30,
        1 << 20,
        1 << 12,
    ];
    for (i, &t) in far.iter().enumerate() {
        w.insert(us(t), i as u32);
    }
    let mut sorted: Vec<(Timestamp, u32)> = far
        .iter()
        .enumerate()
        .map(|(i, &t)| (us(t), i as u32))
        .collect();
    sorted.sort();
    assert_eq!(w.first(), Some(sorted[0].0));
    let mut got = Vec::new();
    for &(t, _) in &sorted {
        w.pop_due(t, &mut got);
    }
    assert_eq!(got, sorted);
    assert!(w.is_empty());
}

#[test]
fn many_connections_churn_matches_the_model() {
    // 10^4 connections rescheduled 1 ms .. 60 s ahead while time advances 250 µs a step.
    let mut w = TimerWheel::new(Timestamp::ZERO);
    let mut model = BTreeSet::new();
    let mut deadlines = HashMap::new();
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut now = 0;
    for step in 0..2_000u64 {
        now += 250;
        for _ in 0..20 {
            let id = (rnd() % 10_000) as u32;
            let t = us(now + 1_000 + rnd() % 60_000_000);
            if let Some(old) = deadlines.insert(id, t) {
                model.remove(&(old, id));
            }
            model.insert((t, id));
            w.insert(t, id);
        }
        let mut want = Vec::new();
        while let Some(&(t, id)) = model.first() {
            if t > us(now) {
                break;
            }
            model.pop_first();
            deadlines.remove(&id);
            want.push((t, id));
        }
        assert_eq!(pop(&mut w, us(now)), want, "step {step}");
        assert_eq!(w.first(), model.first().map(|e| e.0));
        assert_eq!(w.len(), model.len());
    }
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u32, u64),
    Remove(u32),
    Advance(u64),
    First,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..64u32, 0..70_000_000u64).prop_map(|(id, d)| Op::Insert(id, d)),
        2 => (0..64u32).prop_map(Op::Remove),
        3 => prop_oneof![0..3_000u64, 0..100_000u64, 0..70_000_000u64].prop_map(Op::Advance),
        1 => Just(Op::First),
    ]
}

proptest! {
    #[test]
    fn behaves_like_a_btreeset(start in 0..u64::MAX / 2, ops in prop::collection::vec(op(), 1..200)) {
        let mut w = TimerWheel::new(us(start));
        let mut model: BTreeSet<(Timestamp, u32)> = BTreeSet::new();
        let mut by_id: HashMap<u32, Timestamp> = HashMap::new();
        let mut now = start;
        for op in ops {
            match op {
                Op::Insert(id, ahead) => {
                    // Some deadlines in the past too (up to 5 s), like a connection already late.
                    let t = us((now + ahead).saturating_sub(5_000_000));
                    let old = by_id.insert(id, t);
                    if let Some(old) = old {
                        model.remove(&(old, id));
                    }
                    model.insert((t, id));
                    prop_assert_eq!(w.insert(t, id), old);
                }
                Op::Remove(id) => {
                    let old = by_id.remove(&id);
                    if let Some(old) = old {
                        model.remove(&(old, id));
                    }
                    prop_assert_eq!(w.remove(id), old);
                }
                Op::Advance(d) => {
                    now += d;
                    let mut want = Vec::new();
                    while let Some(&(t, id)) = model.first() {
                        if t > us(now) {
                            break;
                        }
                        model.pop_first();
                        by_id.remove(&id);
                        want.push((t, id));
                    }
                    prop_assert_eq!(pop(&mut w, us(now)), want);
                }
                Op::First => {}
            }
            prop_assert_eq!(w.first(), model.first().map(|e| e.0));
            prop_assert_eq!(w.len(), model.len());
        }
    }
}
