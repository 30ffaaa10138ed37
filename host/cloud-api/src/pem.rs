//! PEM, as the keys and certificates of both sides are written and read:
//! `-----BEGIN LABEL-----`, base64 in lines of 64, `-----END LABEL-----`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// `der` as one PEM block.
pub fn encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Every well-formed block in `text`, in order: its label and its bytes.
/// Headers (`Proc-Type: …`) are skipped; a block whose body is not base64,
/// or that never ends, is left out.
pub fn blocks(text: &str) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = after[..label_end].to_string();
        let end_marker = format!("-----END {label}-----");
        let content = &after[label_end + 5..];
        let Some(end) = content.find(&end_marker) else {
            break;
        };
        let body: String = content[..end]
            .lines()
            .map(str::trim)
            .filter(|l| !l.contains(':'))
            .collect();
        if let Ok(der) = STANDARD.decode(body) {
            found.push((label, der));
        }
        rest = &content[end + end_marker.len()..];
    }
    found
}

/// The first block labelled `label`.
pub fn block(text: &str, label: &str) -> Option<Vec<u8>> {
    blocks(text)
        .into_iter()
        .find(|(l, _)| l == label)
        .map(|(_, der)| der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_malformed_text_is_no_panic() {
        let der: Vec<u8> = (0..=200).collect();
        let text = encode("PRIVATE KEY", &der);
        assert!(text.lines().all(|l| l.len() <= 64));
        assert_eq!(block(&text, "PRIVATE KEY"), Some(der));
        for bad in [
            "-----BEGIN X-----END X-----",
            "-----BEGIN -----",
            "-----BEGIN A-----\n!!\n-----END A-----",
        ] {
            let _ = blocks(bad);
        }
        assert_eq!(
            blocks("-----BEGIN A-----\nAAEC\n-----END A-----\n"),
            vec![("A".to_string(), vec![0, 1, 2])]
        );
    }
}
