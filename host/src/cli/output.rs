//! Rendering: text for people, JSON for scripts.

use super::Exit;
use serde::Serialize;
use std::io::Write;

pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints a value as pretty JSON on stdout.
    pub fn json<T: Serialize>(&self, value: &T) {
        match serde_json::to_string_pretty(value) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("error: could not render JSON: {e}"),
        }
    }

    /// Prints a line of text on stdout.
    pub fn line(&self, text: impl std::fmt::Display) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{text}");
    }

    /// Prints a note for people on stderr (never in JSON mode's stdout).
    pub fn note(&self, text: impl std::fmt::Display) {
        eprintln!("{text}");
    }

    /// Reports an error: on stderr as text, or on stdout as JSON.
    pub fn error(&self, exit: Exit, error: &anyhow::Error) {
        if self.json {
            self.json(&serde_json::json!({
                "error": {
                    "code": exit.name(),
                    "exitCode": exit as u8,
                    "message": format!("{error:#}"),
                }
            }));
        } else {
            eprintln!("error: {error:#}");
        }
    }
}
