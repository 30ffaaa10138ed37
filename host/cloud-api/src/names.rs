//! Names ARM accepts.

/// Whether `name` is a valid machine or extension name:
/// `^[a-zA-Z0-9-_\.]{1,54}$`.
///
/// ```
/// assert!(tether_cloud_api::names::is_valid_resource_name("web-01.prod_a"));
/// assert!(!tether_cloud_api::names::is_valid_resource_name("web 01"));
/// ```
pub fn is_valid_resource_name(name: &str) -> bool {
    (1..=54).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// What a valid resource name looks like, for error messages.
pub const RESOURCE_NAME_RULE: &str =
    "1 to 54 characters: letters, digits, '-', '_' and '.' (^[a-zA-Z0-9-_\\.]{1,54}$)";

/// The resource id of a machine.
pub fn machine_id(subscription: &str, resource_group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.HybridCompute/machines/{name}"
    )
}

/// The resource id of a machine's extension.
pub fn extension_id(machine_id: &str, name: &str) -> String {
    format!("{machine_id}/extensions/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_arms_rule() {
        assert!(is_valid_resource_name("a"));
        assert!(is_valid_resource_name(&"a".repeat(54)));
        assert!(!is_valid_resource_name(&"a".repeat(55)));
        assert!(!is_valid_resource_name(""));
        for bad in ["a/b", "a b", "ä", "a:b", "a$"] {
            assert!(!is_valid_resource_name(bad), "{bad}");
        }
    }
}
