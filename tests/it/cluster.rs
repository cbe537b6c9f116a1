//! Several instances on one database (issue #15): each mailbox worked by one instance at a
//! time, spread evenly, taken over when an instance dies or loses the database, given back
//! when it returns. Real daemons, Postgres and Dovecot; every claim about who held what is
//! checked from the lease events the instances log.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::harness::*;
use rand::Rng;

/// A short lease keeps the test quick: takeover in about ttl + ttl/5.
/// `COLLABD_TEST_LEASE_TTL` overrides it (`bench/run --failover` measures the default).
fn ttl_config() -> String {
    let ttl = std::env::var("COLLABD_TEST_LEASE_TTL").unwrap_or_else(|_| "3s".into());
    format!("[cluster]\nlease_ttl = \"{ttl}\"\n")
}

/// One collabd mailbox per Dovecot folder of the one test user.
fn fleet_mailboxes(env: &DaemonEnv, imap: &Dovecot, names: &[String]) -> Vec<MailboxCfg> {
    names
        .iter()
        .map(|n| {
            let mut m = env.mailbox(n, imap.port);
            m.poll_interval = "2s".into();
            m.extra = format!("folder = \"{n}\"\n");
            m
        })
        .collect()
}

/// Per mailbox, the instance holding it, as `status` of `env`'s instance says.
fn holders(env: &DaemonEnv) -> BTreeMap<String, Option<String>> {
    let st = collabctl_json(env, &["status"]);
    st["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap().to_owned(), m["holder"].as_str().map(str::to_owned)))
        .collect()
}

/// How many mailboxes each instance holds (from `status`).
fn spread(env: &DaemonEnv) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for h in holders(env).into_values().flatten() {
        *counts.entry(h).or_default() += 1;
    }
    counts
}

fn instance_of(env: &DaemonEnv) -> String {
    collabctl_json(env, &["status"])["instance"].as_str().unwrap().to_owned()
}

async fn until(limit: Duration, logs: &[&DaemonProc], what: &str, check: impl Fn() -> bool) {
    let ok = eventually(limit, || {
        let r = check();
        async move { r }
    })
    .await;
    let all: String = logs.iter().map(|d| d.logs()).collect::<Vec<_>>().join("\n-----\n");
    assert!(ok, "{what}\n{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_split_the_mailboxes_and_take_over_each_others() {
    let _alone = one_heavy_test_at_a_time().await;
    let (db, seed, imap) = seeded_mailbox_with(12, MANY_SESSIONS).await;
    let names: Vec<String> = (0..6).map(|i| format!("box{i}")).collect();
    for n in &names {
        imap.create_maildir_folder(n);
    }
    // A reaches Postgres through a link the test can cut; B directly.
    let pg_port: u16 =
        db.url.rsplit_once(':').unwrap().1.split('/').next().unwrap().parse().unwrap();
    let link = CuttableLink::start(pg_port).await;
    let env_a = DaemonEnv::new(&via_port(&db.url, link.port));
    let env_b = DaemonEnv::new(&db.url);
    env_a.write_config(&fleet_mailboxes(&env_a, &imap, &names), &ttl_config());
    env_b.write_config(&fleet_mailboxes(&env_b, &imap, &names), &ttl_config());

    // Alone, A works every mailbox.
    let a = env_a.spawn();
    wait_for_socket(&env_a, &a).await;
    let id_a = instance_of(&env_a);
    until(Duration::from_secs(10), &[&a], "A never held all six", || {
        spread(&env_a) == BTreeMap::from([(id_a.clone(), 6)])
    })
    .await;

    // B joins: three each, and both status answers agree on holders and instances.
    let mut b = env_b.spawn();
    wait_for_socket(&env_b, &b).await;
    let id_b = instance_of(&env_b);
    until(Duration::from_secs(15), &[&a, &b], "never three each", || {
        spread(&env_a) == BTreeMap::from([(id_a.clone(), 3), (id_b.clone(), 3)])
    })
    .await;
    assert_eq!(holders(&env_a), holders(&env_b));
    let st = collabctl_json(&env_b, &["status"]);
    let instances = st["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 2, "{st}");
    assert!(instances.iter().all(|i| i["heartbeat_age_ms"].as_i64().unwrap() < 3000), "{st}");
    let (ok, table, _) = collabctl(&env_b, &["status"]);
    assert!(ok && table.contains("HOLDER") && table.contains("HEARTBEAT AGE"), "{table}");
    assert!(table.contains("here") && table.contains(&id_a), "{table}");

    // Mail in every mailbox is stored once, whoever works it.
    for (i, n) in names.iter().enumerate() {
        imap.deliver_to_folder(n, &format!("r{i}"), &reply_to_outreach(&seed, i, 1));
    }
    wait_for_rows(&db, "inbound_messages", 6, Duration::from_secs(15), &b).await;

    // B is SIGKILLed: A takes its mailboxes over once their leases expire.
    let killed_at = chrono::Utc::now();
    let b_pid = b.pid();
    let started = Instant::now();
    b.kill();
    until(Duration::from_secs(30), &[&a], "A never took B's mailboxes", || {
        spread(&env_a) == BTreeMap::from([(id_a.clone(), 6)])
    })
    .await;
    println!("takeover after SIGKILL: {:.1} s", started.elapsed().as_secs_f64());
    for (i, n) in names.iter().enumerate() {
        imap.deliver_to_folder(n, &format!("s{i}"), &reply_to_outreach(&seed, 6 + i, 1));
    }
    wait_for_rows(&db, "inbound_messages", 12, Duration::from_secs(15), &a).await;

    // B restarts: the load is shared again.
    let b = env_b.spawn();
    wait_for_socket(&env_b, &b).await;
    let id_b2 = instance_of(&env_b);
    until(Duration::from_secs(15), &[&a, &b], "never rebalanced after B returned", || {
        spread(&env_a) == BTreeMap::from([(id_a.clone(), 3), (id_b2.clone(), 3)])
    })
    .await;

    // A loses the database (packets dropped, connections left open): it stops working its
    // mailboxes before its leases expire, and B takes them over.
    link.cut();
    let cut_at = Instant::now();
    until(Duration::from_secs(30), &[&a, &b], "B never took A's mailboxes", || {
        spread(&env_b) == BTreeMap::from([(id_b2.clone(), 6)])
    })
    .await;
    println!("takeover after a network cut: {:.1} s", cut_at.elapsed().as_secs_f64());
    let lost = lease_events(&a.logs()).iter().filter(|e| e.kind == "lease_lost").count();
    assert_eq!(lost, 3, "A should have given up its three mailboxes:\n{}", a.logs());
    // Healed: A rejoins and gets its share back, without a mailbox worked twice.
    link.heal();
    until(Duration::from_secs(20), &[&a, &b], "never rebalanced after the cut healed", || {
        spread(&env_b) == BTreeMap::from([(id_a.clone(), 3), (id_b2.clone(), 3)])
    })
    .await;
    for (i, n) in names.iter().enumerate() {
        imap.deliver_to_folder(n, &format!("t{i}"), &reply_to_outreach(&seed, i, 2));
    }
    wait_for_rows(&db, "inbound_messages", 18, Duration::from_secs(15), &a).await;

    let mut events = lease_events(&a.logs());
    events.extend(lease_events(&b.logs()));
    let holdings = assert_never_held_twice(&events, &HashMap::from([(b_pid, killed_at)]));
    assert!(holdings >= 6 + 3 + 3 + 3 + 3, "too few holdings seen: {holdings}\n{events:#?}");
    assert_eq!(
        db.count("SELECT count(*) FROM (SELECT DISTINCT message_id FROM inbound_messages) d").await,
        18
    );
}

/// A commit that waits (here on a lock, in life on a slow disk or a busy table) for
/// longer than the lease must not cost the lease: the heartbeat renews the instance's row,
/// which no commit locks. When renewals rewrote the lease rows, they queued behind the
/// commit's FOR SHARE lock on its lease, and the keeper fenced the healthy instance.
#[tokio::test]
async fn a_slow_commit_does_not_lose_the_lease() {
    let (db, seed, imap) = seeded_mailbox(2).await;
    let env = DaemonEnv::new(&db.url);
    env.write_config(&[env.mailbox("brand", imap.port)], &ttl_config());
    let daemon = env.spawn();
    wait_for_socket(&env, &daemon).await;
    imap.append(reply_to_outreach(&seed, 0, 1)).await;
    wait_for_rows(&db, "inbound_messages", 1, Duration::from_secs(10), &daemon).await;

    let lock = hold_inbound(&db).await;
    imap.append(reply_to_outreach(&seed, 1, 1)).await;
    wait_until_daemon_blocks(&db, &daemon).await;
    // Two leases long, with the commit waiting all along.
    tokio::time::sleep(Duration::from_secs(6)).await;
    drop(lock);
    wait_for_rows(&db, "inbound_messages", 2, Duration::from_secs(10), &daemon).await;
    let lost: Vec<LeaseEvent> =
        lease_events(&daemon.logs()).into_iter().filter(|e| e.kind == "lease_lost").collect();
    assert!(
        lost.is_empty(),
        "the lease was lost during a slow commit: {lost:?}\n{}",
        daemon.logs()
    );
    assert!(!daemon.logs().contains("lease renewal"), "a renewal failed:\n{}", daemon.logs());
}

/// A cut just long enough to stop trusting the leases, healed before anyone could take
/// them: the instance gives its leases up for good (deletes them at its next renewal, as
/// another instance might be taking them over) and claims them again like anyone else, so
/// the mailbox is worked again and never left to a lease nobody works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_given_up_in_a_short_cut_are_claimed_again() {
    let _alone = one_heavy_test_at_a_time().await;
    let (db, seed, imap) = seeded_mailbox(2).await;
    let pg_port: u16 =
        db.url.rsplit_once(':').unwrap().1.split('/').next().unwrap().parse().unwrap();
    let link = CuttableLink::start(pg_port).await;
    let env = DaemonEnv::new(&via_port(&db.url, link.port));
    env.write_config(&[env.mailbox("brand", imap.port)], "[cluster]\nlease_ttl = \"3s\"\n");
    let daemon = env.spawn();
    wait_for_socket(&env, &daemon).await;
    imap.append(reply_to_outreach(&seed, 0, 1)).await;
    wait_for_rows(&db, "inbound_messages", 1, Duration::from_secs(10), &daemon).await;

    link.cut();
    let lost = eventually(Duration::from_secs(10), || async {
        lease_events(&daemon.logs()).iter().any(|e| e.kind == "lease_lost")
    })
    .await;
    assert!(lost, "the leases were never given up:\n{}", daemon.logs());
    link.heal();
    imap.append(reply_to_outreach(&seed, 1, 1)).await;
    wait_for_rows(&db, "inbound_messages", 2, Duration::from_secs(20), &daemon).await;
    let logs = daemon.logs();
    assert!(logs.contains("released leases given up"), "{logs}");
    let acquired = lease_events(&logs).iter().filter(|e| e.kind == "lease_acquired").count();
    assert_eq!(acquired, 2, "claimed once at start and once after the cut:\n{logs}");
    assert_never_held_twice(&lease_events(&logs), &HashMap::new());
}

/// The fault test of issue #15: three instances, 62 mailboxes (60 from the file, one
/// added and one removed at run time), 3,000 replies arriving while a random instance is
/// SIGKILLed every few seconds and restarted after a random pause (sometimes shorter
/// than the lease, sometimes longer). The outcome must equal what one calm instance
/// makes of the same mail, and no mailbox may be held by two instances at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_lose_and_duplicate_nothing_while_being_killed() {
    const FILE_MAILBOXES: usize = 60;
    const CREATORS: usize = 300;
    const WAVES: usize = 30;
    let _alone = one_heavy_test_at_a_time().await;
    let (db, seed, imap) = seeded_mailbox_with(CREATORS, MANY_SESSIONS).await;
    let names: Vec<String> = (0..FILE_MAILBOXES).map(|i| format!("box{i:02}")).collect();
    for n in names.iter().chain([&"dbx".to_owned(), &"dby".to_owned()]) {
        imap.create_maildir_folder(n);
    }
    let envs: Vec<DaemonEnv> = (0..3).map(|_| DaemonEnv::new(&db.url)).collect();
    for env in &envs {
        env.write_config(&fleet_mailboxes(env, &imap, &names), &ttl_config());
    }
    let mut daemons: Vec<DaemonProc> = envs.iter().map(DaemonEnv::spawn).collect();
    for (env, d) in envs.iter().zip(&daemons) {
        wait_for_socket(env, d).await;
    }
    let add = |env: &DaemonEnv, name: &str| {
        let pass = env.path("imap.pass").display().to_string();
        let extra = ["--folder", name, "--poll-interval", "2s"];
        let (ok, _, err) =
            add_mailbox(env, name, imap.port, BRAND, &["--password-file", &pass], &extra);
        assert!(ok, "{err}");
    };
    add(&envs[0], "dbx");

    // Every reply answers its creator's outreach; creator i's replies go to several
    // mailboxes. One calm instance would store each once and open one collaboration per
    // creator.
    let mut delivered: HashMap<String, usize> = HashMap::new();
    let mut n = 0usize;
    let mut deliver = |mailbox: &str, count: usize, delivered: &mut HashMap<String, usize>| {
        for _ in 0..count {
            let creator = n % CREATORS;
            let mail = reply_to_outreach(&seed, creator, n as u32);
            imap.deliver_to_folder(mailbox, &format!("m{n}"), &mail);
            *delivered.entry(mailbox.to_owned()).or_default() += 1;
            n += 1;
        }
    };

    let mut rng = rand::rng();
    let mut deaths: HashMap<i32, chrono::DateTime<chrono::Utc>> = HashMap::new();
    let mut kills = 0;
    let mut next_kill = Instant::now() + Duration::from_secs(3);
    for wave in 0..WAVES {
        // 95 replies a wave across the file's mailboxes, 5 to a database mailbox.
        for i in 0..95 {
            let mailbox = &names[(wave * 95 + i) % FILE_MAILBOXES];
            deliver(mailbox, 1, &mut delivered);
        }
        match wave {
            0..10 => deliver("dbx", 5, &mut delivered),
            10 => {
                // dbx is removed once everything sent to it is stored; later mail to it
                // must stay unread.
                let want = delivered["dbx"] as i64;
                let stored = eventually(Duration::from_secs(60), || async {
                    db.count("SELECT count(*) FROM inbound_messages WHERE mailbox = 'dbx'").await
                        == want
                })
                .await;
                assert!(stored, "dbx's mail was never all stored");
                let alive = daemons.iter().position(|d| d.child.is_some()).unwrap();
                collabctl_json(&envs[alive], &["mailbox", "remove", "dbx"]);
                add(&envs[alive], "dby");
                deliver("dby", 5, &mut delivered);
            }
            _ => deliver("dby", 5, &mut delivered),
        }
        if Instant::now() >= next_kill {
            let victim = rng.random_range(0..3);
            if daemons[victim].child.is_some() {
                deaths.insert(daemons[victim].pid(), chrono::Utc::now());
                daemons[victim].kill();
                kills += 1;
                // Restarted after 0.5–6 s: sometimes within the lease (its successor frees
                // the dead one's leases), sometimes after it expired (the others took over).
                let pause = Duration::from_millis(rng.random_range(500..6000));
                tokio::time::sleep(pause).await;
                daemons[victim] = envs[victim].spawn();
            }
            next_kill = Instant::now() + Duration::from_millis(rng.random_range(2000..5000));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Mail to the removed mailbox after its removal is not fetched.
    let dbx_before = delivered["dbx"] as i64;
    imap.deliver_to_folder("dbx", "late", &reply_to_outreach(&seed, 0, 99_999));

    let total: usize = delivered.values().sum();
    assert_eq!(total, 3000);
    let stored = eventually(Duration::from_secs(120), || async {
        db.rows("inbound_messages").await == total as i64
    })
    .await;
    let logs = || daemons.iter().map(|d| d.logs()).collect::<Vec<_>>().join("\n-----\n");
    assert!(stored, "only {} of {total} stored\n{}", db.rows("inbound_messages").await, logs());
    // Settled, and nothing more arrives: no duplicate was only late.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(db.rows("inbound_messages").await, total as i64);
    assert_eq!(
        db.count("SELECT count(DISTINCT message_id) FROM inbound_messages").await,
        total as i64
    );
    for (mailbox, count) in &delivered {
        let stored: i64 =
            sqlx::query_scalar("SELECT count(*) FROM inbound_messages WHERE mailbox = $1")
                .bind(mailbox)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!(stored, *count as i64, "mailbox {mailbox}");
    }
    assert_eq!(
        db.count("SELECT count(*) FROM inbound_messages WHERE mailbox = 'dbx'").await,
        dbx_before
    );
    // What one instance makes of this mail: every reply linked, one collaboration each.
    assert_eq!(db.rows("collaborations").await, CREATORS as i64);
    assert_eq!(
        db.count("SELECT count(*) FROM inbound_messages WHERE kind = 'reply' AND collaboration_id IS NOT NULL")
            .await,
        total as i64
    );

    let mut events = Vec::new();
    for env in &envs {
        events.extend(lease_events(&read(&env.path("collabd.log"))));
    }
    let holdings = assert_never_held_twice(&events, &deaths);
    assert!(kills >= 5, "only {kills} kills: the run was too short to prove anything");
    // Every kill moved leases: far more holdings than mailboxes.
    assert!(holdings > 62 + kills, "{holdings} holdings for {kills} kills");
    println!("{kills} kills, {holdings} lease holdings, {total} replies, 0 lost, 0 duplicated");
}

/// The checker above must be able to fail: two overlapping holdings are caught.
#[test]
#[should_panic(expected = "held twice")]
fn the_overlap_check_catches_a_mailbox_held_twice() {
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    let event = |t: &str, kind: &str, instance: &str| LeaseEvent {
        at: at(t),
        kind: kind.into(),
        instance: instance.into(),
        mailbox: "box1".into(),
    };
    let events = [
        event("2026-11-30T10:00:00Z", "lease_acquired", "vm-100-aaaaaa"),
        event("2026-11-30T10:00:05Z", "lease_acquired", "vm-200-bbbbbb"),
        event("2026-11-30T10:00:06Z", "lease_released", "vm-100-aaaaaa"),
    ];
    assert_never_held_twice(&events, &HashMap::new());
}

/// A killed instance holds until its death; a successor after it is no overlap, one
/// before it is.
#[test]
fn a_killed_instance_holds_until_it_dies() {
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    let events = [
        LeaseEvent {
            at: at("2026-11-30T10:00:00Z"),
            kind: "lease_acquired".into(),
            instance: "vm-100-aaaaaa".into(),
            mailbox: "box1".into(),
        },
        LeaseEvent {
            at: at("2026-11-30T10:00:09Z"),
            kind: "lease_acquired".into(),
            instance: "vm-200-bbbbbb".into(),
            mailbox: "box1".into(),
        },
    ];
    let died = |t: &str| HashMap::from([(100, at(t))]);
    assert_eq!(assert_never_held_twice(&events, &died("2026-11-30T10:00:08Z")), 2);
    let late = std::panic::catch_unwind(|| {
        assert_never_held_twice(&events, &died("2026-11-30T10:00:10Z"));
    });
    assert!(late.is_err(), "a holding past the successor's start must be caught");
}
