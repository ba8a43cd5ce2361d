//! Which configuration entries an event goes to (API §14.5, "Matching").

use super::NotificationEntry;

/// Event name of a creation or overwrite.
pub const OBJECT_CREATED_PUT: &str = "s3:ObjectCreated:Put";
/// Event name of a deletion.
pub const OBJECT_REMOVED_DELETE: &str = "s3:ObjectRemoved:Delete";
/// Event name of the test-endpoint sample.
pub const TEST_EVENT: &str = "s3:TestEvent";
/// The event patterns a configuration entry may subscribe to.
pub const EVENT_PATTERNS: &[&str] = &["s3:ObjectCreated:*", "s3:ObjectRemoved:*"];

/// Whether `pattern` selects `event`: equal, or a wildcard `X:*` and `event` starts
/// with `X:`.
pub fn event_matches(pattern: &str, event: &str) -> bool {
    if pattern == event {
        return true;
    }
    match pattern.strip_suffix('*') {
        Some(stem) if stem.ends_with(':') => event.starts_with(stem),
        _ => false,
    }
}

impl NotificationEntry {
    /// Whether this entry wants `event` for `key`: one of its `events` matches
    /// the name, and the key passes the prefix and suffix filters (empty or absent
    /// filters always pass).
    pub fn matches(&self, event: &str, key: &str) -> bool {
        self.events.iter().any(|p| event_matches(p, event))
            && self.prefix.as_deref().is_none_or(|p| key.starts_with(p))
            && self.suffix.as_deref().is_none_or(|s| key.ends_with(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(events: &[&str], prefix: Option<&str>, suffix: Option<&str>) -> NotificationEntry {
        NotificationEntry {
            id: "x".into(),
            endpoint: "http://h/".into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            prefix: prefix.map(str::to_string),
            suffix: suffix.map(str::to_string),
            secret: None,
        }
    }

    #[test]
    fn wildcards_and_exact_names() {
        assert!(event_matches("s3:ObjectCreated:*", OBJECT_CREATED_PUT));
        assert!(!event_matches("s3:ObjectCreated:*", OBJECT_REMOVED_DELETE));
        assert!(event_matches("s3:ObjectRemoved:*", OBJECT_REMOVED_DELETE));
        assert!(event_matches(OBJECT_CREATED_PUT, OBJECT_CREATED_PUT));
        assert!(!event_matches("s3:ObjectCreated", OBJECT_CREATED_PUT));
        // `*` alone is not a wildcard of the contract.
        assert!(!event_matches("*", OBJECT_CREATED_PUT));
        assert!(!event_matches("s3:Object*", OBJECT_CREATED_PUT));
    }

    #[test]
    fn prefix_and_suffix_filters() {
        let e = entry(&["s3:ObjectCreated:*"], Some("data/"), Some(".csv"));
        assert!(e.matches(OBJECT_CREATED_PUT, "data/a.csv"));
        assert!(!e.matches(OBJECT_CREATED_PUT, "data/a.json"));
        assert!(!e.matches(OBJECT_CREATED_PUT, "other/a.csv"));
        assert!(!e.matches(OBJECT_REMOVED_DELETE, "data/a.csv"));
        let open = entry(&["s3:ObjectRemoved:*"], Some(""), None);
        assert!(open.matches(OBJECT_REMOVED_DELETE, "anything"));
    }
}
