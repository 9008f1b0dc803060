//! How many temporary tables a `DROP TEMPORARY TABLE a, b, …` names, for a session that counts
//! the temporary tables it holds. Commas inside comments, strings and quoted identifiers do not
//! count.

use crate::lexer::Lexer;
use crate::options::ClassifyOptions;
use crate::token::Token;

/// The number of names listed after `DROP TEMPORARY TABLE[S] [IF EXISTS]` (or MariaDB's
/// `DROP TEMPORARY SEQUENCE`) in the first statement of `sql`, which may start with
/// `SET STATEMENT … FOR`. Counts the non-empty items of the comma-separated list, whatever
/// follows a name in its item (`RESTRICT`, `CASCADE`, `WAIT n`, `NOWAIT`), up to the `;` that
/// ends the statement; zero when the statement drops no temporary table. `options` are the
/// session's quoting modes (under `ANSI_QUOTES`, `"a,b"` is one name).
pub fn named_by_drop(sql: &[u8], options: ClassifyOptions) -> u32 {
    let mut lexer = Lexer::new(sql, options);
    let Some(mut token) = after_drop_temporary(&mut lexer) else {
        return 0;
    };
    if token.is_some_and(|t| t.is_word(b"IF")) {
        token = lexer.next_token();
        if token.is_some_and(|t| t.is_word(b"EXISTS")) {
            token = lexer.next_token();
        }
    }
    let mut names = 0u32;
    let mut in_name = false;
    while let Some(t) = token {
        if t.is_statement_end() {
            break;
        }
        if t.is_punct(b',') {
            names += u32::from(in_name);
            in_name = false;
        } else {
            in_name = true;
        }
        token = lexer.next_token();
    }
    names.saturating_add(u32::from(in_name))
}

/// Reads the first statement up to `DROP TEMPORARY TABLE|TABLES|SEQUENCE` and returns the token
/// after it (`Some(None)` at the end of the text); `None` when the statement has no such words.
fn after_drop_temporary<'a>(lexer: &mut Lexer<'a>) -> Option<Option<Token<'a>>> {
    let mut before: [Option<Token<'a>>; 2] = [None, None];
    loop {
        let token = lexer.next_token()?;
        if token.is_statement_end() {
            return None;
        }
        if (token.is_word(b"TABLE") || token.is_word(b"TABLES") || token.is_word(b"SEQUENCE"))
            && before[0].is_some_and(|t| t.is_word(b"DROP"))
            && before[1].is_some_and(|t| t.is_word(b"TEMPORARY"))
        {
            return Some(lexer.next_token());
        }
        before = [before[1], Some(token)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(sql: &[u8]) -> u32 {
        named_by_drop(sql, ClassifyOptions::default())
    }

    #[test]
    fn counts_names_not_commas() {
        assert_eq!(named(b"DROP TEMPORARY TABLE t1"), 1);
        assert_eq!(named(b"DROP TEMPORARY TABLE t1, t2"), 2);
        assert_eq!(
            named(b"DROP TEMPORARY TABLE IF EXISTS t1, `a,b`, app.t3"),
            3
        );
        assert_eq!(named(b"DROP TEMPORARY TABLE other /* was: a, b */"), 1);
        assert_eq!(named(b"drop temporary tables x -- a, b\n"), 1);
        assert_eq!(named(b"DROP TEMPORARY TABLE t1 RESTRICT"), 1);
        assert_eq!(named(b"DROP TEMPORARY TABLE t1, t2 CASCADE"), 2);
        assert_eq!(named(b"DROP TEMPORARY TABLE t1, t2 WAIT 5"), 2);
        assert_eq!(named(b"DROP TEMPORARY TABLE `app`.`t1`, t2 NOWAIT;"), 2);
    }

    #[test]
    fn no_list_no_names() {
        assert_eq!(named(b""), 0);
        assert_eq!(named(b"DROP TEMPORARY TABLE"), 0);
        assert_eq!(named(b"DROP TEMPORARY TABLE IF EXISTS"), 0);
        assert_eq!(named(b"DROP TEMPORARY TABLE ;"), 0);
        assert_eq!(named(b"DROP TABLE t1, t2"), 0, "not temporary");
        assert_eq!(named(b"DROP TEMPORARY TABLE t1,, t2"), 2);
        assert_eq!(named(b"SELECT 'DROP TEMPORARY TABLE a, b'"), 0);
        assert_eq!(named(b"/* DROP TEMPORARY TABLE a, b */ SELECT 1"), 0);
    }

    #[test]
    fn comments_and_quotes_between_words() {
        assert_eq!(
            named(b"/* app */ DROP /* x */ TEMPORARY -- y\n TABLE # z\n a, b"),
            2
        );
        assert_eq!(named(b"DROP TEMPORARY TABLE `we``ird, name`, b"), 2);
        assert_eq!(named(b"DROP TEMPORARY TABLE a -- , b"), 1);
        assert_eq!(named(b"DROP TEMPORARY TABLE a, b -- , c\n, d"), 3);
    }

    #[test]
    fn executable_comments_are_read() {
        assert_eq!(named(b"DROP TEMPORARY TABLE a /*!, b */"), 2);
        assert_eq!(named(b"DROP TEMPORARY TABLE a /*M!100100 , b */"), 2);
        assert_eq!(named(b"/*!40000 DROP TEMPORARY TABLE IF EXISTS a, b */"), 2);
    }

    #[test]
    fn the_first_statement_only() {
        assert_eq!(named(b"DROP TEMPORARY TABLE a; SELECT b, c"), 1);
        assert_eq!(named(b"SELECT 1; DROP TEMPORARY TABLE a, b"), 0);
        assert_eq!(
            named(b"SET STATEMENT max_statement_time = 1 FOR DROP TEMPORARY TABLE a, b"),
            2
        );
    }

    #[test]
    fn temporary_sequences() {
        assert_eq!(named(b"DROP TEMPORARY SEQUENCE s"), 1);
        assert_eq!(named(b"DROP TEMPORARY SEQUENCE IF EXISTS s1, s2"), 2);
    }

    #[test]
    fn quoting_modes() {
        let ansi = ClassifyOptions {
            ansi_quotes: true,
            ..ClassifyOptions::default()
        };
        // Under ANSI_QUOTES `"a\"` is an identifier (no escapes in it): two names.
        assert_eq!(named_by_drop(br#"DROP TEMPORARY TABLE "a\", b"#, ansi), 2);
        assert_eq!(named_by_drop(br#"DROP TEMPORARY TABLE "a,b", c"#, ansi), 2);
    }

    #[test]
    fn garbage() {
        assert_eq!(named(b"DROP TEMPORARY TABLE \xff\xfe, t\xc3"), 2);
        assert_eq!(named(b"DROP TEMPORARY TABLE `a, b"), 1);
    }
}
