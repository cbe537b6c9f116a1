//! OAuth2: the fake token server (tests/support/oauth_server.py), a small blocking HTTP
//! client for it, and the SASL payloads (XOAUTH2, OAUTHBEARER) IMAP and SMTP logins send.

use std::process::{Child, Command};
use std::time::Duration;

use super::{BRAND, spawn_reporting_port, support_script};

/// The client the fake token server knows.
pub const OAUTH_CLIENT_ID: &str = "collabd-test";
pub const OAUTH_CLIENT_SECRET: &str = "test-secret";
/// One HTTP answer.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// A blocking HTTP/1.1 request to `127.0.0.1:port`, one connection per request.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpReply {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    tcp.write_all(req.as_bytes()).unwrap();
    tcp.write_all(body).unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP header");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok());
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    HttpReply { status: status.expect("an HTTP status"), headers, body: raw[split + 4..].to_vec() }
}

/// `application/x-www-form-urlencoded`.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

/// Standard base64 with padding (HTTP Basic auth, SASL payloads).
pub fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The fake OAuth2 token server: refresh, device and PKCE code grants, introspection,
/// and `/control/*` endpoints for tests. Killed on drop.
pub struct OAuthServer {
    pub port: u16,
    child: Child,
    /// Holds the server's log (`oauth.log`) for as long as it runs.
    _dir: tempfile::TempDir,
}

impl OAuthServer {
    /// Starts the server with its defaults: access tokens live an hour, refresh tokens
    /// do not rotate, device and code grants belong to [`BRAND`].
    pub fn start() -> OAuthServer {
        let dir = tempfile::Builder::new().prefix("collabd-oauth").tempdir().unwrap();
        let (child, port) = spawn_reporting_port(
            Command::new("python3").arg(support_script("oauth_server.py")).args([
                "--port",
                "0",
                "--verbose",
                "--default-user",
                BRAND,
            ]),
            &dir.path().join("oauth.log"),
        );
        OAuthServer { port, child, _dir: dir }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpReply {
        http_request(self.port, method, path, headers, body)
    }

    /// POSTs a form, without client credentials unless `form` carries them.
    pub fn post_form(&self, path: &str, form: &[(&str, &str)]) -> HttpReply {
        let ct = ("Content-Type", "application/x-www-form-urlencoded");
        self.request("POST", path, &[ct], form_encode(form).as_bytes())
    }

    /// POSTs a form to `/token` with the client's credentials as HTTP Basic auth, as the
    /// `oauth2` crate does.
    pub fn token_request(&self, form: &[(&str, &str)]) -> HttpReply {
        let basic = format!(
            "Basic {}",
            base64(format!("{OAUTH_CLIENT_ID}:{OAUTH_CLIENT_SECRET}").as_bytes())
        );
        let headers =
            [("Content-Type", "application/x-www-form-urlencoded"), ("Authorization", &basic)];
        self.request("POST", "/token", &headers, form_encode(form).as_bytes())
    }

    /// A `/control/*` call that must succeed.
    pub fn control(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let reply = self.request(
            "POST",
            &format!("/control/{path}"),
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        );
        assert_eq!(reply.status, 200, "/control/{path}: {}", reply.text());
        reply.json()
    }

    /// A new grant for `user`; returns its refresh token.
    pub fn grant(&self, user: &str) -> String {
        let v = self.control("grant", serde_json::json!({ "username": user }));
        v["refresh_token"].as_str().unwrap().to_owned()
    }

    /// Redeems a refresh token; the token answer, which must be a success.
    pub fn refresh(&self, refresh_token: &str) -> serde_json::Value {
        let reply = self
            .token_request(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]);
        assert_eq!(reply.status, 200, "refresh: {}", reply.text());
        reply.json()
    }

    /// A live access token for `user` (a new grant, refreshed once).
    pub fn access_token(&self, user: &str) -> String {
        let grant = self.grant(user);
        self.refresh(&grant)["access_token"].as_str().unwrap().to_owned()
    }

    /// Approves a pending device authorization, as the user would in a browser.
    pub fn approve(&self, user_code: &str) {
        self.control("approve", serde_json::json!({ "user_code": user_code }));
    }

    /// Revokes every refresh and access token of `user`.
    pub fn revoke(&self, user: &str) {
        self.control("revoke", serde_json::json!({ "username": user }));
    }

    /// Ends the life of `user`'s access tokens now; refresh tokens keep working.
    pub fn expire(&self, user: &str) {
        self.control("expire", serde_json::json!({ "username": user }));
    }

    /// Lifetime of access tokens issued from now on, and whether a refresh replaces the
    /// refresh token (Microsoft) or keeps it (Google).
    pub fn config(&self, access_ttl_secs: u64, rotate: bool) {
        self.control(
            "config",
            serde_json::json!({ "access_ttl": access_ttl_secs, "rotate": rotate }),
        );
    }

    /// Counters and live refresh tokens: `refreshes`, `failed_refreshes`,
    /// `introspections`, `device_polls`, `code_exchanges`, `token_requests`,
    /// `live_refresh_tokens` {user: [token]}, `live_access_tokens` {user: n}, `config`.
    pub fn stats(&self) -> serde_json::Value {
        let reply = self.request("GET", "/control/stats", &[], b"");
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    }
}

impl Drop for OAuthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SASL XOAUTH2's client response (before base64).
pub fn xoauth2_payload(user: &str, token: &str) -> String {
    format!("user={user}\x01auth=Bearer {token}\x01\x01")
}

/// SASL OAUTHBEARER's client response (RFC 7628, before base64).
pub fn oauthbearer_payload(user: &str, host: &str, port: u16, token: &str) -> String {
    format!("n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01")
}

/// Answers the first continuation with the SASL response and any later one (a server's
/// error challenge) with an empty line, which ends the exchange.
pub struct SaslResponse(pub Option<String>);

impl async_imap::Authenticator for SaslResponse {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> String {
        self.0.take().unwrap_or_default()
    }
}
