//! Schema drift: a target's schema as a fingerprint (each object's name mapped to a digest of its normalized
//! definition, read from the catalog by the workers) compared with the fingerprint the hub's last successful
//! apply left. What differs is named (added, removed, changed), never shown: no definition or data leaves
//! the target.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Object name (`table:orders`, `index:orders_pkey`, `function:f(integer)`) → digest of its definition.
pub type Fingerprint = BTreeMap<String, String>;

closed_enum! {
    /// How an object differs from the baseline.
    pub enum Change as "schema change" {
        /// In the schema now, not in the baseline.
        Added = "added",
        /// In the baseline, gone now.
        Removed = "removed",
        /// In both, defined differently.
        Changed = "changed",
    }
}

/// One object that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Difference {
    pub object: String,
    pub change: Change,
}

/// The digest of a definition: SHA-256 (hex) of its text with runs of white space made one space, so a
/// catalog's layout changes between versions do not count as drift.
pub fn digest(definition: &str) -> String {
    let normalized = definition.split_whitespace().collect::<Vec<_>>().join(" ");
    let digest = ring::digest::digest(&ring::digest::SHA256, normalized.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// What differs between `baseline` and `now`, in object-name order.
pub fn compare(baseline: &Fingerprint, now: &Fingerprint) -> Vec<Difference> {
    let mut out = Vec::new();
    for (object, digest) in baseline {
        match now.get(object) {
            None => out.push(Difference { object: object.clone(), change: Change::Removed }),
            Some(d) if d != digest => out.push(Difference { object: object.clone(), change: Change::Changed }),
            Some(_) => {}
        }
    }
    for object in now.keys().filter(|o| !baseline.contains_key(*o)) {
        out.push(Difference { object: object.clone(), change: Change::Added });
    }
    out.sort_by(|a, b| a.object.cmp(&b.object));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(objects: &[(&str, &str)]) -> Fingerprint {
        objects.iter().map(|(name, def)| ((*name).to_owned(), digest(def))).collect()
    }

    #[test]
    fn added_removed_and_changed_objects_are_named_in_order() {
        let before = print(&[("table:a", "id integer"), ("table:b", "id integer"), ("index:a_pkey", "btree (id)")]);
        let after = print(&[("table:a", "id integer,  note text"), ("index:a_pkey", "btree (id)"), ("table:c", "x")]);
        let differences = compare(&before, &after);
        let named: Vec<(&str, Change)> = differences.iter().map(|d| (d.object.as_str(), d.change)).collect();
        assert_eq!(named, [("table:a", Change::Changed), ("table:b", Change::Removed), ("table:c", Change::Added)]);
        assert!(compare(&before, &before).is_empty());
    }

    #[test]
    fn white_space_is_not_drift() {
        assert_eq!(digest("CREATE INDEX i\n  ON t (a)"), digest("CREATE INDEX i ON t (a)"));
        assert_ne!(digest("ON t (a)"), digest("ON t (b)"));
    }
}
