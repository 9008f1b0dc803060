//! The `users` list: accounts the proxy authenticates itself.

use crate::model::{AuthPlugin, Consistency, UserConfig, UserSecret};
use crate::paths::index_path;
use crate::reader::{MapReader, Problems};
use crate::secret::Secret;

const USER_KEYS: &[&str] = &[
    "name",
    "password",
    "password_hash",
    "auth_plugin",
    "consistency",
    "pooling",
];

/// MariaDB's limit on user name length.
const MAX_USER_NAME_CHARS: usize = 80;

pub(crate) const AUTH_PLUGINS: &[(&str, AuthPlugin)] = &[
    ("mysql_native_password", AuthPlugin::MysqlNativePassword),
    ("caching_sha2_password", AuthPlugin::CachingSha2Password),
];

pub(crate) const CONSISTENCIES: &[(&str, Consistency)] = &[
    ("eventual", Consistency::Eventual),
    ("session", Consistency::Session),
    ("global", Consistency::Global),
];

/// The valid users, and how many entries the list had (valid or not).
pub(crate) struct UsersSection {
    pub users: Vec<UserConfig>,
    pub names: Vec<String>,
    pub entry_count: usize,
}

pub(crate) fn build_users(root: &MapReader, problems: &mut Problems) -> UsersSection {
    let items = root.list("users", problems);
    let mut section = UsersSection {
        users: Vec::new(),
        names: Vec::new(),
        entry_count: items.len(),
    };
    let mut name_paths: Vec<(String, String)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = index_path(&root.path_of("users"), i);
        let Some(entry) = MapReader::new(Some(item), &path, USER_KEYS, problems) else {
            continue;
        };
        let name = user_name(&entry, &name_paths, problems);
        if let Some(name) = &name {
            section.names.push(name.clone());
            name_paths.push((name.clone(), entry.path_of("name")));
        }
        let auth_plugin = if entry.has("auth_plugin") {
            entry.choice("auth_plugin", AUTH_PLUGINS, problems)
        } else {
            Some(AuthPlugin::MysqlNativePassword)
        };
        let secret = user_secret(&entry, auth_plugin, problems);
        let consistency = entry.choice("consistency", CONSISTENCIES, problems);
        let consistency_ok = !entry.has("consistency") || consistency.is_some();
        if let (Some(name), Some(secret), Some(auth_plugin), true) =
            (name, secret, auth_plugin, consistency_ok)
        {
            section.users.push(UserConfig {
                name,
                secret,
                auth_plugin,
                consistency,
                pooling: entry.bool("pooling", problems).unwrap_or(true),
            });
        }
    }
    section
}

fn user_name(
    entry: &MapReader,
    seen: &[(String, String)],
    problems: &mut Problems,
) -> Option<String> {
    let name = entry.required_string("name", problems)?;
    let path = entry.path_of("name");
    if name.chars().count() > MAX_USER_NAME_CHARS {
        problems.add(
            &path,
            entry.get("name"),
            format!("user name is longer than {MAX_USER_NAME_CHARS} characters"),
        );
        return None;
    }
    if let Some((_, other)) = seen.iter().find(|(seen_name, _)| *seen_name == name) {
        problems.add(
            &path,
            entry.get("name"),
            format!("duplicate user name '{name}' (also {other})"),
        );
        return None;
    }
    Some(name)
}

/// Exactly one of `password` / `password_hash`; hashes only for
/// `mysql_native_password`.
fn user_secret(
    entry: &MapReader,
    auth_plugin: Option<AuthPlugin>,
    problems: &mut Problems,
) -> Option<UserSecret> {
    match (entry.get("password"), entry.get("password_hash")) {
        (Some(_), Some(hash_node)) => {
            problems.add(
                &entry.path_of("password_hash"),
                Some(hash_node),
                "give either password or password_hash, not both",
            );
            None
        }
        (None, None) => {
            entry.missing(
                "password",
                problems,
                "is required (or password_hash: \"*<40 hex digits>\" for mysql_native_password)",
            );
            None
        }
        (Some(node), None) => {
            let password = entry.string("password", problems)?;
            if password.is_empty() {
                problems.add(
                    &entry.path_of("password"),
                    Some(node),
                    "must not be empty (empty passwords are not supported)",
                );
                return None;
            }
            Some(UserSecret::Password(Secret::new(password)))
        }
        (None, Some(node)) => {
            let text = entry.string("password_hash", problems)?;
            let path = entry.path_of("password_hash");
            if auth_plugin == Some(AuthPlugin::CachingSha2Password) {
                problems.add(
                    &path,
                    Some(node),
                    "caching_sha2_password users need a clear-text password; password_hash is the mysql_native_password form",
                );
                return None;
            }
            match parse_native_hash(&text) {
                Some(hash) => Some(UserSecret::PasswordHash(hash)),
                None => {
                    problems.add(
                        &path,
                        Some(node),
                        "expected '*' followed by 40 hex digits, as in mysql.user (SELECT PASSWORD('...'))",
                    );
                    None
                }
            }
        }
    }
}

/// `*` + 40 hex digits → 20 bytes.
fn parse_native_hash(text: &str) -> Option<[u8; 20]> {
    let hex = text.trim().strip_prefix('*')?;
    if hex.len() != 40 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_hash_parses_both_cases() {
        let upper = parse_native_hash("*CF9E423361BFD63F869140B8405101994CA3832E").unwrap();
        let lower = parse_native_hash("*cf9e423361bfd63f869140b8405101994ca3832e").unwrap();
        assert_eq!(upper, lower);
        assert_eq!(upper[0], 0xCF);
        assert_eq!(upper[19], 0x2E);
    }

    #[test]
    fn native_hash_rejects_wrong_shapes() {
        assert!(parse_native_hash("CF9E423361BFD63F869140B8405101994CA3832E").is_none());
        assert!(parse_native_hash("*CF9E").is_none());
        assert!(parse_native_hash("*ZF9E423361BFD63F869140B8405101994CA3832E").is_none());
        assert!(parse_native_hash("*+F9E423361BFD63F869140B8405101994CA3832E").is_none());
        assert!(parse_native_hash("*é9E423361BFD63F869140B8405101994CA3832").is_none());
    }
}
