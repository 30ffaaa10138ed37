//! The browser flow: authorization code with PKCE, redirected to a
//! listener on loopback.

use super::token::{AGENT_CLIENT_ID, AuthFailure, Identity};
use anyhow::{Context, Result};
use sha2::Digest;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};
use tether_cloud_api::identity::TokenResponse;

const GIVE_UP_AFTER: Duration = Duration::from_secs(300);

/// `None` when no browser could be opened (the caller falls back to the
/// device code).
pub(super) fn run(
    id: &Identity,
    tenant: &str,
    scope: &str,
    say: &mut dyn FnMut(&str),
) -> Result<Option<TokenResponse>> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .context("could not listen on loopback for the sign-in redirect")?;
    let redirect = format!("http://127.0.0.1:{}/", listener.local_addr()?.port());
    let verifier = tether_cloud_api::jwt::b64url(&crate::util::random_bytes::<32>());
    let challenge = tether_cloud_api::jwt::b64url(&sha2::Sha256::digest(verifier.as_bytes()));
    let state = hex::encode(crate::util::random_bytes::<16>());
    let scope = format!("{scope} offline_access");
    let mut url = id.url(tenant, "authorize")?;
    url.query_pairs_mut()
        .append_pair("client_id", AGENT_CLIENT_ID)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", &scope)
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    if !open_browser(url.as_str()) {
        return Ok(None);
    }
    say(&format!(
        "Sign in in the browser that opened. If none did, open this address: {url}"
    ));

    listener.set_nonblocking(true)?;
    let started = Instant::now();
    let (mut stream, _) = loop {
        match listener.accept() {
            Ok(conn) => break conn,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if started.elapsed() > GIVE_UP_AFTER {
                    return Err(AuthFailure {
                        method: "browser",
                        message: "nobody signed in within 5 minutes; run the command again".into(),
                    }
                    .into());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e).context("the sign-in redirect listener failed"),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let target = line.split_whitespace().nth(1).unwrap_or("/");
    let query: std::collections::HashMap<String, String> =
        url::Url::parse(&format!("http://x{target}"))
            .map(|u| u.query_pairs().into_owned().collect())
            .unwrap_or_default();
    let answer = |stream: &mut std::net::TcpStream, text: &str| {
        let body = format!("<!doctype html><p>{text}</p>");
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
    };
    if query.get("state") != Some(&state) {
        answer(
            &mut stream,
            "This sign-in does not match; return to the terminal.",
        );
        return Err(AuthFailure {
            method: "browser",
            message:
                "the redirect's state does not match this sign-in (a stale or forged redirect)"
                    .into(),
        }
        .into());
    }
    if let Some(error) = query.get("error") {
        answer(
            &mut stream,
            "The sign-in was not completed; return to the terminal.",
        );
        let detail = query.get("error_description").cloned().unwrap_or_default();
        return Err(AuthFailure {
            method: "browser",
            message: format!("{detail} ({error})"),
        }
        .into());
    }
    let Some(code) = query.get("code") else {
        answer(&mut stream, "No code arrived; return to the terminal.");
        return Err(AuthFailure {
            method: "browser",
            message: "the redirect carried no authorization code".into(),
        }
        .into());
    };
    answer(
        &mut stream,
        "Signed in. You may close this window and return to the terminal.",
    );
    match id.token(
        tenant,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", AGENT_CLIENT_ID),
            ("code", code),
            ("redirect_uri", &redirect),
            ("code_verifier", &verifier),
        ],
    )? {
        Ok(token) => Ok(Some(token)),
        Err(e) => Err(AuthFailure {
            method: "browser",
            message: format!("{} ({})", e.error_description, e.error),
        }
        .into()),
    }
}

/// Opens `url` with `$BROWSER`, or the desktop's opener.
fn open_browser(url: &str) -> bool {
    let opener = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| {
            if cfg!(windows) {
                "explorer".into()
            } else if cfg!(target_os = "macos") {
                "open".into()
            } else {
                "xdg-open".into()
            }
        });
    std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
