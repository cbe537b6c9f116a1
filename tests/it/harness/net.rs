//! Network plumbing between the daemon and its servers: free ports, a throttled relay
//! ([`slow_link`]) and a relay that can be cut and healed ([`CuttableLink`]).

use std::time::Duration;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A TCP relay to `127.0.0.1:target` that sends the server's bytes on at most
/// `bytes_per_sec`: a throttled IMAP server or a slow link, for as long as the test runs.
/// Returns the port to dial.
pub async fn slow_link(target: u16, bytes_per_sec: u64) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else {
                continue;
            };
            let (mut client_rd, mut client_wr) = client.into_split();
            let (mut server_rd, mut server_wr) = server.into_split();
            tokio::spawn(async move { tokio::io::copy(&mut client_rd, &mut server_wr).await });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                while let Ok(n @ 1..) = server_rd.read(&mut buf).await {
                    if client_wr.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    let pause = Duration::from_secs_f64(n as f64 / bytes_per_sec as f64);
                    tokio::time::sleep(pause).await;
                }
            });
        }
    });
    port
}
/// A TCP relay to `127.0.0.1:target` that can be cut: while cut, nothing passes either
/// way and new connections hang, as when a network drops packets; healed, what waited
/// passes on. Lives as long as the test's runtime.
pub struct CuttableLink {
    pub port: u16,
    cut: tokio::sync::watch::Sender<bool>,
}

impl CuttableLink {
    pub async fn start(target: u16) -> CuttableLink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, watch) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut w = watch.clone();
                tokio::spawn(async move {
                    let _ = w.wait_for(|cut| !cut).await;
                    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    else {
                        return;
                    };
                    let (client_rd, client_wr) = client.into_split();
                    let (server_rd, server_wr) = server.into_split();
                    tokio::spawn(pass_while_open(client_rd, server_wr, w.clone()));
                    tokio::spawn(pass_while_open(server_rd, client_wr, w));
                });
            }
        });
        CuttableLink { port, cut }
    }

    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn heal(&self) {
        self.cut.send_replace(false);
    }
}

/// Copies one direction of a [`CuttableLink`], holding each chunk while the link is cut.
async fn pass_while_open(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut link: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16384];
    while let Ok(n @ 1..) = from.read(&mut buf).await {
        if link.wait_for(|cut| !cut).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}
