//! Ingestion end to end: real Dovecot, real Postgres, the real daemon binary.

use std::time::Duration;

use crate::harness::*;
use collabd::admin::protocol::OutreachFields;
use nix::sys::signal::Signal;
use sqlx::Row;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_reply_to_known_outreach_makes_one_pending_collaboration_and_a_second_attaches() {
    let (db, seed, imap) = seeded_mailbox(2).await;
    let mut app = spawn_app(AppOptions::on(db, imap)).await;

    let mut listener = sqlx::postgres::PgListener::connect(&app.db.url).await.unwrap();
    listener.listen("collabd_collaboration").await.unwrap();

    app.imap().append(reply_to_outreach(&seed, 0, 1)).await;
    app.wait_for_rows("collaborations", 1, WAIT).await;

    let row = sqlx::query(
        "SELECT id, status::text AS status, source, creator_id, campaign_id, thread_id
         FROM collaborations",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let collab_id: i64 = row.get("id");
    assert_eq!(row.get::<String, _>("status"), "pending");
    assert_eq!(row.get::<String, _>("source"), "email");
    assert_eq!(row.get::<i64, _>("creator_id"), seed.creators[0].id);
    assert_eq!(row.get::<i64, _>("campaign_id"), seed.campaign_id);
    assert_eq!(row.get::<String, _>("thread_id"), seed.creators[0].outreach_message_id);

    let note = tokio::time::timeout(WAIT, listener.recv()).await.unwrap().unwrap();
    assert_eq!(note.payload(), collab_id.to_string());

    let events: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT kind, to_status::text, actor FROM collaboration_events WHERE collaboration_id = $1",
    )
    .bind(collab_id)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(events, vec![("created".into(), "pending".into(), "collabd".into())]);

    let (kind, rule, reply_text): (String, String, String) = sqlx::query_as(
        "SELECT kind, match_rule, reply_text FROM inbound_messages WHERE collaboration_id = $1",
    )
    .bind(collab_id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!((kind.as_str(), rule.as_str()), ("reply", "in_reply_to"));
    assert_eq!(reply_text, "Hi! Yes, I'd love to do this. What are the next steps?");
    let status: String =
        sqlx::query_scalar("SELECT status FROM outreach_messages WHERE creator_id = $1")
            .bind(seed.creators[0].id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(status, "replied");

    // A follow-up in the same thread joins the same collaboration.
    app.imap().append(reply_to_outreach(&seed, 0, 2)).await;
    app.wait_for_rows("inbound_messages", 2, WAIT).await;
    assert_eq!(app.db.rows("collaborations").await, 1);
    let linked = app
        .db
        .count(&format!(
            "SELECT count(*) FROM inbound_messages WHERE collaboration_id = {collab_id}"
        ))
        .await;
    assert_eq!(linked, 2);
    assert_eq!(app.db.rows("collaboration_events").await, 1);

    // BODY.PEEK: nothing is marked read behind the user's back.
    assert_eq!(app.imap().seen_count().await, 0);

    let (status, took) = app.daemon.terminate();
    assert!(status.success(), "exit {status:?}\n{}", app.logs());
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    assert!(app.logs().contains("collabd stopped"));
}

#[tokio::test]
async fn references_alone_match_and_strangers_stay_unmatched() {
    let (db, seed, imap) = seeded_mailbox(1).await;
    let app = spawn_app(AppOptions::on(db, imap)).await;

    let c = &seed.creators[0];
    // Yahoo-style: no In-Reply-To, the outreach id only in References (with another id).
    app.imap()
        .append(reply(
            &c.email,
            "refs-only@mail.example",
            None,
            &[&c.outreach_message_id, "some-later-id@mail.example"],
            "Count me in",
        ))
        .await;
    app.imap()
        .append(reply(
            "stranger@elsewhere.example",
            "stranger@elsewhere.example",
            Some("unknown-thread@brand.example"),
            &[],
            "Hello, I would like to collaborate",
        ))
        .await;
    app.wait_for_rows("inbound_messages", 2, WAIT).await;
    let rows: Vec<(String, Option<String>, Option<i64>)> = sqlx::query_as(
        "SELECT kind, match_rule, collaboration_id FROM inbound_messages ORDER BY uid",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(rows[0].0, "reply");
    assert_eq!(rows[0].1.as_deref(), Some("references"));
    assert!(rows[0].2.is_some());
    assert_eq!(rows[1], ("unmatched".to_string(), None, None));
    assert_eq!(app.db.rows("collaborations").await, 1);
}

#[tokio::test]
async fn restart_processes_nothing_twice_and_picks_up_mail_that_arrived_while_down() {
    let (db, seed, imap) = seeded_mailbox(3).await;
    let mut app = spawn_app(AppOptions::on(db, imap)).await;
    app.imap()
        .append_all("INBOX", &[reply_to_outreach(&seed, 0, 1), reply_to_outreach(&seed, 1, 1)])
        .await;
    app.wait_for_rows("inbound_messages", 2, WAIT).await;
    assert!(app.daemon.terminate().0.success());

    // Arrives while the daemon is down.
    app.imap().append(reply_to_outreach(&seed, 2, 1)).await;
    app.respawn();
    app.wait_for_socket().await;
    app.wait_for_rows("inbound_messages", 3, WAIT).await;
    // Give a restarted daemon time to (wrongly) reprocess before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.db.rows("inbound_messages").await, 3);
    assert_eq!(app.db.rows("collaborations").await, 3);
    assert_eq!(app.db.rows("collaboration_events").await, 3);
    let last_uid = app.db.count("SELECT last_uid FROM mailbox_sync WHERE mailbox = 'brand'").await;
    assert_eq!(last_uid, 3);
}

#[tokio::test]
async fn sigkill_in_the_middle_of_a_2000_message_batch_loses_and_duplicates_nothing() {
    let (db, seed, imap) = seeded_mailbox(200).await;
    let messages: Vec<Vec<u8>> =
        (0..2000).map(|k| reply_to_outreach(&seed, k % 200, k as u32)).collect();
    imap.append_all("INBOX", &messages[..300]).await;

    let mut app = spawn_app(AppOptions::on(db, imap).config("[ingest]\nbatch_size = 50\n")).await;
    app.wait_for_rows("inbound_messages", 300, WAIT).await;
    // Killed while a batch waits inside its transaction: fetched, parsed, not committed.
    let lock = hold_inbound(&app.db).await;
    app.imap().append_all("INBOX", &messages[300..]).await;
    wait_until_daemon_blocks(&app.db, &app.daemon).await;
    app.daemon.kill();
    lock.rollback().await.unwrap();
    assert_eq!(app.db.rows("inbound_messages").await, 300);

    app.respawn();
    app.wait_for_socket().await;
    app.wait_for_rows("inbound_messages", 2000, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.db.rows("inbound_messages").await, 2000);
    assert_eq!(app.db.count("SELECT count(DISTINCT uid) FROM inbound_messages").await, 2000);
    assert_eq!(app.db.rows("collaborations").await, 200);
    assert_eq!(app.db.rows("collaboration_events").await, 200);
    assert_eq!(
        app.db.count("SELECT count(*) FROM inbound_messages WHERE collaboration_id IS NULL").await,
        0
    );
}

/// A daemon watching the folder "Replies", once a first run of it has synced `messages`
/// there and stopped: [`TestApp::respawn`] starts it again.
async fn synced_replies_folder(db: TestDb, imap: Dovecot, messages: &[Vec<u8>]) -> TestApp {
    imap.create_folder("Replies").await;
    imap.append_all("Replies", messages).await;
    let options = AppOptions::on(db, imap).brand(|mb| mb.extra = "folder = \"Replies\"".into());
    let mut app = spawn_app(options).await;
    app.wait_for_rows("inbound_messages", messages.len() as i64, WAIT).await;
    let (status, _) = app.daemon.terminate();
    assert!(status.success(), "{status}\n{}", app.logs());
    app
}

#[tokio::test]
async fn a_uidvalidity_reset_rescans_without_reprocessing() {
    let (db, seed, imap) = seeded_mailbox(2).await;
    let messages = vec![reply_to_outreach(&seed, 0, 1), reply_to_outreach(&seed, 1, 1)];
    let mut app = synced_replies_folder(db, imap, &messages).await;
    let imap = app.imap();
    let before = imap.uidvalidity("Replies").await;
    // Recreate the folder with the same messages plus a new one: a new UIDVALIDITY.
    imap.recreate_folder("Replies").await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // Dovecot derives UIDVALIDITY from time
    // A follow-up of creator 0 arrives twice (a copy with the same Message-ID), in the same
    // batch as the two messages stored before.
    let mut again = messages.clone();
    again.push(reply_to_outreach(&seed, 0, 2));
    again.push(reply_to_outreach(&seed, 0, 2));
    imap.append_all("Replies", &again).await;
    assert_ne!(imap.uidvalidity("Replies").await, before);

    app.respawn();
    let (db, daemon) = (&app.db, &app.daemon);
    wait_for_rows(db, "inbound_messages", 3, WAIT, daemon).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(db.rows("inbound_messages").await, 3);
    assert_eq!(db.rows("collaborations").await, 2);
    assert!(daemon.logs().contains("UIDVALIDITY or folder changed"));
    // Nothing happened twice: one `created` event per collaboration, and the new reply is
    // stored once, linked to creator 0's collaboration.
    assert_eq!(db.rows("collaboration_events").await, 2);
    let unlinked =
        db.count("SELECT count(*) FROM inbound_messages WHERE collaboration_id IS NULL").await;
    assert_eq!(unlinked, 0);
    let of_creator_0 = db
        .count(&format!(
            "SELECT count(*) FROM inbound_messages i JOIN collaborations l
               ON l.id = i.collaboration_id WHERE l.creator_id = {}",
            seed.creators[0].id
        ))
        .await;
    assert_eq!(of_creator_0, 2);
    let processed: i64 =
        sqlx::query_scalar("SELECT processed FROM mailbox_sync").fetch_one(&db.pool).await.unwrap();
    assert_eq!(processed, 3, "stored rows are counted once, copies not at all");
}

#[tokio::test]
async fn idle_keepalives_do_not_hold_off_the_poll() {
    let db = TestDb::new().await;
    // Dovecot's "* OK Still here" every second: each one used to restart the IDLE wait,
    // so a poll_interval longer than the keepalive never came.
    let imap = Dovecot::start_with("imap_idle_notify_interval = 1 secs");
    let app = spawn_app(AppOptions::on(db, imap).brand(|mb| {
        mb.poll_interval = "3s".into();
    }))
    .await;
    let polled = eventually(Duration::from_secs(15), || async {
        app.logs().matches("IDLE reached poll_interval").count() >= 2
    })
    .await;
    assert!(polled, "{}", app.logs());
}

#[tokio::test]
async fn with_idle_a_reply_lands_without_waiting_for_the_poll() {
    let (db, seed, imap) = seeded_mailbox(1).await;
    // The poll alone would take a minute; only IDLE can make this in time.
    let mut app = spawn_app(AppOptions::on(db, imap).brand(|mb| {
        mb.poll_interval = "60s".into();
    }))
    .await;
    assert!(
        eventually(WAIT, || async {
            app.db.rows("mailbox_sync").await == 1 || app.logs().contains("connected")
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let appended = std::time::Instant::now();
    app.imap().append(reply_to_outreach(&seed, 0, 1)).await;
    app.wait_for_rows("collaborations", 1, Duration::from_secs(5)).await;
    println!("IDLE: APPEND to collaboration in {:?}", appended.elapsed());
    let (status, took) = app.daemon.terminate();
    assert!(status.success() && took < Duration::from_secs(5), "{took:?}");
}

/// A daemon in the middle of one batch of twelve 3.4 MiB messages (three fetch groups of
/// four, under the 16 MiB bound): the first group's commit waits on the returned lock
/// while the second group has been fetched; the third is not fetched yet.
struct MidBatch {
    app: TestApp,
    lock: sqlx::Transaction<'static, sqlx::Postgres>,
}

async fn mid_batch() -> MidBatch {
    let (db, _seed, imap) = seeded_mailbox(1).await;
    let big = |i: usize| {
        let mut m = format!(
            "From: x@spam.example\r\nTo: {BRAND}\r\nSubject: big {i}\r\nMessage-ID: <big{i}@spam.example>\r\n\r\n"
        )
        .into_bytes();
        m.extend(std::iter::repeat_n(b"0123456789abcdef\r\n".as_slice(), 3 << 20 >> 4).flatten());
        m
    };
    imap.append_all("INBOX", &(1..=12).map(big).collect::<Vec<_>>()).await;
    // The lock is taken before the daemon starts, so no wait for its socket either.
    let lock = hold_inbound(&db).await;
    let app = spawn_app(AppOptions::on(db, imap).no_wait()).await;
    wait_until_daemon_blocks(&app.db, &app.daemon).await;
    // The second group's fetch (14 MiB from a local server) is well done by then.
    tokio::time::sleep(Duration::from_secs(2)).await;
    MidBatch { app, lock }
}

#[tokio::test]
async fn a_message_expunged_between_search_and_fetch_leaves_no_row() {
    use futures::TryStreamExt;
    let MidBatch { app, lock } = mid_batch().await;
    let (db, imap, daemon) = (&app.db, app.imap(), &app.daemon);
    // Another client deletes a message of the third group. Dovecot then answers its
    // fetch with `UID 11 BODY[] NIL`, which once became an empty row.
    let mut other = imap.session().await;
    other.select("INBOX").await.unwrap();
    let deleted = other.uid_store("11", "+FLAGS.SILENT (\\Deleted)").await.unwrap();
    deleted.try_collect::<Vec<_>>().await.unwrap();
    other.expunge().await.unwrap().try_collect::<Vec<_>>().await.unwrap();
    lock.rollback().await.unwrap();

    wait_for_rows(db, "inbound_messages", 11, WAIT, daemon).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(db.rows("inbound_messages").await, 11);
    assert_eq!(db.count("SELECT count(*) FROM inbound_messages WHERE uid = 11").await, 0);
}

#[tokio::test]
async fn sigterm_stops_between_the_groups_of_a_batch() {
    let MidBatch { mut app, lock } = mid_batch().await;
    app.daemon.signal(Signal::SIGTERM);
    lock.rollback().await.unwrap();
    let status = app.daemon.wait(Duration::from_secs(15));
    assert!(status.success(), "{status:?}\n{}", app.logs());
    // What was fetched commits; the third group is left for the next start.
    assert_eq!(app.db.rows("inbound_messages").await, 8, "{}", app.logs());

    app.respawn();
    app.wait_for_rows("inbound_messages", 12, WAIT).await;
    let db = &app.db;
    assert_eq!(db.count("SELECT count(DISTINCT uid) FROM inbound_messages").await, 12);
}

/// A Postfix-shaped delivery-status report about `outreach_id` sent to `rcpt`.
fn dsn(outreach_id: &str, rcpt: &str, status: &str, diagnostic: &str) -> Vec<u8> {
    format!(
        "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.brand.example (Mail Delivery System)\r\n\
         To: {BRAND}\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <dsn-{status}-{rcpt}>\r\n\
         Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n\
         <{rcpt}>: host mx.mail.example said: {diagnostic}\r\n\r\n\
         --b1\r\nContent-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; mx.brand.example\r\n\r\nFinal-Recipient: rfc822; {rcpt}\r\n\
         Action: failed\r\nStatus: {status}\r\nDiagnostic-Code: smtp; {diagnostic}\r\n\r\n\
         --b1\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: {BRAND}\r\nTo: {rcpt}\r\n\
         Subject: Winter Glow x you\r\nMessage-ID: <{outreach_id}>\r\n\r\n--b1--\r\n"
    )
    .into_bytes()
}

/// Ingests `messages` as UIDs 1, 2, … of one mailbox, each batch of one committed in turn.
async fn ingest_in_order(db: &TestDb, messages: Vec<Vec<u8>>) {
    use collabd::ingest::{Fetched, Ingestor, Source};
    let rules = collabd::mail::ClassifyRules { own_addresses: vec![BRAND.into()] };
    let ingestor = Ingestor::new(db.store.clone(), rules);
    let src = Source {
        mailbox: "brand".into(),
        folder: "INBOX".into(),
        uidvalidity: 1,
        lease_holder: None,
    };
    for (i, raw) in messages.into_iter().enumerate() {
        let fetched = Fetched { uid: i as u32 + 1, size: raw.len() as u64, raw, complete: true };
        ingestor.commit(&src, ingestor.prepare(vec![fetched])).await.unwrap();
    }
}

async fn outreach_status(db: &TestDb, message_id: &str) -> String {
    sqlx::query_scalar("SELECT status FROM outreach_messages WHERE message_id = $1")
        .bind(message_id)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_human_message_after_a_hard_bounce_revives_the_address() {
    let db = TestDb::new().await;
    let seed = seed(&db, 1).await;
    let c = &seed.creators[0];
    let bounce = dsn(&c.outreach_message_id, &c.email, "5.1.1", "550 5.1.1 user unknown");
    // Written from the pool address, with no thread headers at all.
    let fresh =
        reply(&c.email, "fresh-1@mail.example", None, &[], "Hi! Saw your pitch late, I'm in.");
    ingest_in_order(&db, vec![bounce, fresh]).await;

    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT kind, match_rule FROM inbound_messages ORDER BY uid")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            ("bounce".into(), Some("reported_message_id".into())),
            ("reply".into(), Some("sender_after_bounce".into()))
        ]
    );
    assert_eq!(outreach_status(&db, &c.outreach_message_id).await, "replied");
    assert_eq!(db.count("SELECT count(*) FROM collaborations WHERE status = 'pending'").await, 1);
    let reason: String =
        sqlx::query_scalar("SELECT reason FROM collaboration_events WHERE kind = 'created'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(reason.contains("had bounced"), "{reason}");
    assert_eq!(db.count("SELECT count(*) FROM creator_events WHERE kind = 'revived'").await, 1);
}

#[tokio::test]
async fn a_soft_bounce_leaves_the_outreach_open() {
    let db = TestDb::new().await;
    let seed = seed(&db, 2).await;
    let (full, gone) = (&seed.creators[0], &seed.creators[1]);
    let soft = dsn(&full.outreach_message_id, &full.email, "5.2.2", "552 5.2.2 mailbox full");
    let hard = dsn(&gone.outreach_message_id, &gone.email, "5.1.1", "550 5.1.1 no such user");
    ingest_in_order(&db, vec![soft, hard]).await;
    assert_eq!(db.count("SELECT count(*) FROM inbound_messages WHERE kind = 'bounce'").await, 2);
    assert_eq!(outreach_status(&db, &full.outreach_message_id).await, "sent");
    assert_eq!(outreach_status(&db, &gone.outreach_message_id).await, "bounced");
}

#[tokio::test]
async fn a_spam_complaint_unsubscribes_from_the_campaign_only() {
    let db = TestDb::new().await;
    let seed = seed(&db, 1).await;
    let c = &seed.creators[0];
    let arf = format!(
        "From: Feedback Loop <fbl@mail.example>\r\nTo: {BRAND}\r\nSubject: Complaint\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <fbl-1@mail.example>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"f\"\r\n\r\n\
         --f\r\nContent-Type: text/plain\r\n\r\nA user marked this message as spam.\r\n\r\n\
         --f\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n\
         User-Agent: ExampleFBL/1.0\r\nVersion: 1\r\nOriginal-Rcpt-To: {}\r\n\r\n\
         --f\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: {BRAND}\r\nTo: {}\r\n\
         Message-ID: <{}>\r\n\r\n--f--\r\n",
        c.email, c.email, c.outreach_message_id
    );
    ingest_in_order(&db, vec![arf.into_bytes()]).await;
    let (kind, rule): (String, Option<String>) =
        sqlx::query_as("SELECT kind, match_rule FROM inbound_messages")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((kind.as_str(), rule.as_deref()), ("complaint", Some("reported_message_id")));
    assert_eq!(db.count("SELECT count(*) FROM campaign_unsubscribes").await, 1);
    assert_eq!(
        db.count("SELECT count(*) FROM creators WHERE unsubscribed_at IS NOT NULL").await,
        0
    );
    assert_eq!(db.count("SELECT count(*) FROM creator_events WHERE kind = 'complained'").await, 1);
    assert_eq!(db.count("SELECT count(*) FROM collaborations").await, 0);
}

/// Two replies 100 ms apart, twenty times, with a five-minute poll: only notifications can
/// bring them in. The second mail of a pair often arrives while the worker runs a command
/// (SEARCH, FETCH, the IDLE that follows), and Dovecot then announces it only as a
/// `* N EXISTS` on that command's completion; a worker that dropped it waited for the poll.
#[tokio::test]
async fn a_burst_of_two_mails_leaves_neither_waiting_for_the_poll() {
    const ROUNDS: usize = 20;
    // 2 s for collabd, plus Dovecot's own 0.5 s before it tells an IDLE client.
    const LIMIT: Duration = Duration::from_millis(2500);
    let _alone = one_heavy_test_at_a_time().await;
    let (db, seed, imap) = seeded_mailbox(2).await;
    let app = spawn_app(AppOptions::on(db, imap).brand(|mb| {
        mb.poll_interval = "5m".into();
    }))
    .await;
    assert!(eventually(WAIT, || async { app.logs().contains("connected") }).await);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut delivery = app.imap().session().await;
    let mut latencies = Vec::new();
    for round in 0..ROUNDS {
        let mut pending = Vec::new();
        for creator in 0..2 {
            if creator == 1 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let n = round as u32;
            delivery
                .append("INBOX", None, None, reply_to_outreach(&seed, creator, n))
                .await
                .unwrap();
            pending.push((format!("reply-{creator}-{n}@mail.example"), std::time::Instant::now()));
        }
        while !pending.is_empty() {
            let stored: Vec<String> = sqlx::query_scalar(
                "SELECT message_id FROM inbound_messages WHERE message_id = ANY($1)",
            )
            .bind(pending.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>())
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
            pending.retain(|(id, at)| {
                if stored.contains(id) {
                    latencies.push(at.elapsed());
                    return false;
                }
                assert!(
                    at.elapsed() <= LIMIT,
                    "round {round}: {id} not committed {:?} after delivery\n{}",
                    at.elapsed(),
                    app.logs()
                );
                true
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Vary where the next pair finds the worker: mid-IDLE, or just back in it.
        tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 700)).await;
    }
    latencies.sort();
    println!(
        "burst: p50 {:?}, max {:?} over {} mails",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
        latencies.len()
    );
    assert!(latencies.iter().all(|l| *l <= LIMIT));
    assert_eq!(app.db.rows("inbound_messages").await, 2 * ROUNDS as i64);
}

/// The two announcements the issue names, from a scripted server that makes them happen
/// every time: a mail that arrives during a body FETCH is announced only on that FETCH's
/// completion, and one that arrives as IDLE starts only just before its `+` (GreenMail).
/// Either must be caught up at once, not at the poll five minutes later.
#[tokio::test]
async fn mail_announced_outside_idle_is_caught_up_at_once() {
    let db = TestDb::new().await;
    let seed = seed(&db, 4).await;
    let imap = ScriptedImap::start().await;
    // A mailbox on the scripted server, not on a Dovecot.
    let mut mb = MailboxCfg::new("brand", imap.port);
    mb.poll_interval = "5m".into();
    let scripted = AppOptions { db: Some(db), dovecot: false, ..AppOptions::default() };
    let app = spawn_app(scripted.mailboxes(vec![mb])).await;
    let (db, daemon) = (&app.db, &app.daemon);
    assert!(eventually(WAIT, || async { daemon.logs().contains("connected") }).await);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // On a FETCH completion.
    imap.deliver_during_next_fetch(reply_to_outreach(&seed, 1, 1));
    imap.deliver(reply_to_outreach(&seed, 0, 1));
    wait_for_rows(db, "inbound_messages", 2, Duration::from_secs(2), daemon).await;

    // Before IDLE's continuation.
    imap.deliver_before_next_idle_continuation(reply_to_outreach(&seed, 3, 1));
    imap.deliver(reply_to_outreach(&seed, 2, 1));
    wait_for_rows(db, "inbound_messages", 4, Duration::from_secs(2), daemon).await;
    assert_eq!(db.rows("collaborations").await, 4);
    let logs = daemon.logs();
    assert!(logs.contains("new mail announced outside IDLE: catching up again"), "{logs}");
    assert!(logs.contains("new mail announced before IDLE's continuation"), "{logs}");
}

/// A changed UIDVALIDITY on a folder left empty: nothing commits for a while, and the
/// warning used to repeat at every poll until something did.
#[tokio::test]
async fn a_uidvalidity_change_is_warned_about_once() {
    let (db, seed, imap) = seeded_mailbox(1).await;
    let mut app = synced_replies_folder(db, imap, &[reply_to_outreach(&seed, 0, 1)]).await;
    let imap = app.imap();
    let before = imap.uidvalidity("Replies").await;
    imap.recreate_folder("Replies").await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // Dovecot derives UIDVALIDITY from time
    assert_ne!(imap.uidvalidity("Replies").await, before);
    app.respawn();
    let daemon = &app.daemon;
    // Six polls of 500 ms on the empty folder.
    assert!(
        eventually(WAIT, || async {
            daemon.logs().matches("IDLE reached poll_interval").count() >= 6
        })
        .await,
        "{}",
        daemon.logs()
    );
    assert_eq!(daemon.logs().matches("UIDVALIDITY or folder changed").count(), 1);
}

#[tokio::test]
async fn an_unmatched_message_is_announced_when_its_batch_commits() {
    let db = TestDb::new().await;
    seed(&db, 1).await;
    let mut listener = sqlx::postgres::PgListener::connect(&db.url).await.unwrap();
    listener.listen("collabd_unmatched").await.unwrap();
    let stranger = reply("someone@else.example", "s-1@else.example", None, &[], "Hello there");
    ingest_in_order(&db, vec![stranger]).await;
    let note =
        tokio::time::timeout(Duration::from_secs(5), listener.recv()).await.unwrap().unwrap();
    let id: i64 = db.count("SELECT id FROM inbound_messages WHERE kind = 'unmatched'").await;
    assert_eq!(note.payload(), id.to_string());
}

/// Mail that came before its outreach: 2,000 replies to 200 creators whose outreach is not
/// imported yet stay unmatched; the import re-matches them. The daemon is SIGKILLed after
/// the re-match's first transaction (500 messages, creators 0..100) while its second waits
/// on a held collaboration slot; `inbox rematch` after the restart finishes the job.
/// Afterwards the state is what ingest makes when the outreach comes first: one Pending
/// collaboration per creator and campaign, from its outreach's thread, every reply linked.
#[tokio::test]
async fn outreach_imported_after_its_replies_rematches_them_exactly_once_across_a_kill() {
    let (db, seed, imap) = seeded_mailbox(200).await;
    // The outreach exists only in the CRM export, not yet in the database.
    let mut csv = String::from("message_id,campaign,platform,handle,to,subject,sent_at\n");
    for (i, c) in seed.creators.iter().enumerate() {
        csv += &format!(
            "<{}>,Winter Glow,tiktok,creator_{i},{},Winter Glow x you,2026-11-20\n",
            c.outreach_message_id, c.email
        );
    }
    sqlx::query("DELETE FROM outreach_messages").execute(&db.pool).await.unwrap();
    // The first 500 (one re-match transaction) answer creators 0..100, the rest 100..200.
    let creator_of = |k: usize| if k < 500 { k % 100 } else { 100 + k % 100 };
    let messages: Vec<Vec<u8>> =
        (0..2000).map(|k| reply_to_outreach(&seed, creator_of(k), k as u32)).collect();
    imap.append_all("INBOX", &messages).await;

    let mut app = spawn_app(AppOptions::on(db, imap)).await;
    app.wait_for_rows("inbound_messages", 2000, Duration::from_secs(120)).await;
    let unmatched = "SELECT count(*) FROM inbound_messages WHERE kind = 'unmatched'";
    assert_eq!(app.db.count(unmatched).await, 2000);
    assert_eq!(app.db.rows("collaborations").await, 0);
    wait_for_socket(&app.env, &app.daemon).await;

    // Creator 150's slot is taken by an uncommitted collaboration: the second re-match
    // transaction waits on it.
    let mut hold = app.db.pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO collaborations (creator_id, campaign_id, source) VALUES ($1, $2, 'manual')",
    )
    .bind(seed.creators[150].id)
    .bind(seed.campaign_id)
    .execute(&mut *hold)
    .await
    .unwrap();
    let path = app.env.path("outreach.csv");
    std::fs::write(&path, csv).unwrap();
    let import = {
        let (sock, path) = (app.env.path("admin.sock"), path.clone());
        std::thread::spawn(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_collabctl"))
                .arg("--socket")
                .arg(sock)
                .args(["outreach", "import"])
                .arg(path)
                .output()
                .unwrap()
        })
    };
    let waiting = "SELECT count(*) FROM pg_stat_activity \
                   WHERE datname = current_database() AND wait_event_type = 'Lock' \
                     AND query ILIKE '%INSERT INTO collaborations%'";
    assert!(
        eventually(Duration::from_secs(60), || async { app.db.count(waiting).await >= 1 }).await,
        "the re-match never reached the held slot: {}",
        app.logs()
    );
    app.daemon.kill();
    hold.rollback().await.unwrap();
    let _ = import.join();
    assert_eq!(app.db.rows("outreach_messages").await, 200, "the import itself committed");
    assert_eq!(app.db.count(unmatched).await, 1500, "only the first transaction committed");
    assert_eq!(app.db.rows("collaborations").await, 100);

    app.respawn();
    app.wait_for_socket().await;
    wait_for_socket(&app.env, &app.daemon).await;
    let r = collabctl_json(&app.env, &["inbox", "rematch"]);
    assert_eq!(
        (r["matched"].as_u64(), r["collaborations_created"].as_u64()),
        (Some(1500), Some(100)),
        "{r}"
    );
    let again = collabctl_json(&app.env, &["inbox", "rematch"]);
    assert_eq!(
        (again["matched"].as_u64(), again["collaborations_created"].as_u64()),
        (Some(0), Some(0))
    );

    // What ingest makes when the outreach comes first.
    let got: Vec<(i64, i64, String, String, Option<String>)> = sqlx::query_as(
        "SELECT creator_id, campaign_id, status::text, source, thread_id FROM collaborations
         ORDER BY creator_id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let mut want: Vec<(i64, i64, String, String, Option<String>)> = seed
        .creators
        .iter()
        .map(|c| {
            let thread = Some(c.outreach_message_id.clone());
            (c.id, seed.campaign_id, "pending".into(), "email".into(), thread)
        })
        .collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(app.db.count("SELECT count(*) FROM inbound_messages WHERE kind = 'reply' AND match_rule = 'in_reply_to' AND collaboration_id IS NOT NULL").await, 2000);
    assert_eq!(
        app.db.count("SELECT count(*) FROM outreach_messages WHERE status = 'replied'").await,
        200
    );
    assert_eq!(app.db.rows("collaboration_events").await, 200);
    assert_eq!(
        app.db.count("SELECT count(*) FROM collaboration_events WHERE kind = 'created' AND reason LIKE '%rematched after import'").await,
        200
    );
}

/// One reply that came before its creator and outreach: `creator add` explains nothing
/// yet, `outreach record` makes it a Pending collaboration that says it was rematched.
#[tokio::test]
async fn a_reply_waiting_unmatched_becomes_a_collaboration_once_its_outreach_is_recorded() {
    let app = daemon_with_only_a_campaign().await;
    let (db, imap, env, daemon) = (&app.db, app.imap(), &app.env, &app.daemon);
    let mid = "o-1@crm.example";
    imap.append(reply(
        "ana@creators.example",
        "r-1@mail.example",
        Some(mid),
        &[mid],
        "Yes please!",
    ))
    .await;
    wait_for_rows(db, "inbound_messages", 1, WAIT, daemon).await;
    assert_eq!(db.count("SELECT count(*) FROM inbound_messages WHERE kind = 'unmatched'").await, 1);

    let c = app.add_creator("Ana", "tiktok", "ana.makes", "ana@creators.example").await;
    assert_eq!(c.handle, "ana.makes", "{c:?}");
    // Her address alone matches no outreach yet: the reply stays unmatched.
    assert_eq!(db.count("SELECT count(*) FROM inbound_messages WHERE kind = 'unmatched'").await, 1);
    assert_eq!(db.rows("collaborations").await, 0);
    let report = app
        .ok(OutreachFields {
            subject: "Hi Ana".into(),
            sent_at: Some(at("2026-11-20T10:00:00Z")),
            ..outreach(&format!("<{mid}>"), "Winter Glow", "ana.makes", "ana@creators.example")
        })
        .await;
    let o = serde_json::to_value(&report).unwrap();
    assert_eq!(
        (o["rematched"]["matched"].as_u64(), o["rematched"]["collaborations_created"].as_u64()),
        (Some(1), Some(1)),
        "{o}"
    );

    let list = collabctl_json(env, &["collab", "list", "--status", "pending"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let id = list[0]["id"].as_i64().unwrap();
    let reason: String = sqlx::query_scalar(
        "SELECT reason FROM collaboration_events WHERE collaboration_id = $1 AND kind = 'created'",
    )
    .bind(id)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(reason.ends_with("matched by in_reply_to; rematched after import"), "{reason}");
    let row = sqlx::query("SELECT kind, match_rule, collaboration_id FROM inbound_messages")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>("kind"), "reply");
    assert_eq!(row.get::<Option<String>, _>("match_rule").as_deref(), Some("in_reply_to"));
    assert_eq!(row.get::<Option<i64>, _>("collaboration_id"), Some(id));
    assert_eq!(outreach_status(db, mid).await, "replied");
}

/// A decline that came before its outreach is read as ingest reads it: once the outreach
/// is recorded, the message is a decline, the outreach declined, the creator opted out of
/// the campaign, and no collaboration opens.
#[tokio::test]
async fn a_decline_waiting_unmatched_declines_once_its_outreach_is_recorded() {
    let app = daemon_with_only_a_campaign().await;
    let db = &app.db;
    let mid = "o-2@crm.example";
    let body = "No thanks, I'm not interested.";
    app.imap()
        .append(reply("bo@creators.example", "r-2@mail.example", Some(mid), &[mid], body))
        .await;
    app.wait_for_rows("inbound_messages", 1, WAIT).await;
    app.ok(creator("Bo", "tiktok", "bo.films")).await;
    let report = app
        .ok(OutreachFields {
            subject: "Hi Bo".into(),
            ..outreach(&format!("<{mid}>"), "Winter Glow", "bo.films", "bo@creators.example")
        })
        .await;
    let o = serde_json::to_value(&report).unwrap();
    assert_eq!(o["rematched"]["matched"], 1, "{o}");
    assert_eq!(o["rematched"]["collaborations_created"], 0, "{o}");
    let kind: String =
        sqlx::query_scalar("SELECT kind FROM inbound_messages").fetch_one(&db.pool).await.unwrap();
    assert_eq!(kind, "decline");
    assert_eq!(outreach_status(db, mid).await, "declined");
    assert_eq!(db.rows("collaborations").await, 0);
    assert_eq!(db.rows("campaign_unsubscribes").await, 1);
    assert_eq!(db.count("SELECT count(*) FROM creator_events WHERE kind = 'declined'").await, 1);
}

/// A daemon watching an empty Dovecot mailbox, with the campaign "Winter Glow" and no
/// creator or outreach yet: mail that comes before its CRM import.
async fn daemon_with_only_a_campaign() -> TestApp {
    let db = TestDb::new().await;
    sqlx::query("INSERT INTO campaigns (name) VALUES ('Winter Glow')")
        .execute(&db.pool)
        .await
        .unwrap();
    spawn_app(AppOptions { db: Some(db), ..AppOptions::default() }).await
}

/// A second mail under a stored Message-ID is dropped (one Message-ID, one message), but
/// when its sender or text differ it is logged with both, so it can be found; a true copy
/// is dropped quietly.
#[tokio::test]
async fn a_changed_mail_under_a_known_message_id_is_logged_with_both() {
    let (db, _seed, imap) = seeded_mailbox(1).await;
    let app = spawn_app(AppOptions::on(db, imap)).await;
    let original = reply("ana@creators.example", "same@mail.example", None, &[], "Yes please");
    app.imap().append(original.clone()).await;
    app.wait_for_rows("inbound_messages", 1, WAIT).await;
    app.imap().append(original).await; // a true copy
    let forged = reply("mallory@evil.example", "same@mail.example", None, &[], "Send the fee here");
    app.imap().append(forged).await;
    let logged = eventually(WAIT, || async {
        app.logs().contains("reusing a stored Message-ID")
            && app.db.count("SELECT last_uid FROM mailbox_sync WHERE mailbox = 'brand'").await == 3
    })
    .await;
    let logs = app.logs();
    assert!(logged, "{logs}");
    assert_eq!(app.db.rows("inbound_messages").await, 1, "both later mails were dropped");
    let warnings: Vec<&str> =
        logs.lines().filter(|l| l.contains("reusing a stored Message-ID")).collect();
    assert_eq!(warnings.len(), 1, "only the changed one is logged: {warnings:?}");
    let w = warnings[0];
    assert!(w.contains("kept_uid=1") && w.contains("dropped_uid=3"), "{w}");
    assert!(w.contains("sender_differs=true") && w.contains("body_differs=true"), "{w}");
}
