//! Status and documents: what an extension reports about itself during a
//! call, kept by the host once the call returns (its recorded status, the
//! document sent to the cloud).

use super::{Harvest, Setup, Unit};
use crate::runtime::activation::ReportedStatus;
use crate::runtime::wit::StatusState;

/// The most a reported document may hold.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// The most a status message keeps, in characters.
const MAX_MESSAGE_CHARS: usize = 4096;

#[derive(Default)]
pub(crate) struct Status {
    status: Option<ReportedStatus>,
    document: Option<String>,
}

impl Unit for Status {
    fn prepare(_setup: &mut Setup<'_>) -> anyhow::Result<Self> {
        Ok(Self::default())
    }

    fn begin_call(&mut self, _deadline: std::time::Instant) {
        *self = Self::default();
    }

    fn end_call(&mut self, harvest: &mut Harvest) {
        harvest.status = self.status.take();
        harvest.document = self.document.take();
    }
}

impl Status {
    pub(crate) fn report(&mut self, state: StatusState, message: &str) {
        let message = message.chars().take(MAX_MESSAGE_CHARS).collect();
        self.status = Some(ReportedStatus { state, message });
    }

    /// Keeps `json` if it is one JSON object within the size cap; else says
    /// what is wrong with it.
    pub(crate) fn document(&mut self, json: String) -> Result<(), String> {
        if json.len() > MAX_DOCUMENT_BYTES {
            return Err(format!(
                "a document is at most {MAX_DOCUMENT_BYTES} bytes; this one is {}",
                json.len()
            ));
        }
        match serde_json::from_str::<serde_json::Value>(&json) {
            Ok(serde_json::Value::Object(_)) => {
                self.document = Some(json);
                Ok(())
            }
            Ok(_) => Err("a document is one JSON object".into()),
            Err(e) => Err(format!("the document is not JSON: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_one_json_object_within_the_cap() {
        let mut status = Status::default();
        assert!(
            status
                .document("[1]".into())
                .expect_err("refused")
                .contains("one JSON object")
        );
        assert!(
            status
                .document("{".into())
                .expect_err("refused")
                .contains("not JSON")
        );
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_DOCUMENT_BYTES));
        assert!(
            status
                .document(big)
                .expect_err("refused")
                .contains("at most")
        );
        status.document("{\"os\":\"debian\"}".into()).expect("kept");
        let mut harvest = Harvest::default();
        status.end_call(&mut harvest);
        assert_eq!(harvest.document.as_deref(), Some("{\"os\":\"debian\"}"));
    }

    #[test]
    fn nothing_a_call_reported_is_seen_by_the_next() {
        let mut status = Status::default();
        status.report(StatusState::Error, &"e".repeat(MAX_MESSAGE_CHARS + 10));
        status.document("{}".into()).expect("kept");
        status.begin_call(std::time::Instant::now());
        let mut harvest = Harvest::default();
        status.end_call(&mut harvest);
        assert!(harvest.status.is_none() && harvest.document.is_none());

        status.report(StatusState::Warning, &"w".repeat(MAX_MESSAGE_CHARS + 10));
        status.end_call(&mut harvest);
        let reported = harvest.status.expect("reported");
        assert_eq!(reported.message.chars().count(), MAX_MESSAGE_CHARS);
    }
}
