//! Building the YAML paths that problems are reported at:
//! `backends[1].address`, `routing.rules[0].match`.

/// The path of `key` inside the mapping at `parent` (`""` is the root).
pub(crate) fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// The path of item `index` of the list at `parent`.
pub(crate) fn index_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// How the root is shown in problems.
pub(crate) const ROOT_PATH: &str = "<root>";

/// `path`, or [`ROOT_PATH`] when it is the root.
pub(crate) fn display_path(path: &str) -> String {
    if path.is_empty() {
        ROOT_PATH.to_owned()
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_compose() {
        assert_eq!(child_path("", "backends"), "backends");
        assert_eq!(
            child_path(&index_path("backends", 1), "address"),
            "backends[1].address"
        );
        assert_eq!(display_path(""), "<root>");
        assert_eq!(display_path("log"), "log");
    }
}
