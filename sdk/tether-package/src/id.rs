//! `Publisher/Name`, the extension's id: the one parsed type from which a
//! host builds any path, so that no id can name a directory other than its
//! own (`..`, `.`, a separator or a leading dot is refused at parsing).

use std::fmt;

/// An extension's id. Compared, hashed and keyed case-insensitively, as
/// operators write allowlists; displayed as spelled.
#[derive(Debug, Clone)]
pub struct ExtensionId {
    publisher: String,
    name: String,
}

/// Why a string is not an extension id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not an extension id: {reason}")]
pub struct IdError {
    pub text: String,
    pub reason: String,
}

/// A publisher or name: 1 to 128 letters, digits, '.', '-', '_', not
/// starting with '.' (so never `.` or `..`, never hidden).
pub fn check_part(what: &str, part: &str) -> Result<(), String> {
    if part.is_empty() || part.len() > 128 {
        return Err(format!("the {what} is 1 to 128 characters"));
    }
    if part.starts_with('.') {
        return Err(format!("the {what} `{part}` may not start with '.'"));
    }
    if !part
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err(format!(
            "the {what} `{part}` may hold only letters, digits, '.', '-', '_'"
        ));
    }
    Ok(())
}

impl ExtensionId {
    pub fn new(publisher: &str, name: &str) -> Result<Self, IdError> {
        let text = format!("{publisher}/{name}");
        let fail = |reason: String| IdError {
            text: text.clone(),
            reason,
        };
        check_part("publisher", publisher).map_err(fail)?;
        check_part("name", name).map_err(fail)?;
        Ok(Self {
            publisher: publisher.into(),
            name: name.into(),
        })
    }

    /// Parses `Publisher/Name`.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        match text.split_once('/') {
            Some((publisher, name)) => Self::new(publisher, name),
            None => Err(IdError {
                text: text.into(),
                reason: "it is Publisher/Name, for example Contoso/Inventory".into(),
            }),
        }
    }

    pub fn publisher(&self) -> &str {
        &self.publisher
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lowercase form: map keys, journal names, directories.
    pub fn key(&self) -> String {
        format!(
            "{}/{}",
            self.publisher.to_ascii_lowercase(),
            self.name.to_ascii_lowercase()
        )
    }

    /// The two path components of its directory, lowercase; each is a
    /// single normal component by construction.
    pub fn dir_parts(&self) -> [String; 2] {
        [
            self.publisher.to_ascii_lowercase(),
            self.name.to_ascii_lowercase(),
        ]
    }
}

impl fmt::Display for ExtensionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.publisher, self.name)
    }
}

impl PartialEq for ExtensionId {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for ExtensionId {}

impl std::hash::Hash for ExtensionId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl std::str::FromStr for ExtensionId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_name_another_directory_are_refused() {
        for bad in [
            "Contoso/..",
            "../Name",
            "./Name",
            "Contoso/.",
            "Contoso/.hidden",
            "Contoso/../../etc",
            "Contoso/a/b",
            "Contoso\\x/y",
            "Contoso/a\\b",
            "/Name",
            "Contoso/",
            "Contoso",
            "Con toso/Name",
            "Contoso/Na\0me",
        ] {
            assert!(ExtensionId::parse(bad).is_err(), "{bad} was accepted");
        }
        let id = ExtensionId::parse("Contoso/Inventory.Agent-2_x").expect("valid");
        assert_eq!(id.dir_parts(), ["contoso", "inventory.agent-2_x"]);
        assert_eq!(
            id,
            ExtensionId::parse("contoso/INVENTORY.agent-2_x").expect("valid")
        );
        assert_eq!(id.to_string(), "Contoso/Inventory.Agent-2_x");
    }
}
