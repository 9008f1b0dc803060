//! Whether a statement may read the server's process list: `SHOW [FULL] PROCESSLIST`, or a
//! query of `information_schema.PROCESSLIST`. A proxy whose clients know connection ids of its
//! own rewrites the ids in such results.

use crate::lexer::Lexer;
use crate::options::ClassifyOptions;
use crate::token::{eq_keyword, mentions};

const NAME: &[u8] = b"PROCESSLIST";

/// True if `sql` names `PROCESSLIST` (any case) as a word or a quoted identifier, including
/// inside an executable comment (`/*! … */`), which the server runs. Not inside a string, a
/// plain comment or a longer name (`processlist_log`). `options` are the session's quoting
/// modes (under `ANSI_QUOTES`, `"PROCESSLIST"` is an identifier). Text that does not contain the
/// word is rejected without tokenizing it.
pub fn named(sql: &[u8], options: ClassifyOptions) -> bool {
    if !mentions(sql, NAME) {
        return false;
    }
    let mut lexer = Lexer::new(sql, options);
    while let Some(token) = lexer.next_token() {
        if token
            .identifier()
            .is_some_and(|name| eq_keyword(name, NAME))
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &[u8]) -> bool {
        named(sql, ClassifyOptions::default())
    }

    #[test]
    fn both_forms() {
        assert!(names(b"show full PROCESSLIST"));
        assert!(names(b"SHOW PROCESSLIST;"));
        assert!(names(b"SELECT * FROM information_schema.processlist"));
        assert!(names(b"SELECT * FROM `information_schema`.`PROCESSLIST`"));
        assert!(names(b"SHOW /* all */ FULL /*!PROCESSLIST*/"));
        assert!(names(
            b"SELECT ID FROM information_schema.PROCESSLIST -- mine\n"
        ));
    }

    #[test]
    fn the_word_elsewhere_is_not_the_table() {
        assert!(!names(b"SELECT id FROM t"));
        assert!(!names(b"SELECT CONNECTION_ID(), 'processlist'"));
        assert!(!names(b"SELECT CONNECTION_ID() /* processlist */"));
        assert!(!names(b"SELECT CONNECTION_ID() -- processlist"));
        assert!(!names(b"SELECT CONNECTION_ID() FROM app.processlist_log"));
        assert!(!names(b"SELECT \"PROCESSLIST\""));
    }

    #[test]
    fn quoting_modes() {
        let ansi = ClassifyOptions {
            ansi_quotes: true,
            ..ClassifyOptions::default()
        };
        assert!(named(
            b"SELECT * FROM information_schema.\"PROCESSLIST\"",
            ansi
        ));
        let nbe = ClassifyOptions {
            no_backslash_escapes: true,
            ..ClassifyOptions::default()
        };
        let sql = br"SELECT 'a\', ID FROM information_schema.PROCESSLIST";
        assert!(
            !names(sql),
            "inside a string, unless backslashes are ordinary"
        );
        assert!(named(sql, nbe));
    }

    #[test]
    fn garbage() {
        assert!(!names(b""));
        assert!(!names(b"\xffPROCESSLIST"));
        assert!(names(b"SHOW PROCESSLIST \xff\xfe"));
        assert!(!names(b"SELECT 'PROCESSLIST"));
    }
}
