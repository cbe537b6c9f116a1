//! The OAuth2 test harness works end to end: the fake token server's grants and flows,
//! Dovecot checking bearer tokens against it, and the SMTP sink taking XOAUTH2.

use std::time::Duration;

use crate::harness::*;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::Digest;

fn failed_auth(e: &async_imap::error::Error) -> bool {
    format!("{e:?}").contains("AUTHENTICATIONFAILED")
}

#[tokio::test]
async fn imap_takes_refreshed_tokens_and_refuses_dead_ones() {
    let oauth = OAuthServer::start();
    let imap = Dovecot::start_oauth(&oauth);
    let refresh_token = oauth.grant(BRAND);
    let token = oauth.refresh(&refresh_token);
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 3600);
    let access = token["access_token"].as_str().unwrap();

    for mech in ["XOAUTH2", "OAUTHBEARER"] {
        let mut s = imap.oauth_session(mech, BRAND, access).await.unwrap();
        s.select("INBOX").await.unwrap();
        s.logout().await.unwrap();
        let e = imap.oauth_session(mech, BRAND, "not-a-token").await.unwrap_err();
        assert!(failed_auth(&e), "{mech}: {e:?}");
        // A live token of another user is refused too.
        let e = imap.oauth_session(mech, "someone@brand.example", access).await.unwrap_err();
        assert!(failed_auth(&e), "{mech}: {e:?}");
    }
    // PLAIN still works beside OAuth.
    imap.session().await.logout().await.unwrap();

    // An expired token is refused at login; a session already open lives on until kicked.
    let mut open = imap.oauth_session("XOAUTH2", BRAND, access).await.unwrap();
    oauth.expire(BRAND);
    let e = imap.oauth_session("XOAUTH2", BRAND, access).await.unwrap_err();
    assert!(failed_auth(&e), "{e:?}");
    open.noop().await.unwrap();
    imap.kick(BRAND);
    // doveadm kick signals the session's process and returns; under load the process may
    // answer one more command before it ends. It must end within a few seconds.
    let mut ended = false;
    for _ in 0..50 {
        if open.noop().await.is_err() {
            ended = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ended, "the kicked session still answers after 5 s");
    let fresh = oauth.refresh(&refresh_token)["access_token"].as_str().unwrap().to_owned();
    imap.oauth_session("OAUTHBEARER", BRAND, &fresh).await.unwrap().logout().await.unwrap();

    // Rotation, as Microsoft does it: the old refresh token dies with its first use.
    oauth.config(1, true);
    let rotated = oauth.refresh(&refresh_token);
    let new_refresh = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(rotated["expires_in"], 1);
    let again =
        oauth.token_request(&[("grant_type", "refresh_token"), ("refresh_token", &refresh_token)]);
    assert_eq!(again.status, 400);
    assert_eq!(again.json()["error"], "invalid_grant");
    let short = rotated["access_token"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let e = imap.oauth_session("XOAUTH2", BRAND, short).await.unwrap_err();
    assert!(failed_auth(&e), "{e:?}");

    // Revocation kills refresh and access tokens alike.
    oauth.config(3600, false);
    let live = oauth.refresh(&new_refresh)["access_token"].as_str().unwrap().to_owned();
    oauth.revoke(BRAND);
    let e = imap.oauth_session("OAUTHBEARER", BRAND, &live).await.unwrap_err();
    assert!(failed_auth(&e), "{e:?}");
    let dead =
        oauth.token_request(&[("grant_type", "refresh_token"), ("refresh_token", &new_refresh)]);
    assert_eq!(dead.json()["error"], "invalid_grant");

    let stats = oauth.stats();
    assert_eq!(stats["refreshes"], 6, "{stats}");
    assert_eq!(stats["failed_refreshes"], 2, "{stats}");
    assert!(stats["introspections"].as_u64().unwrap() >= 10, "{stats}");
    assert!(stats["live_refresh_tokens"].get(BRAND).is_none(), "{stats}");
}

#[tokio::test]
async fn device_and_code_flows_issue_grants() {
    let oauth = OAuthServer::start();
    let device = oauth.post_form("/device", &[("client_id", OAUTH_CLIENT_ID), ("scope", "mail")]);
    assert_eq!(device.status, 200, "{}", device.text());
    let device = device.json();
    assert_eq!(device["verification_uri"], oauth.url("/activate"));
    assert_eq!(device["interval"], 1);
    let code = device["device_code"].as_str().unwrap();
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", code),
        ("client_id", OAUTH_CLIENT_ID),
    ];
    assert_eq!(oauth.post_form("/token", &poll).json()["error"], "authorization_pending");
    oauth.approve(device["user_code"].as_str().unwrap());
    let tokens = oauth.post_form("/token", &poll);
    assert_eq!(tokens.status, 200, "{}", tokens.text());
    assert!(tokens.json()["refresh_token"].is_string());
    oauth.control("config", serde_json::json!({ "device_ttl": 0 }));
    let late = oauth.post_form("/device", &[("client_id", OAUTH_CLIENT_ID)]).json();
    let late = [poll[0], ("device_code", late["device_code"].as_str().unwrap()), poll[2]];
    assert_eq!(oauth.post_form("/token", &late).json()["error"], "expired_token");

    // Authorization code with PKCE S256.
    let verifier = "collabd-test-verifier-0123456789-abcdefghijklmnop";
    let digest = sha2::Sha256::digest(verifier.as_bytes());
    let challenge = base64(&digest).replace('+', "-").replace('/', "_").replace('=', "");
    let redirect = "http://127.0.0.1:9/callback";
    let authorize = |state: &str| {
        let query = form_encode(&[
            ("response_type", "code"),
            ("client_id", OAUTH_CLIENT_ID),
            ("redirect_uri", redirect),
            ("state", state),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("scope", "mail offline_access"),
        ]);
        let reply = oauth.request("GET", &format!("/authorize?{query}"), &[], b"");
        assert_eq!(reply.status, 302, "{}", reply.text());
        let location = reply.header("Location").unwrap().to_owned();
        let query = location.strip_prefix(&format!("{redirect}?")).unwrap().to_owned();
        assert!(query.ends_with(&format!("&state={state}")), "{location}");
        query.split('&').find_map(|kv| kv.strip_prefix("code=")).unwrap().to_owned()
    };
    let exchange = |code: &str, verifier: &str, redirect: &str| {
        oauth.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ])
    };
    let code = authorize("st-1");
    assert_eq!(exchange(&code, "wrong-verifier", redirect).json()["error"], "invalid_grant");
    let code = authorize("st-2");
    assert_eq!(exchange(&code, verifier, "http://127.0.0.1:9/other").status, 400);
    let code = authorize("st-3");
    let tokens = exchange(&code, verifier, redirect);
    assert_eq!(tokens.status, 200, "{}", tokens.text());
    let refresh = tokens.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(exchange(&code, verifier, redirect).status, 400, "a code is good once");
    assert_eq!(oauth.refresh(&refresh)["scope"], "mail offline_access");

    let stats = oauth.stats();
    assert_eq!(stats["device_polls"], 3, "{stats}");
    assert_eq!(stats["code_exchanges"], 4, "{stats}");
    assert_eq!(stats["live_refresh_tokens"][BRAND].as_array().unwrap().len(), 2, "{stats}");
}

#[tokio::test]
async fn smtp_sink_takes_xoauth2_from_lettre() {
    let oauth = OAuthServer::start();
    let sink = SmtpSink::start_oauth(&oauth);
    let access = oauth.access_token(BRAND);
    let transport = |secret: &str| {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(sink.port)
            .timeout(Some(Duration::from_secs(20)))
            .credentials(Credentials::new(BRAND.to_owned(), secret.to_owned()))
            .authentication(vec![Mechanism::Xoauth2])
            .build()
    };
    let message = || {
        Message::builder()
            .from(BRAND.parse().unwrap())
            .to("creator0@mail.example".parse().unwrap())
            .subject("Winter Glow x you")
            .body("Would you like to work with us?".to_owned())
            .unwrap()
    };
    transport(&access).send(message()).await.unwrap();
    assert!(sink.received().contains(&format!("X-Auth-User: {BRAND}")), "{}", sink.received());

    let err = transport("not-a-token").send(message()).await.unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    assert_eq!(
        sink.auth_log(),
        format!("XOAUTH2 user={BRAND} accepted\nXOAUTH2 user={BRAND} rejected: inactive token\n")
    );
    assert!(!sink.auth_log().contains(&access));
}
