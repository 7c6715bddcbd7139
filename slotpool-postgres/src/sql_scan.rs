//! What a SQL text does to a session, read without a server: whether it
//! opens or ends a transaction, changes session state the clean-up batch
//! would have to undo, prepares SQL-level statements, or drops every
//! prepared statement.
//!
//! Owns: a small lexer (comments, quoted strings and identifiers, dollar
//! quoting, `BEGIN ATOMIC` bodies) and the statement rules. It is
//! conservative: a statement that may change session state (a `DO` block, a
//! `CALL`, `set_config`) counts as changing it. It cannot see inside
//! functions: a function that calls `set_config` is invisible here, which is
//! what `recycling = "clean"` is for. It may not touch a connection.

/// What a SQL text does, statement by statement.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Effects {
    /// Whether any statement opens or ends a transaction.
    pub(crate) touches_txn: bool,
    /// After the last transaction statement: `Some(true)` a transaction is
    /// open, `Some(false)` none is; `None` when there is no such statement.
    pub(crate) txn_after: Option<bool>,
    /// Session state the clean-up batch restores: `SET` (not `LOCAL`),
    /// `LISTEN`, temporary objects, `WITH HOLD` cursors, session advisory
    /// locks, role changes, `LOAD`, and opaque code (`DO`, `CALL`).
    pub(crate) session: bool,
    /// Session state that certainly outlives the transaction (everything
    /// `session` counts except the opaque `DO`/`CALL` and `set_config`,
    /// which may be transaction-local): what `postgres.pooler =
    /// "transaction"` refuses, since it would stay on a server connection
    /// other clients get next.
    pub(crate) pins_session: bool,
    /// A SQL-level `PREPARE` (a named statement outliving the borrow).
    pub(crate) prepared: bool,
    /// `DISCARD ALL` or `DEALLOCATE ALL`: every prepared statement of the
    /// session is gone, including the statement cache's and tokio-postgres's
    /// own type-lookup statements.
    pub(crate) discards_statements: bool,
}

/// Functions that change session state wherever they appear.
const SESSION_FUNCTIONS: [&str; 5] = [
    "SET_CONFIG",
    "PG_ADVISORY_LOCK",
    "PG_ADVISORY_LOCK_SHARED",
    "PG_TRY_ADVISORY_LOCK",
    "PG_TRY_ADVISORY_LOCK_SHARED",
];

/// Reads `sql` (one statement or several separated by `;`).
pub(crate) fn scan(sql: &str) -> Effects {
    let mut effects = Effects::default();
    for statement in statements(sql) {
        apply(&statement, &mut effects);
    }
    effects
}

/// A word of a statement: an unquoted keyword or identifier, upper-cased.
/// Quoted identifiers are kept as `"` so they never match a keyword.
type Words = Vec<String>;

fn apply(words: &[String], effects: &mut Effects) {
    let word = |i: usize| words.get(i).map_or("", String::as_str);
    let txn = |open: bool, effects: &mut Effects| {
        effects.touches_txn = true;
        effects.txn_after = Some(open);
    };
    match word(0) {
        "BEGIN" | "START" => txn(true, effects),
        "COMMIT" | "END" if word(1) != "PREPARED" => txn(false, effects),
        "ABORT" => txn(false, effects),
        "ROLLBACK" => {
            let to_savepoint = word(1) == "TO" || word(2) == "TO";
            if !to_savepoint && word(1) != "PREPARED" {
                txn(false, effects);
            }
        }
        // PREPARE TRANSACTION ends the transaction (two-phase commit).
        "PREPARE" if word(1) == "TRANSACTION" => txn(false, effects),
        "PREPARE" => effects.prepared = true,
        "SET" => {
            let scoped = matches!(word(1), "LOCAL" | "TRANSACTION" | "CONSTRAINTS");
            if !scoped {
                effects.session = true;
                effects.pins_session = true;
            }
        }
        "LISTEN" | "LOAD" => {
            effects.session = true;
            effects.pins_session = true;
        }
        "DO" | "CALL" => effects.session = true,
        "DEALLOCATE" if word(1) == "ALL" || (word(1) == "PREPARE" && word(2) == "ALL") => {
            effects.discards_statements = true;
        }
        "DISCARD" if word(1) == "ALL" => effects.discards_statements = true,
        "DECLARE" if words.windows(2).any(|w| w[0] == "WITH" && w[1] == "HOLD") => {
            effects.session = true;
            effects.pins_session = true;
        }
        "CREATE" if creates_temporary(words) => {
            effects.session = true;
            effects.pins_session = true;
        }
        _ => {}
    }
    if words.windows(2).any(|w| w[0] == "INTO" && is_temp(&w[1])) {
        effects.session = true;
        effects.pins_session = true;
    }
    for word in words {
        if SESSION_FUNCTIONS.contains(&word.as_str()) {
            effects.session = true;
            // set_config(.., .., true) is transaction-local.
            effects.pins_session |= word != "SET_CONFIG";
        }
    }
}

/// `CREATE [OR REPLACE] [GLOBAL | LOCAL] {TEMP | TEMPORARY} [UNLOGGED]
/// {TABLE | VIEW | SEQUENCE | RECURSIVE VIEW}`: the word must come before the
/// object kind (`CREATE TABLE temp` names a table "temp").
fn creates_temporary(words: &[String]) -> bool {
    words
        .iter()
        .skip(1)
        .take_while(|w| !matches!(w.as_str(), "TABLE" | "VIEW" | "SEQUENCE" | "RECURSIVE"))
        .any(|w| is_temp(w))
}

fn is_temp(word: &str) -> bool {
    word == "TEMP" || word == "TEMPORARY"
}

/// Splits `sql` into statements of words, skipping comments, strings and
/// numbers. Inside `CREATE ... BEGIN ATOMIC ... END` bodies (and the `CASE`
/// expressions in them) a `;` does not end the statement, as psql's lexer
/// counts them.
fn statements(sql: &str) -> Vec<Words> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut words: Words = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            ';' if depth == 0 => {
                if !words.is_empty() {
                    out.push(std::mem::take(&mut words));
                }
                i += 1;
            }
            '-' if next == Some('-') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => i = skip_block_comment(&chars, i),
            '\'' => i = skip_quoted(&chars, i, '\'', false),
            '"' => {
                i = skip_quoted(&chars, i, '"', false);
                words.push("\"".to_owned());
            }
            '$' if next.is_some_and(|n| n.is_ascii_digit()) => {
                i += 1;
                while chars.get(i).is_some_and(char::is_ascii_digit) {
                    i += 1;
                }
            }
            '$' => i = skip_dollar_quoted(&chars, i),
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|&c| c.is_alphanumeric() || c == '_' || c == '$')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect::<String>().to_uppercase();
                // E'...' (backslash escapes), U&'...', B'...', X'...': a
                // prefix glued to a string literal.
                if chars.get(i) == Some(&'\'') && matches!(word.as_str(), "E" | "B" | "X" | "N") {
                    i = skip_quoted(&chars, i, '\'', word == "E");
                    continue;
                }
                if words.first().is_some_and(|w| w == "CREATE") {
                    match word.as_str() {
                        "BEGIN" | "CASE" => depth += 1,
                        "END" => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                }
                words.push(word);
            }
            c if c.is_ascii_digit() => {
                while chars
                    .get(i)
                    .is_some_and(|&c| c.is_ascii_alphanumeric() || c == '.')
                {
                    i += 1;
                }
            }
            _ => i += 1,
        }
        if words.is_empty() {
            depth = 0;
        }
    }
    if !words.is_empty() {
        out.push(words);
    }
    out
}

/// Past the closing `quote` of the literal opening at `start` (a doubled
/// quote is part of it; with `backslash`, so is an escaped one).
fn skip_quoted(chars: &[char], start: usize, quote: char, backslash: bool) -> usize {
    let mut i = start + 1;
    while i < chars.len() {
        if backslash && chars[i] == '\\' {
            i += 2;
            continue;
        }
        if chars[i] == quote {
            if chars.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    chars.len()
}

/// Past a (nested) `/* */` comment opening at `start`.
fn skip_block_comment(chars: &[char], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < chars.len() {
        if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
            depth += 1;
            i += 2;
        } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    chars.len()
}

/// Past a `$tag$ ... $tag$` string opening at `start`; a `$` that opens no
/// tag is skipped alone.
fn skip_dollar_quoted(chars: &[char], start: usize) -> usize {
    let mut i = start + 1;
    while chars
        .get(i)
        .is_some_and(|&c| c.is_alphanumeric() || c == '_')
    {
        i += 1;
    }
    if chars.get(i) != Some(&'$') {
        return start + 1;
    }
    let tag = &chars[start..=i];
    i += 1;
    while i + tag.len() <= chars.len() {
        if &chars[i..i + tag.len()] == tag {
            return i + tag.len();
        }
        i += 1;
    }
    chars.len()
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn txn(sql: &str) -> Option<bool> {
        scan(sql).txn_after
    }

    fn session(sql: &str) -> bool {
        scan(sql).session
    }

    #[test]
    fn transaction_statements_open_and_end() {
        assert_eq!(txn("BEGIN"), Some(true));
        assert_eq!(txn("begin isolation level serializable"), Some(true));
        assert_eq!(txn("START TRANSACTION READ ONLY"), Some(true));
        assert_eq!(txn("BEGIN; INSERT INTO t VALUES (1); COMMIT"), Some(false));
        assert_eq!(txn("COMMIT; BEGIN"), Some(true));
        assert_eq!(txn("end"), Some(false));
        assert_eq!(txn("ABORT"), Some(false));
        assert_eq!(txn("ROLLBACK"), Some(false));
        assert_eq!(txn("ROLLBACK TO SAVEPOINT a"), None);
        assert_eq!(txn("ROLLBACK WORK TO a"), None);
        assert_eq!(txn("COMMIT PREPARED 'x'"), None);
        assert_eq!(txn("PREPARE TRANSACTION 'x'"), Some(false));
        assert_eq!(txn("SAVEPOINT a"), None);
        assert_eq!(txn("SELECT 1"), None);
        assert!(!scan("SELECT 1").touches_txn);
        assert!(scan("BEGIN; COMMIT").touches_txn);
    }

    #[test]
    fn quoting_and_comments_hide_words() {
        assert_eq!(txn("SELECT 'BEGIN'"), None);
        assert_eq!(txn("SELECT 'it''s; BEGIN'"), None);
        assert_eq!(txn(r"SELECT E'\'; BEGIN'"), None);
        assert_eq!(txn("SELECT \"begin\" FROM t"), None);
        assert_eq!(txn("-- BEGIN\nSELECT 1"), None);
        assert_eq!(txn("/* BEGIN /* nested */ BEGIN */ SELECT 1"), None);
        assert_eq!(txn("SELECT $$ BEGIN; $$, $tag$ ; BEGIN $tag$"), None);
        assert_eq!(txn("SELECT $1::int; BEGIN"), Some(true));
        assert_eq!(txn("/* c */ BEGIN"), Some(true));
    }

    #[test]
    fn atomic_function_bodies_do_not_split() {
        let sql = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC \
                   SELECT CASE WHEN true THEN 1 END; SELECT 2; END";
        assert_eq!(statements(sql).len(), 1);
        assert_eq!(txn(sql), None);
        assert_eq!(txn(&format!("BEGIN; {sql}")), Some(true));
    }

    #[test]
    fn session_changes_are_seen() {
        for sql in [
            "SET search_path TO x",
            "set session statement_timeout = 5",
            "SET ROLE other",
            "SET SESSION AUTHORIZATION other",
            "SET TIME ZONE 'UTC'",
            "LISTEN chan",
            "CREATE TEMP TABLE t (x int)",
            "CREATE GLOBAL TEMPORARY TABLE t (x int)",
            "CREATE OR REPLACE TEMP VIEW v AS SELECT 1",
            "SELECT 1 INTO TEMP t",
            "SELECT set_config('search_path', 'x', false)",
            "SELECT pg_catalog.set_config('a.b', 'x', false)",
            "SELECT pg_advisory_lock(1)",
            "SELECT pg_try_advisory_lock_shared(1, 2)",
            "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
            "DO $$ BEGIN PERFORM 1; END $$",
            "CALL p()",
            "LOAD 'auto_explain'",
            "SELECT 1; SET x.y = 1",
        ] {
            assert!(session(sql), "{sql}");
        }
        for sql in [
            "SET LOCAL search_path TO x",
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "SET CONSTRAINTS ALL DEFERRED",
            "RESET ALL",
            "UNLISTEN *",
            "SELECT pg_advisory_xact_lock(1)",
            "DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1",
            "CREATE TABLE temp (x int)",
            "SELECT 'SET x = 1'",
            "INSERT INTO t SELECT 1",
        ] {
            assert!(!session(sql), "{sql}");
        }
    }

    #[test]
    fn prepared_and_discarded_statements() {
        assert!(scan("PREPARE q AS SELECT 1").prepared);
        assert!(!scan("PREPARE TRANSACTION 'x'").prepared);
        assert!(scan("DISCARD ALL").discards_statements);
        assert!(scan("DEALLOCATE ALL").discards_statements);
        assert!(scan("DEALLOCATE PREPARE ALL").discards_statements);
        assert!(!scan("DEALLOCATE q").discards_statements);
        assert!(!scan("DISCARD TEMP").discards_statements);
    }
}
