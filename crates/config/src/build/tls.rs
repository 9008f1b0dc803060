//! The `tls` (client side) and `backend_tls` sections.

use std::path::{Path, PathBuf};

use crate::model::{BackendTlsConfig, TlsConfig};
use crate::reader::{MapReader, Problems};

const TLS_KEYS: &[&str] = &["cert", "key", "require_tls"];
const BACKEND_TLS_KEYS: &[&str] = &["enabled", "ca", "verify"];

/// Client-facing TLS: `None` unless both `cert` and `key` are given.
pub(crate) fn build_tls(root: &MapReader, problems: &mut Problems) -> Option<TlsConfig> {
    let tls = MapReader::section(root.get("tls"), &root.path_of("tls"), TLS_KEYS, problems);
    let cert = existing_file(&tls, "cert", problems);
    let key = existing_file(&tls, "key", problems);
    let require_tls = tls.bool("require_tls", problems).unwrap_or(false);
    match (tls.has("cert"), tls.has("key")) {
        (true, false) => tls.missing("key", problems, "is required when tls.cert is set"),
        (false, true) => tls.missing("cert", problems, "is required when tls.key is set"),
        (false, false) if require_tls => problems.add(
            &tls.path_of("require_tls"),
            tls.get("require_tls"),
            "needs tls.cert and tls.key",
        ),
        _ => {}
    }
    Some(TlsConfig {
        cert: cert?,
        key: key?,
        require_tls,
    })
}

pub(crate) fn build_backend_tls(root: &MapReader, problems: &mut Problems) -> BackendTlsConfig {
    let section = MapReader::section(
        root.get("backend_tls"),
        &root.path_of("backend_tls"),
        BACKEND_TLS_KEYS,
        problems,
    );
    let enabled = section.bool("enabled", problems).unwrap_or(false);
    let verify = section.bool("verify", problems).unwrap_or(true);
    let ca = if enabled {
        existing_file(&section, "ca", problems)
    } else {
        section
            .string("ca", problems)
            .map(|text| PathBuf::from(text.trim()))
    };
    if enabled && verify && !section.has("ca") {
        section.missing(
            "ca",
            problems,
            "is required when backend_tls.verify is true (the CA that signed the backends' certificates)",
        );
    }
    BackendTlsConfig {
        enabled,
        ca,
        verify,
    }
}

/// A path that must name an existing regular file. Relative paths are
/// relative to the proxy's working directory.
fn existing_file(section: &MapReader, key: &str, problems: &mut Problems) -> Option<PathBuf> {
    let text = section.string(key, problems)?;
    let path = PathBuf::from(text.trim());
    if text.trim().is_empty() {
        problems.add(&section.path_of(key), section.get(key), "must not be empty");
        return None;
    }
    if !Path::new(&path).is_file() {
        problems.add(
            &section.path_of(key),
            section.get(key),
            format!("file not found: {}", path.display()),
        );
        return None;
    }
    Some(path)
}
