use super::*;

const KEY: [u8; 32] = [3; 32];

fn global(a: &Allocation) -> bool {
    fake_ip_type(a.ip) == FakeIpType::GlobalIpv4
        && a.ports.iter().all(|&p| p > 1024)
        && a.ports
            .iter()
            .enumerate()
            .all(|(i, p)| !a.ports[..i].contains(p))
}

#[test]
fn the_same_identity_gets_the_same_address_and_ports_again() {
    let mut t = FakeIpTable::new(10, KEY);
    let a = t.allocate("str:alice", 2).unwrap().clone();
    assert!(global(&a), "{a:?}");
    assert_eq!(a.ports.len(), 2);
    assert_eq!(t.allocate("str:alice", 2).unwrap(), &a);
    // Fewer ports: the first ones of the same allocation.
    assert_eq!(t.allocate("str:alice", 1).unwrap().ports, a.ports);
    // More ports: the allocation grows, the first ones stay.
    let grown = t.allocate("str:alice", 4).unwrap().clone();
    assert_eq!(grown.ip, a.ip);
    assert_eq!(grown.ports[..2], a.ports[..]);
    assert!(global(&grown) && grown.ports.len() == 4);
    assert_eq!(t.len(), 1);
}

#[test]
fn identities_get_distinct_addresses_and_owners_resolve_by_address_and_port() {
    let mut t = FakeIpTable::new(100, KEY);
    let mut seen = std::collections::HashSet::new();
    for i in 0..100 {
        let id = format!("str:peer-{i}");
        let a = t.allocate(&id, 1 + i % 4).unwrap().clone();
        assert!(global(&a));
        assert!(seen.insert(a.ip), "address handed out twice");
        for &p in &a.ports {
            assert_eq!(
                t.owner(SocketAddrV4::new(a.ip, p)).map(|s| &**s),
                Some(&*id)
            );
        }
        let unused = (1025..).find(|p| !a.ports.contains(p)).unwrap();
        assert_eq!(t.owner(SocketAddrV4::new(a.ip, unused)), None);
    }
    assert_eq!(t.owner("169.254.0.1:2000".parse().unwrap()), None);
}

#[test]
fn the_cap_refuses_new_identities_but_not_known_ones() {
    let mut t = FakeIpTable::new(2, KEY);
    t.allocate("str:a", 1).unwrap();
    t.allocate("str:b", 1).unwrap();
    assert_eq!(t.allocate("str:c", 1), Err(AllocError::Full));
    assert!(
        t.allocate("str:a", 4).is_ok(),
        "growing is not a new identity"
    );
    assert_eq!(t.allocate("str:a", 0), Err(AllocError::BadPortCount));
    assert_eq!(t.allocate("str:a", 5), Err(AllocError::BadPortCount));
    assert_eq!(FakeIpTable::new(usize::MAX, KEY).max(), GLOBAL_CAPACITY);
}

#[test]
fn a_full_range_is_found_by_scanning_after_the_probes() {
    // Every address taken but one: probing alone would rarely find it.
    let mut t = FakeIpTable::new(GLOBAL_CAPACITY, KEY);
    let base = u32::from(GLOBAL_MIN);
    let free = Ipv4Addr::from(base + 12_345);
    for i in 0..GLOBAL_CAPACITY as u32 {
        let ip = Ipv4Addr::from(base + i);
        if ip != free {
            let id: Arc<str> = Arc::from(format!("str:x{i}"));
            t.by_ip.insert(ip, id.clone());
            t.by_identity.insert(
                id,
                Allocation {
                    ip,
                    ports: vec![2000],
                    changed: 0,
                },
            );
        }
    }
    assert_eq!(t.allocate("str:last", 1).unwrap().ip, free);
    assert_eq!(t.allocate("str:one-more", 1), Err(AllocError::Full));
}

#[test]
fn saving_tracks_generations() {
    let mut t = FakeIpTable::new(10, KEY);
    assert!(!t.dirty());
    t.allocate("str:a", 1).unwrap();
    assert!(t.dirty() && !t.is_saved("str:a"));
    let g = t.generation();
    t.allocate("str:b", 1).unwrap();
    t.mark_saved(g);
    assert!(t.is_saved("str:a") && !t.is_saved("str:b") && t.dirty());
    t.mark_saved(t.generation());
    assert!(t.is_saved("str:b") && !t.dirty());
    t.allocate("str:a", 1).unwrap();
    assert!(!t.dirty(), "asking again changes nothing");
    t.allocate("str:a", 3).unwrap();
    assert!(!t.is_saved("str:a"), "grown: not saved yet");
    assert!(!t.is_saved("str:nobody"));
}

#[test]
fn the_text_form_round_trips_and_odd_identities_survive() {
    let mut t = FakeIpTable::new(10, KEY);
    for id in [
        "str:alice",
        "str:with space%and\nnewline",
        "steamid:76561197960287930",
    ] {
        let canonical = Identity::parse(id).unwrap().to_string();
        t.allocate(&canonical, 3).unwrap();
    }
    let text = t.to_text();
    assert!(text.starts_with(STATE_HEADER));
    assert_eq!(text.lines().count(), 4, "{text}");
    let back = FakeIpTable::from_text(&text, 10, [9; 32]).unwrap();
    assert_eq!(back.len(), 3);
    for (id, a) in &t.by_identity {
        assert_eq!(
            back.get(id).map(|b| (&b.ip, &b.ports)),
            Some((&a.ip, &a.ports))
        );
        assert!(back.is_saved(id));
    }
    assert!(!back.dirty());
    assert_eq!(back.to_text(), text);
}

#[test]
fn bad_state_files_name_the_line() {
    let t = |body: &str| FakeIpTable::from_text(&format!("{STATE_HEADER}\n{body}"), 10, KEY);
    assert_eq!(
        FakeIpTable::from_text("", 10, KEY).unwrap_err(),
        StateError::Header
    );
    assert!(t("").unwrap().is_empty());
    assert!(t("# comment\n\n169.254.9.9 2000 str:a\n").is_ok());
    for (body, what) in [
        ("169.254.9.9 2000", "expected `IP PORTS IDENTITY`"),
        (
            "169.254.9.9 2000 str:a extra",
            "expected `IP PORTS IDENTITY`",
        ),
        (
            "10.0.0.1 2000 str:a",
            "address outside the global FakeIP range",
        ),
        (
            "169.254.200.1 2000 str:a",
            "address outside the global FakeIP range",
        ),
        ("nonsense 2000 str:a", "bad address"),
        ("169.254.9.9 80 str:a", "bad port"),
        ("169.254.9.9 2000,x str:a", "bad port"),
        (
            "169.254.9.9 2000,2000 str:a",
            "1 to 4 distinct ports expected",
        ),
        (
            "169.254.9.9 2001,2002,2003,2004,2005 str:a",
            "1 to 4 distinct ports expected",
        ),
        ("169.254.9.9 2000 str:%zz", "bad identity encoding"),
        ("169.254.9.9 2000 nonsense", "not a canonical identity"),
        (
            "169.254.9.9 2000 ip:169.254.1.1:2000",
            "not a canonical identity",
        ),
    ] {
        assert_eq!(
            t(body).unwrap_err(),
            StateError::Line { line: 2, what },
            "{body}"
        );
    }
    assert_eq!(
        t("169.254.9.9 2000 str:a\n169.254.9.9 2001 str:b").unwrap_err(),
        StateError::Line {
            line: 3,
            what: "address or identity listed twice"
        }
    );
    // More than the cap: kept, and new identities refused.
    let two = format!("{STATE_HEADER}\n169.254.9.9 2000 str:a\n169.254.9.10 2000 str:b\n");
    let mut over = FakeIpTable::from_text(&two, 1, KEY).unwrap();
    assert_eq!(over.len(), 2);
    assert_eq!(over.allocate("str:c", 1), Err(AllocError::Full));
    assert!(over.allocate("str:a", 1).is_ok());
}
