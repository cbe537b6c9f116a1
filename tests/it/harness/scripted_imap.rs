//! A scripted IMAP server for races a real server cannot be made to show on demand:
//! mail that arrives during a FETCH or just before IDLE's continuation.

/// A scripted IMAP server that announces new mail the way the issue describes (GreenMail,
/// and Dovecot for mail that arrives during a command): once, as `* N EXISTS` on the
/// completion of whatever command runs when it arrives, or just before IDLE's `+`. A test
/// can make mail arrive in the middle of the next body FETCH or the next IDLE command.
pub struct ScriptedImap {
    pub port: u16,
    state: std::sync::Arc<std::sync::Mutex<ScriptedState>>,
    arrived: std::sync::Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct ScriptedState {
    messages: Vec<Vec<u8>>,
    /// Messages the session has been told of (EXISTS); later ones are news.
    announced: usize,
    during_fetch: Vec<Vec<u8>>,
    before_idle_continuation: Vec<Vec<u8>>,
}

impl ScriptedImap {
    pub async fn start() -> ScriptedImap {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = std::sync::Arc::<std::sync::Mutex<ScriptedState>>::default();
        let arrived = std::sync::Arc::new(tokio::sync::Notify::new());
        let (st, ar) = (state.clone(), arrived.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(scripted_session(tcp, st.clone(), ar.clone()));
            }
        });
        ScriptedImap { port, state, arrived }
    }

    /// New mail, announced to a session in IDLE at once (else on its next command).
    pub fn deliver(&self, message: Vec<u8>) {
        self.state.lock().unwrap().messages.push(message);
        self.arrived.notify_waiters();
    }

    /// Mail that arrives while the next body FETCH runs.
    pub fn deliver_during_next_fetch(&self, message: Vec<u8>) {
        self.state.lock().unwrap().during_fetch.push(message);
    }

    /// Mail that arrives while the next IDLE command starts (announced before its `+`).
    pub fn deliver_before_next_idle_continuation(&self, message: Vec<u8>) {
        self.state.lock().unwrap().before_idle_continuation.push(message);
    }
}

async fn scripted_session(
    tcp: tokio::net::TcpStream,
    state: std::sync::Arc<std::sync::Mutex<ScriptedState>>,
    arrived: std::sync::Arc<tokio::sync::Notify>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (r, mut w) = tcp.into_split();
    let mut lines = BufReader::new(r).lines();
    w.write_all(b"* OK [CAPABILITY IMAP4rev1 IDLE] scripted ready\r\n").await.unwrap();
    // Announces what the session was not told of yet.
    let news = |out: &mut Vec<u8>| {
        let mut s = state.lock().unwrap();
        if s.messages.len() > s.announced {
            s.announced = s.messages.len();
            out.extend_from_slice(format!("* {} EXISTS\r\n", s.announced).as_bytes());
        }
    };
    while let Ok(Some(line)) = lines.next_line().await {
        let mut words = line.splitn(3, ' ');
        let (tag, cmd) = (words.next().unwrap_or(""), words.next().unwrap_or("").to_uppercase());
        let rest = words.next().unwrap_or("").to_owned();
        let mut out = Vec::new();
        match cmd.as_str() {
            "LOGIN" => {}
            "CAPABILITY" => out.extend_from_slice(b"* CAPABILITY IMAP4rev1 IDLE\r\n"),
            "EXAMINE" | "SELECT" => {
                let n = {
                    let mut s = state.lock().unwrap();
                    s.announced = s.messages.len();
                    s.announced
                };
                out.extend_from_slice(
                    format!(
                        "* FLAGS (\\Seen)\r\n* {n} EXISTS\r\n* 0 RECENT\r\n\
                         * OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT {}] ok\r\n",
                        n + 1
                    )
                    .as_bytes(),
                );
            }
            "UID" => {
                let mut args = rest.splitn(3, ' ');
                let sub = args.next().unwrap_or("").to_uppercase();
                let set = args.next().unwrap_or("").to_owned();
                let items = args.next().unwrap_or("").to_uppercase();
                let s = state.lock().unwrap().announced;
                if sub == "SEARCH" {
                    // "UID SEARCH UID n:*": the known messages from n, else the highest.
                    let from: usize = items
                        .trim_start_matches("UID ")
                        .split(':')
                        .next()
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(1);
                    let mut found: Vec<usize> = (from..=s).collect();
                    if found.is_empty() && s > 0 {
                        found.push(s);
                    }
                    let list: Vec<String> = found.iter().map(|u| u.to_string()).collect();
                    out.extend_from_slice(format!("* SEARCH {}\r\n", list.join(" ")).as_bytes());
                } else if sub == "FETCH" {
                    let body = items.contains("BODY.PEEK[]");
                    if body {
                        let mut st = state.lock().unwrap();
                        let late = std::mem::take(&mut st.during_fetch);
                        st.messages.extend(late);
                    }
                    for uid in parse_uid_set(&set, s) {
                        let m = state.lock().unwrap().messages[uid - 1].clone();
                        out.extend_from_slice(
                            format!("* {uid} FETCH (UID {uid} RFC822.SIZE {}", m.len()).as_bytes(),
                        );
                        if body {
                            out.extend_from_slice(
                                format!(" BODY[] {{{}}}\r\n", m.len()).as_bytes(),
                            );
                            out.extend_from_slice(&m);
                        }
                        out.extend_from_slice(b")\r\n");
                    }
                }
            }
            "IDLE" => {
                {
                    let mut st = state.lock().unwrap();
                    let early = std::mem::take(&mut st.before_idle_continuation);
                    st.messages.extend(early);
                }
                news(&mut out);
                out.extend_from_slice(b"+ idling\r\n");
                w.write_all(&out).await.unwrap();
                out.clear();
                loop {
                    tokio::select! {
                        l = lines.next_line() => {
                            if !matches!(l, Ok(Some(ref d)) if d.eq_ignore_ascii_case("DONE")) {
                                return;
                            }
                            break;
                        }
                        _ = arrived.notified() => {
                            let mut o = Vec::new();
                            news(&mut o);
                            w.write_all(&o).await.unwrap();
                        }
                    }
                }
            }
            "NOOP" => {}
            "LOGOUT" => {
                let _ = w.write_all(format!("* BYE\r\n{tag} OK bye\r\n").as_bytes()).await;
                return;
            }
            _ => {
                let _ = w.write_all(format!("{tag} BAD unknown\r\n").as_bytes()).await;
                continue;
            }
        }
        // Mail that arrived during the command is announced on its completion.
        news(&mut out);
        out.extend_from_slice(format!("{tag} OK done\r\n").as_bytes());
        if w.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// UIDs of an IMAP set such as `1:3,5` (here UIDs are sequence numbers), up to `max`.
fn parse_uid_set(set: &str, max: usize) -> Vec<usize> {
    let mut out = Vec::new();
    for part in set.split(',') {
        let bound = |s: &str| if s == "*" { max } else { s.parse().unwrap_or(0) };
        let (a, b) =
            part.split_once(':').map_or((bound(part), bound(part)), |(a, b)| (bound(a), bound(b)));
        out.extend((a.min(b)..=a.max(b)).filter(|u| *u >= 1 && *u <= max));
    }
    out
}
