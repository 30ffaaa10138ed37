//! Redaction of secrets from text: private keys, JWTs, and the values of
//! keys that name secrets, in JSON, YAML, TOML, query strings and logs.

use regex::Regex;
use std::sync::OnceLock;

pub const REDACTED: &str = "[REDACTED]";

struct Patterns {
    pem: Regex,
    jwt: Regex,
    protected: Regex,
    assignment: Regex,
    bearer: Regex,
    userinfo: Regex,
    sas: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let build = |re: &str| Regex::new(re).unwrap_or_else(|e| unreachable!("redaction pattern {re}: {e}"));
        Patterns {
            pem: build(r"(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----"),
            jwt: build(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}"),
            // Protected settings are secret whole, whatever their keys: an
            // object value (up to two levels deep) goes entirely.
            protected: build(r#"(?i)("?protected[_-]?settings"?\s*[:=]\s*)\{(?:[^{}]|\{[^{}]*\})*\}"#),
            // name = value, name: value, "name": "value", name=value&…
            assignment: build(
                r#"(?i)("?[A-Za-z0-9_.-]*(?:secret|password|passwd|pwd|token|assertion|protected[_-]?settings|private[_-]?key|api[_-]?key|credential|admin[_-]?key|accountkey|sharedaccesskey)[A-Za-z0-9_.-]*"?\s*[:=]\s*)("(?:[^"\\]|\\.)*"|'[^']*'|[^\s,&;{}\[\]]+)"#,
            ),
            bearer: build(r"(?i)(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
            // A SAS signature: `sig=` exactly, in a query string.
            sas: build(r"(?i)([?&;\s]sig=)[^\s&;,]+"),
            // scheme://user:password@host: the whole userinfo goes.
            userinfo: build(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@:]*:[^/\s@]*@"),
        }
    })
}

/// `text` with every secret it can recognise replaced by [`REDACTED`].
pub fn redact(text: &str) -> String {
    let p = patterns();
    let text = p.pem.replace_all(text, REDACTED);
    let text = p
        .sas
        .replace_all(&text, format!("${{1}}{REDACTED}").as_str());
    let text = p
        .userinfo
        .replace_all(&text, format!("${{1}}{REDACTED}@").as_str());
    let text = p.jwt.replace_all(&text, REDACTED);
    let text = p
        .bearer
        .replace_all(&text, format!("$1 {REDACTED}").as_str());
    let text = p
        .protected
        .replace_all(&text, format!("${{1}}\"{REDACTED}\"").as_str());
    let text = p.assignment.replace_all(&text, |c: &regex::Captures| {
        format!("{}\"{REDACTED}\"", &c[1])
    });
    text.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_every_shape_are_redacted() {
        let planted = [
            "client_secret=s3cr3t-value-1&scope=x",
            r#"{"service-principal-secret": "s3cr3t-value-2", "ok": 1}"#,
            "password: s3cr3t-value-3",
            "protectedSettings = { token = \"s3cr3t-value-4\" }",
            r#"{"protectedSettings": {"plain": "s3cr3t-value-6", "nested": {"x": 1}}}"#,
            "Authorization: Bearer s3cr3t-value-5-abcdef",
            "token eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl here",
            "https://store.example/c/b?sv=2024&sig=s3cr3t-value-7%3D&se=x",
            "Server=db;User Id=me;Pwd=s3cr3t-value-8;",
            "HTTPS_PROXY=http://user:s3cr3t-value-9@127.0.0.1:3128",
            "proxy http://me:s3cr3t-value-10@proxy:8080/ refused",
            "AccountKey=s3cr3t-value-11;EndpointSuffix=core",
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END PRIVATE KEY-----",
        ];
        for p in planted {
            let out = redact(p);
            assert!(!out.contains("s3cr3t"), "{p} -> {out}");
            assert!(!out.contains("eyJzdWIi"), "{out}");
            assert!(!out.contains("MC4CAQAw"), "{out}");
            assert!(out.contains(REDACTED), "{out}");
        }
        for plain in [
            "nothing to hide: count=3",
            "signal=9 design=ok",
            "http://127.0.0.1:8080/path",
        ] {
            assert_eq!(redact(plain), plain);
        }
    }
}
