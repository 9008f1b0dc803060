//! The `backends` list.

use crate::build::backend_address::parse_host_port;
use crate::model::BackendConfig;
use crate::paths::index_path;
use crate::reader::{MapReader, Problems};
use crate::yaml_tree::Value;

const BACKEND_KEYS: &[&str] = &["name", "address", "weight", "primary", "priority"];

/// Names that would be ambiguous as a rule's `route`.
const RESERVED_NAMES: &[&str] = &["primary", "replica"];

/// The backends that were valid, plus facts read even from invalid entries
/// so that later checks do not report follow-on problems.
pub(crate) struct BackendsSection {
    pub backends: Vec<BackendConfig>,
    /// Every name written in the list, valid or not.
    pub names: Vec<String>,
    /// Paths of the entries with `primary: true`.
    pub pinned_primary_paths: Vec<String>,
    /// Number of entries written (valid or not).
    pub entry_count: usize,
}

pub(crate) fn build_backends(root: &MapReader, problems: &mut Problems) -> BackendsSection {
    let items = root.list("backends", problems);
    let mut section = BackendsSection {
        backends: Vec::new(),
        names: Vec::new(),
        pinned_primary_paths: Vec::new(),
        entry_count: items.len(),
    };
    match root.get("backends") {
        None => root.missing("backends", problems, "at least one backend is required"),
        Some(node) if matches!(&node.value, Value::Seq(list) if list.is_empty()) => {
            problems.add(
                &root.path_of("backends"),
                Some(node),
                "at least one backend is required",
            );
        }
        Some(_) => {}
    }
    let mut name_paths: Vec<(String, String)> = Vec::new();
    let mut addresses: Vec<(String, String)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = index_path(&root.path_of("backends"), i);
        let Some(entry) = MapReader::new(Some(item), &path, BACKEND_KEYS, problems) else {
            continue;
        };
        let name = backend_name(&entry, &name_paths, problems);
        if let Some(name) = &name {
            section.names.push(name.clone());
            name_paths.push((name.clone(), entry.path_of("name")));
        }
        let address = entry.required_string("address", problems).and_then(|text| {
            match parse_host_port(&text) {
                Ok(parsed) => {
                    if let Some((_, other)) =
                        addresses.iter().find(|(addr, _)| *addr == parsed.address)
                    {
                        problems.add(
                            &entry.path_of("address"),
                            entry.get("address"),
                            format!(
                                "duplicate backend address {} (also {other})",
                                parsed.address
                            ),
                        );
                        return None;
                    }
                    addresses.push((parsed.address.clone(), entry.path_of("address")));
                    Some(parsed)
                }
                Err(message) => {
                    problems.add(&entry.path_of("address"), entry.get("address"), message);
                    None
                }
            }
        });
        let weight = if entry.has("weight") {
            entry.integer("weight", 1, 1000, problems)
        } else {
            Some(1)
        };
        let priority = if entry.has("priority") {
            entry.integer("priority", 0, 1000, problems)
        } else {
            Some(0)
        };
        let primary = entry.bool("primary", problems);
        let primary_ok = !entry.has("primary") || primary.is_some();
        if primary == Some(true) {
            section.pinned_primary_paths.push(entry.path_of("primary"));
        }
        if let (Some(name), Some(address), Some(weight), Some(priority), true) =
            (name, address, weight, priority, primary_ok)
        {
            section.backends.push(BackendConfig {
                name,
                address: address.address,
                host: address.host,
                port: address.port,
                weight: u32::try_from(weight).unwrap_or(1),
                primary,
                priority: u32::try_from(priority).unwrap_or(0),
            });
        }
    }
    section
}

fn backend_name(
    entry: &MapReader,
    seen: &[(String, String)],
    problems: &mut Problems,
) -> Option<String> {
    let name = entry.required_string("name", problems)?;
    let path = entry.path_of("name");
    let node = entry.get("name");
    if name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        problems.add(
            &path,
            node,
            format!("invalid backend name '{name}': use up to 64 letters, digits, '_', '-' or '.'"),
        );
        return None;
    }
    if RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(&name)) {
        problems.add(
            &path,
            node,
            format!("'{name}' is reserved as a route target; choose another backend name"),
        );
        return None;
    }
    if let Some((_, other)) = seen.iter().find(|(seen_name, _)| *seen_name == name) {
        problems.add(
            &path,
            node,
            format!("duplicate backend name '{name}' (also {other})"),
        );
        return None;
    }
    Some(name)
}
