//! The JSON shapes of local locations (API §17.1, §17.2): s4-core hands out plain
//! [`LocationInfo`], [`Entry`] and [`DirListing`] values; their bytes on the wire
//! are decided here.

use chrono::SecondsFormat;
use s4_core::location::{DirListing, Entry, LocationInfo};
use serde_json::{json, Map, Value};

/// `{"id","name","path","type":"local","available"}`.
pub(crate) fn location(info: &LocationInfo) -> Value {
    json!({
        "id": info.id,
        "name": info.name,
        "path": info.path,
        "type": "local",
        "available": info.available,
    })
}

/// A list of [`location`]s.
pub(crate) fn locations(infos: &[LocationInfo]) -> Value {
    Value::Array(infos.iter().map(location).collect())
}

/// `{"name","path","type","size"?,"modified"?,"target"?}` with `modified` as
/// ISO-8601 UTC with milliseconds; absent fields are omitted.
pub(crate) fn entry(entry: &Entry) -> Value {
    let mut map = Map::new();
    map.insert("name".into(), json!(entry.name));
    map.insert("path".into(), json!(entry.path));
    map.insert("type".into(), json!(entry.kind.as_str()));
    if let Some(size) = entry.size {
        map.insert("size".into(), json!(size));
    }
    if let Some(modified) = &entry.modified {
        map.insert(
            "modified".into(),
            json!(modified.to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
    }
    if let Some(target) = &entry.target {
        map.insert("target".into(), json!(target));
    }
    Value::Object(map)
}

/// `{"files","currentPath","parentPath" (null at the root),"totalCount"}`.
pub(crate) fn listing(listing: &DirListing) -> Value {
    json!({
        "files": listing.files.iter().map(entry).collect::<Vec<_>>(),
        "currentPath": listing.current_path,
        "parentPath": listing.parent_path,
        "totalCount": listing.total_count,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use s4_core::location::EntryKind;

    use super::*;

    #[test]
    fn shapes() {
        let info = LocationInfo {
            id: "local-1".into(),
            name: "later".into(),
            path: "/srv/later".into(),
            available: false,
        };
        assert_eq!(
            location(&info),
            json!({"id": "local-1", "name": "later", "path": "/srv/later",
                   "type": "local", "available": false})
        );
        let dir = Entry {
            name: "data".into(),
            path: "data".into(),
            kind: EntryKind::Directory,
            size: None,
            modified: None,
            target: None,
        };
        let link = Entry {
            name: "link.txt".into(),
            path: "link.txt".into(),
            kind: EntryKind::Symlink,
            size: Some(11),
            modified: chrono::Utc.timestamp_millis_opt(1_705_314_600_000).single(),
            target: Some("data/file.txt".into()),
        };
        let root = DirListing {
            files: vec![dir, link],
            current_path: String::new(),
            parent_path: None,
            total_count: 2,
        };
        let json = listing(&root);
        assert_eq!(json["currentPath"], "");
        assert!(json["parentPath"].is_null());
        assert_eq!(json["totalCount"], 2);
        assert_eq!(
            json["files"][0],
            json!({"name": "data", "path": "data", "type": "directory"})
        );
        assert_eq!(
            json["files"][1],
            json!({"name": "link.txt", "path": "link.txt", "type": "symlink", "size": 11,
                   "modified": "2024-01-15T10:30:00.000Z", "target": "data/file.txt"})
        );
        let sub = DirListing {
            files: Vec::new(),
            current_path: "data/sub".into(),
            parent_path: Some("data".into()),
            total_count: 0,
        };
        assert_eq!(listing(&sub)["parentPath"], "data");
    }
}
