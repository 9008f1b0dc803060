//! Knobs that change how statement text is tokenized.

/// Session settings that change how the server itself reads statement text.
///
/// The default matches a server with the default `sql_mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassifyOptions {
    /// The session runs with `sql_mode` containing `NO_BACKSLASH_ESCAPES`: a backslash inside a
    /// string literal is an ordinary character. The server reports this mode in the status flags
    /// of every OK packet (`SERVER_STATUS_NO_BACKSLASH_ESCAPES`), so a proxy can keep it up to date.
    pub no_backslash_escapes: bool,
    /// The session runs with `sql_mode` containing `ANSI_QUOTES` (also part of `ANSI`): `"…"`
    /// quotes an identifier, in which a backslash is an ordinary character. Not reported in
    /// status flags; a proxy learns it by asking the server after a `SET` of `sql_mode`.
    pub ansi_quotes: bool,
}
