//! Test mail and the data it answers: a seeded campaign with creators and outreach
//! ([`seed`]), replies shaped like Gmail's ([`reply`]), and the database-plus-Dovecot
//! starting points most ingest tests share.

use super::{BRAND, Dovecot, TestDb};

/// Seeded campaign, creators and outreach, the shape every ingest test starts from.
pub struct Seed {
    pub campaign_id: i64,
    pub creators: Vec<SeedCreator>,
}

pub struct SeedCreator {
    pub id: i64,
    pub email: String,
    pub outreach_message_id: String,
}

/// Creates one campaign and `n` creators, each with one outreach message.
pub async fn seed(db: &TestDb, n: usize) -> Seed {
    let campaign_id: i64 =
        sqlx::query_scalar("INSERT INTO campaigns (name) VALUES ('Winter Glow') RETURNING id")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    let mut creators = Vec::new();
    for i in 0..n {
        let email = format!("creator{i}@mail.example");
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO creators (name, platform, handle) VALUES ($1, 'tiktok', $2) RETURNING id",
        )
        .bind(format!("Creator {i}"))
        .bind(format!("creator_{i}"))
        .fetch_one(&db.pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO creator_emails (creator_id, address, role) VALUES ($1, $2, 'creator')",
        )
        .bind(id)
        .bind(&email)
        .execute(&db.pool)
        .await
        .unwrap();
        let mid = format!("outreach-{i}.{}@brand.example", rand::random::<u32>());
        sqlx::query(
            "INSERT INTO outreach_messages (message_id, creator_id, campaign_id, to_address, subject)
             VALUES ($1, $2, $3, $4, 'Winter Glow x you')",
        )
        .bind(&mid)
        .bind(id)
        .bind(campaign_id)
        .bind(&email)
        .execute(&db.pool)
        .await
        .unwrap();
        creators.push(SeedCreator { id, email, outreach_message_id: mid });
    }
    Seed { campaign_id, creators }
}

/// A plain-text reply, shaped like what Gmail sends.
pub fn reply(
    from: &str,
    message_id: &str,
    in_reply_to: Option<&str>,
    references: &[&str],
    body: &str,
) -> Vec<u8> {
    let mut m = format!(
        "From: Creator <{from}>\r\nTo: Brand <{BRAND}>\r\nSubject: Re: Winter Glow x you\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n"
    );
    if let Some(irt) = in_reply_to {
        m.push_str(&format!("In-Reply-To: <{irt}>\r\n"));
    }
    if !references.is_empty() {
        let refs: Vec<String> = references.iter().map(|r| format!("<{r}>")).collect();
        m.push_str(&format!("References: {}\r\n", refs.join(" ")));
    }
    m.push_str("Content-Type: text/plain; charset=UTF-8\r\n\r\n");
    m.push_str(body);
    m.push_str("\r\n\r\nOn Sun, 22 Nov 2026 at 09:00, Brand <partners@brand.example> wrote:\r\n> Would you like to work with us?\r\n");
    m.into_bytes()
}

/// Reply to seeded creator `i`'s outreach with In-Reply-To and References set.
pub fn reply_to_outreach(seed: &Seed, i: usize, n: u32) -> Vec<u8> {
    let c = &seed.creators[i];
    reply(
        &c.email,
        &format!("reply-{i}-{n}@mail.example"),
        Some(&c.outreach_message_id),
        &[&c.outreach_message_id],
        "Hi! Yes, I'd love to do this. What are the next steps?",
    )
}
/// A fresh database seeded with `creators` creators and their outreach, and an empty
/// private Dovecot: where most tests start.
pub async fn seeded_mailbox(creators: usize) -> (TestDb, Seed, Dovecot) {
    seeded_mailbox_with(creators, "").await
}

/// [`seeded_mailbox`] with extra Dovecot configuration.
pub async fn seeded_mailbox_with(creators: usize, dovecot_conf: &str) -> (TestDb, Seed, Dovecot) {
    let db = TestDb::new().await;
    let seed = seed(&db, creators).await;
    (db, seed, Dovecot::start_with(dovecot_conf))
}
/// A seeded database and a Dovecot INBOX holding `messages` replies spread over
/// `creators` creators (message k comes from creator k % creators).
pub async fn loaded_mailbox(creators: usize, messages: usize) -> (TestDb, Seed, Dovecot) {
    let (db, seed, imap) = seeded_mailbox(creators).await;
    let all: Vec<Vec<u8>> =
        (0..messages).map(|k| reply_to_outreach(&seed, k % creators, k as u32)).collect();
    imap.append_all("INBOX", &all).await;
    (db, seed, imap)
}
