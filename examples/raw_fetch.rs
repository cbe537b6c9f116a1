//! The raw limit for the benchmark: fetch every message body of a folder in batches of
//! BATCH UIDs (collabd's default `ingest.batch_size` unless given), as collabd does, and
//! do nothing with it.
//! `cargo run --release --example raw_fetch -- HOST PORT USER PASSWORD FOLDER [BATCH]`

use futures::TryStreamExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (host, port, user, password, folder, batch) = match args.as_slice() {
        [_, h, p, u, pw, f] => (h, p, u, pw, f, 500),
        [_, h, p, u, pw, f, b] => (h, p, u, pw, f, b.parse()?),
        _ => anyhow::bail!("usage: raw_fetch HOST PORT USER PASSWORD FOLDER [BATCH]"),
    };
    let started = std::time::Instant::now();
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port.parse::<u16>()?)).await?;
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await?;
    let mut session = client.login(user, password).await.map_err(|(e, _)| e)?;
    session.examine(folder).await?;
    let mut uids: Vec<u32> = session.uid_search("ALL").await?.into_iter().collect();
    uids.sort_unstable();
    let (mut messages, mut bytes) = (0usize, 0usize);
    for chunk in uids.chunks(batch) {
        let set: Vec<String> = chunk.iter().map(u32::to_string).collect();
        let fetched: Vec<_> = session
            .uid_fetch(set.join(","), "(UID RFC822.SIZE BODY.PEEK[])")
            .await?
            .try_collect()
            .await?;
        messages += fetched.len();
        bytes += fetched.iter().map(|f| f.body().map_or(0, <[u8]>::len)).sum::<usize>();
    }
    session.logout().await?;
    let secs = started.elapsed().as_secs_f64();
    println!("{messages} {bytes} {secs:.3}");
    Ok(())
}
