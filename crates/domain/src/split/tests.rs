//! Tests of the splitter: each lexical rule of each dialect, the errors, and property tests.
//!
//! The property tests use `PROPTEST_CASES` when it is set and 2,000 cases otherwise; see the module
//! documentation of `split` for the one-million-case run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::*;

mod workloads;

/// The texts of the statements of `sql`, which must split.
fn texts(sql: &str, dialect: Dialect) -> Vec<&str> {
    let statements = split(sql, dialect).unwrap_or_else(|e| panic!("{sql:?} does not split: {e}"));
    check_invariants(sql, dialect, &statements).unwrap_or_else(|e| panic!("{sql:?}: {e}"));
    statements.iter().map(|s| s.text(sql)).collect()
}

fn pg(sql: &str) -> Vec<&str> {
    texts(sql, Dialect::Postgres)
}

fn my(sql: &str) -> Vec<&str> {
    texts(sql, Dialect::Mysql)
}

/// The error for `sql`, which must not split, as "line L, column C: message".
fn error(sql: &str, dialect: Dialect) -> String {
    match split(sql, dialect) {
        Ok(statements) => panic!("{sql:?} split into {statements:?}"),
        Err(e) => e.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------------
// Shape of the result
// ---------------------------------------------------------------------------------------------------

#[test]
fn ranges_lines_and_texts() {
    let sql = "-- header\nSELECT 1;\n\n  /* c */ SELECT\n  2 -- trailing\n  ;\nSELECT 3";
    let statements = split(sql, Dialect::Postgres).unwrap();
    assert_eq!(statements.len(), 3);

    let first = &statements[0];
    assert_eq!((first.range.clone(), first.text_range.clone(), first.line), (10..19, 10..18, 2));
    assert_eq!(&sql[first.range.clone()], "SELECT 1;");

    // The range runs to the terminator; the text stops at the last token, before the comment.
    let second = &statements[1];
    assert_eq!(second.line, 4);
    assert_eq!(second.text(sql), "SELECT\n  2");
    assert!(sql[second.range.clone()].ends_with("-- trailing\n  ;"));

    // Without a terminator, the range is the text.
    let third = &statements[2];
    assert_eq!((third.text(sql), third.range.clone(), third.line), ("SELECT 3", third.text_range.clone(), 7));

    let stored = ranges(&statements);
    assert_eq!(stored[0], StatementRange { start: 10, end: 18 });
    assert_eq!(stored.len(), 3);
    assert_eq!(&sql[stored[2].start as usize..stored[2].end as usize], "SELECT 3");
}

#[test]
fn nothing_to_run_yields_no_statements() {
    for sql in ["", "   \n\t", "-- only a comment", "/* a */ -- b\n", ";", ";;\n;", "-- x\n;\n/* y */;"] {
        assert_eq!(pg(sql), Vec::<&str>::new(), "{sql:?}");
    }
    for sql in ["", "# c\n-- c\n/* c */", "DELIMITER $$\n$$\nDELIMITER ;\n", ";"] {
        assert_eq!(my(sql), Vec::<&str>::new(), "{sql:?}");
    }
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let sql = "\u{FEFF}SELECT 1;\nSELECT 'x";
    let statements = split("\u{FEFF}SELECT 1;", Dialect::Postgres).unwrap();
    assert_eq!((statements[0].range.clone(), statements[0].line), (3..12, 1));
    assert_eq!(error(sql, Dialect::Mysql), "line 2, column 8: unterminated string");
    assert_eq!(error("\u{FEFF}'", Dialect::Postgres), "line 1, column 1: unterminated string");
    assert_eq!(my("\u{FEFF}DELIMITER $$\nSELECT 1$$"), ["SELECT 1"]);
    // Only at the start: elsewhere it is an identifier character, as for the servers.
    assert_eq!(pg("SELECT 1;\u{FEFF};"), ["SELECT 1", "\u{FEFF}"]);
}

#[test]
fn text_of_another_string_does_not_panic() {
    let statements = split("SELECT 1; SELECT 2;", Dialect::Postgres).unwrap();
    assert_eq!(statements[1].text("short"), "");
}

#[test]
fn dialect_from_engine() {
    assert_eq!(Dialect::from(Engine::Postgres), Dialect::Postgres);
    assert_eq!(Dialect::from(Engine::Mysql), Dialect::Mysql);
}

#[test]
fn crlf_and_unicode() {
    let sql = "SELECT 'é;ü';\r\n-- ☃ ;\r\nSELECT \"naïve;\"\r\n;";
    assert_eq!(pg(sql), ["SELECT 'é;ü'", "SELECT \"naïve;\""]);
    assert_eq!(split(sql, Dialect::Postgres).unwrap()[1].line, 3);
    // Columns count characters, not bytes.
    assert_eq!(error("SELECT 'é', 'ü", Dialect::Postgres), "line 1, column 13: unterminated string");
}

// ---------------------------------------------------------------------------------------------------
// Postgres
// ---------------------------------------------------------------------------------------------------

#[test]
fn pg_strings_and_identifiers() {
    assert_eq!(pg("SELECT 'a;b', 'it''s;'; SELECT 2"), ["SELECT 'a;b', 'it''s;'", "SELECT 2"]);
    // Standard strings: a backslash is an ordinary character, so '\' is a whole string.
    assert_eq!(pg(r"SELECT '\'; SELECT 2"), [r"SELECT '\'", "SELECT 2"]);
    // E'' strings (either case) have backslash escapes.
    assert_eq!(pg(r"SELECT E'\';'; SELECT e'\\'; SELECT 3"), [r"SELECT E'\';'", r"SELECT e'\\'", "SELECT 3"]);
    assert_eq!(pg(r"SELECT E'a''b;\'c'; SELECT 2"), [r"SELECT E'a''b;\'c'", "SELECT 2"]);
    // Only a lone E starts one: here `somee` is an identifier and the string is standard.
    assert_eq!(pg(r"SELECT somee'\'; SELECT 2"), [r"SELECT somee'\'", "SELECT 2"]);
    assert_eq!(pg(r"SELECT U&'d\0061t;a', U&'\'; SELECT 2"), [r"SELECT U&'d\0061t;a', U&'\'", "SELECT 2"]);
    assert_eq!(pg(r#"SELECT "a;""b" FROM "t;"; SELECT 2"#), [r#"SELECT "a;""b" FROM "t;""#, "SELECT 2"]);
    assert_eq!(pg("SELECT '--;', '/*;'; SELECT 2"), ["SELECT '--;', '/*;'", "SELECT 2"]);
}

#[test]
fn pg_dollar_quotes() {
    let sql = "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; SELECT ';' $$ LANGUAGE sql; SELECT 2;";
    assert_eq!(pg(sql), ["CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; SELECT ';' $$ LANGUAGE sql", "SELECT 2"]);
    // A tagged body ends only at its own tag, so it may contain $$ and other tags.
    let sql = "DO $body$ BEGIN PERFORM '$$;'; EXECUTE $x$ a; $$ $x$; END $body$; SELECT 2";
    assert_eq!(pg(sql), ["DO $body$ BEGIN PERFORM '$$;'; EXECUTE $x$ a; $$ $x$; END $body$", "SELECT 2"]);
    // $$ inside a string is not a dollar quote.
    assert_eq!(pg("SELECT '$$'; SELECT '$$'"), ["SELECT '$$'", "SELECT '$$'"]);
    // $1 is a parameter, and `$` inside an identifier does not start a quote.
    assert_eq!(
        pg("PREPARE p AS SELECT $1; SELECT a$$b, c$d$ FROM t; SELECT 3"),
        ["PREPARE p AS SELECT $1", "SELECT a$$b, c$d$ FROM t", "SELECT 3"]
    );
    // Tags are case-sensitive and may hold non-ASCII letters.
    assert_eq!(pg("SELECT $Ä$ ; $ä$ ; $Ä$; SELECT 2"), ["SELECT $Ä$ ; $ä$ ; $Ä$", "SELECT 2"]);
    // A `$` that starts no quote is just a character.
    assert_eq!(pg("SELECT $ ; SELECT $a b$"), ["SELECT $", "SELECT $a b$"]);
}

#[test]
fn pg_comments() {
    assert_eq!(pg("SELECT 1 -- a; b\n, 2; SELECT 3"), ["SELECT 1 -- a; b\n, 2", "SELECT 3"]);
    // `--` ends at either line-break character.
    assert_eq!(pg("SELECT 1 -- a\r; SELECT 2"), ["SELECT 1", "SELECT 2"]);
    assert_eq!(pg("SELECT /* a /* b; */ c; */ 1; SELECT 2"), ["SELECT /* a /* b; */ c; */ 1", "SELECT 2"]);
    assert_eq!(pg("/**/SELECT 1/*/ ; */;"), ["SELECT 1"]);
    // A comment between a statement's tokens stays in its text; around it, it does not.
    assert_eq!(pg("/* lead */ SELECT /* mid */ 1 /* tail */;"), ["SELECT /* mid */ 1"]);
}

#[test]
fn pg_parentheses_do_not_split() {
    let sql = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); DELETE FROM b); SELECT 2";
    assert_eq!(
        pg(sql),
        ["CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); DELETE FROM b)", "SELECT 2"]
    );
    // A stray `)` is left to the server.
    assert_eq!(pg("SELECT 1); SELECT 2"), ["SELECT 1)", "SELECT 2"]);
}

#[test]
fn pg_begin_atomic() {
    let sql = "CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  INSERT INTO t VALUES (a);\n  SELECT CASE WHEN a > 0 THEN 1 ELSE CASE WHEN a < 0 THEN -1 END END;\nEND;\nSELECT 2;";
    assert_eq!(
        pg(sql),
        [
            "CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  INSERT INTO t VALUES (a);\n  SELECT CASE WHEN a > 0 THEN 1 ELSE CASE WHEN a < 0 THEN -1 END END;\nEND",
            "SELECT 2"
        ]
    );
    // Any case, OR REPLACE, procedures, comments between BEGIN and ATOMIC, an empty body.
    let sql = "create or replace procedure p() begin /* x */ atomic; update t set a = 1; end; Begin Atomic end;";
    assert_eq!(
        pg(sql),
        ["create or replace procedure p() begin /* x */ atomic; update t set a = 1; end", "Begin Atomic end"]
    );
    // A CASE inside parentheses closes there too.
    let sql = "CREATE PROCEDURE p() BEGIN ATOMIC SELECT (CASE WHEN true THEN 1 END); END; SELECT 2";
    assert_eq!(pg(sql), ["CREATE PROCEDURE p() BEGIN ATOMIC SELECT (CASE WHEN true THEN 1 END); END", "SELECT 2"]);
}

#[test]
fn pg_begin_is_a_transaction_elsewhere() {
    assert_eq!(
        pg("BEGIN;\nCREATE TABLE t (begin_at int, atomic int);\nCOMMIT;"),
        ["BEGIN", "CREATE TABLE t (begin_at int, atomic int)", "COMMIT"]
    );
    // BEGIN ATOMIC only means a body in CREATE FUNCTION / PROCEDURE; a trigger's EXECUTE FUNCTION is not one.
    assert_eq!(
        pg("CREATE TRIGGER tr AFTER INSERT ON t EXECUTE FUNCTION f(); BEGIN; SELECT 1"),
        ["CREATE TRIGGER tr AFTER INSERT ON t EXECUTE FUNCTION f()", "BEGIN", "SELECT 1"]
    );
    // A function with a dollar-quoted plpgsql body has no ATOMIC: its BEGIN/END are inside the quote.
    assert_eq!(
        pg("CREATE FUNCTION f() RETURNS void AS $$ BEGIN END $$ LANGUAGE plpgsql; BEGIN;"),
        ["CREATE FUNCTION f() RETURNS void AS $$ BEGIN END $$ LANGUAGE plpgsql", "BEGIN"]
    );
}

#[test]
fn pg_errors() {
    let pg = |sql| error(sql, Dialect::Postgres);
    assert_eq!(pg("SELECT 1;\nSELECT 'abc;\n"), "line 2, column 8: unterminated string");
    assert_eq!(pg("SELECT 'it''s"), "line 1, column 8: unterminated string");
    assert_eq!(pg("SELECT  E'\\'"), "line 1, column 9: unterminated E'' string");
    assert_eq!(pg("SELECT \"a"), "line 1, column 8: unterminated quoted identifier");
    assert_eq!(pg("DO $body$ BEGIN END $$;"), "line 1, column 4: unterminated dollar-quoted string $body$");
    assert_eq!(pg("SELECT 1;\n  /* a /* b */"), "line 2, column 3: unterminated block comment");
    assert_eq!(pg("SELECT (1;\nSELECT 2;"), "line 1, column 8: this parenthesis is never closed");
    assert_eq!(
        pg("SELECT 1;\nCREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2;"),
        "line 2, column 46: BEGIN ATOMIC has no matching END"
    );
    // A CASE without END keeps the block open.
    assert_eq!(
        pg("CREATE FUNCTION f() BEGIN ATOMIC SELECT CASE WHEN true THEN 1; END;"),
        "line 1, column 21: BEGIN ATOMIC has no matching END"
    );
}

// ---------------------------------------------------------------------------------------------------
// MySQL
// ---------------------------------------------------------------------------------------------------

#[test]
fn mysql_comments() {
    assert_eq!(my("SELECT 1 -- a; b\n, 2; SELECT 3"), ["SELECT 1 -- a; b\n, 2", "SELECT 3"]);
    assert_eq!(my("SELECT 1 --\t;\n; SELECT 2 --"), ["SELECT 1", "SELECT 2"]);
    // Without a space after it, `--` is two minus signs.
    assert_eq!(my("SELECT 1--1; SELECT 2"), ["SELECT 1--1", "SELECT 2"]);
    assert_eq!(my("SELECT 1 # a; b\n; # c;\nSELECT 2"), ["SELECT 1", "SELECT 2"]);
    // Block comments do not nest: the first */ ends this one.
    assert_eq!(my("/* a /* b; */ SELECT 1; */ SELECT 2"), ["SELECT 1", "*/ SELECT 2"]);
}

#[test]
fn mysql_version_comments_are_code() {
    assert_eq!(
        my("/*!40101 SET NAMES utf8 */;\n/*!50001 a; b */ x;"),
        ["/*!40101 SET NAMES utf8 */", "/*!50001 a; b */ x"]
    );
    assert_eq!(my("SELECT /*M!100400 1; */ 2; /*! */;"), ["SELECT /*M!100400 1; */ 2", "/*! */"]);
    // An optimizer hint is an ordinary comment, kept only inside a statement.
    assert_eq!(my("/*+ a */ SELECT /*+ b; */ 1;"), ["SELECT /*+ b; */ 1"]);
}

#[test]
fn mysql_strings_and_identifiers() {
    assert_eq!(my(r"SELECT 'a\';b', 'it''s;'; SELECT 2"), [r"SELECT 'a\';b', 'it''s;'", "SELECT 2"]);
    assert_eq!(my(r#"SELECT "a\";b", "x"";y"; SELECT 2"#), [r#"SELECT "a\";b", "x"";y""#, "SELECT 2"]);
    assert_eq!(my(r"SELECT '\\'; SELECT 2"), [r"SELECT '\\'", "SELECT 2"]);
    // Backticks have no backslash escapes.
    assert_eq!(my(r"SELECT `a;``b\`; SELECT 2"), [r"SELECT `a;``b\`", "SELECT 2"]);
    // # and -- inside quotes are text.
    assert_eq!(my("SELECT '#;', `-- ;`; SELECT 2"), ["SELECT '#;', `-- ;`", "SELECT 2"]);
    // `$$` is not special without DELIMITER.
    assert_eq!(my("SELECT $$; SELECT 2"), ["SELECT $$", "SELECT 2"]);
}

#[test]
fn mysql_delimiter_lines() {
    let sql = "DROP PROCEDURE IF EXISTS p;\nDELIMITER $$\nCREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND $$\nDELIMITER ;\nCALL p();\n";
    let statements = split(sql, Dialect::Mysql).unwrap();
    assert_eq!(
        my(sql),
        ["DROP PROCEDURE IF EXISTS p", "CREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND", "CALL p()"]
    );
    assert_eq!(statements.iter().map(|s| s.line).collect::<Vec<_>>(), [1, 3, 9]);
    assert!(sql[statements[1].range.clone()].ends_with("END $$"));

    // Any case; the delimiter may be followed by more text on the line, and a statement may follow it.
    assert_eq!(
        my("delimiter //\nSELECT 1; SELECT 2//SELECT 3//\ndElImItEr ;\nSELECT 4;"),
        ["SELECT 1; SELECT 2", "SELECT 3", "SELECT 4"]
    );
    // `;;` as in Apache Ranger's patches, and the rest of a DELIMITER line is ignored.
    assert_eq!(
        my("delimiter ;; -- switch\ncreate procedure p() begin select 1; end;;\ndelimiter ;\ncall p();"),
        ["create procedure p() begin select 1; end", "call p()"]
    );
    // The mysql client finds the delimiter even right after an identifier, and never inside quotes.
    assert_eq!(my("DELIMITER $$\nSELECT a$$ SELECT '$$'$$"), ["SELECT a", "SELECT '$$'"]);
    // A quoted delimiter, as the mysql client accepts it.
    assert_eq!(my("DELIMITER '//'\nSELECT 1//"), ["SELECT 1"]);
    // A DELIMITER line may follow a statement on the same line, where a statement could begin.
    assert_eq!(my("SELECT 1; DELIMITER $$\nSELECT 2; SELECT 3$$"), ["SELECT 1", "SELECT 2; SELECT 3"]);
}

#[test]
fn mysql_delimiter_inside_a_statement_is_an_identifier() {
    let sql =
        "CREATE TABLE csv_format (\n  id int,\ndelimiter varchar(1) NOT NULL\n);\nSELECT delimiter FROM csv_format;";
    assert_eq!(
        my(sql),
        ["CREATE TABLE csv_format (\n  id int,\ndelimiter varchar(1) NOT NULL\n)", "SELECT delimiter FROM csv_format"]
    );
    // In Postgres the word means nothing.
    assert_eq!(pg("DELIMITER //\nSELECT 1//"), ["DELIMITER //\nSELECT 1//"]);
}

#[test]
fn mysql_compound_bodies_without_delimiter() {
    let procedure = "CREATE DEFINER=`root`@`localhost` PROCEDURE p(IN n INT)
BEGIN
  DECLARE i INT DEFAULT 0;
  DECLARE done INT DEFAULT 0;
  DECLARE c CURSOR FOR SELECT id FROM t;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; END;
  IF n > 0 THEN SET i = IF(n > 10, 10, n); ELSEIF n < 0 THEN SET i = 0; ELSE BEGIN END; END IF;
  IF(done = 1) THEN SET i = 1; END IF;
  lbl: LOOP
    SET i = i + 1;
    IF i > 3 THEN LEAVE lbl; END IF;
  END LOOP lbl;
  WHILE i < 10 DO SET i = i + 1; END WHILE;
  REPEAT SET i = i - 1; UNTIL i = 0 END REPEAT;
  SET @s = REPEAT('x', 3);
  CASE n WHEN 1 THEN SELECT 1; ELSE SELECT CASE WHEN i THEN 1 ELSE 2 END; END CASE;
  SELECT t.end, end FROM t WHERE end > 0;
  DROP TABLE IF EXISTS tmp;
  CREATE TEMPORARY TABLE IF NOT EXISTS tmp (a INT);
END";
    let sql = format!("{procedure};\nCALL p(1);");
    assert_eq!(my(&sql), [procedure, "CALL p(1)"]);

    let trigger = "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN\n  SET NEW.a = CASE WHEN NEW.b THEN 1 ELSE 0 END;\nEND";
    let event = "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO BEGIN DELETE FROM log; END";
    let function = "create function f(x int) returns int deterministic begin return x + 1; end";
    let sql = format!("{trigger};\n{event};\n{function};\nSELECT f(1);");
    assert_eq!(my(&sql), [trigger, event, function, "SELECT f(1)"]);

    // Bodies without BEGIN, labelled blocks, MariaDB's FOR loop and BEGIN NOT ATOMIC.
    let sql = "CREATE TRIGGER tr AFTER UPDATE ON t FOR EACH ROW IF NEW.a THEN SET @x = 1; END IF;
CREATE PROCEDURE q() lbl: BEGIN FOR i IN 1..3 DO SELECT i; END FOR; END lbl;
CREATE OR REPLACE PROCEDURE r() BEGIN NOT ATOMIC SELECT 1; END;
CREATE FUNCTION g() RETURNS INT RETURN 1;
SELECT 2;";
    assert_eq!(
        my(sql),
        [
            "CREATE TRIGGER tr AFTER UPDATE ON t FOR EACH ROW IF NEW.a THEN SET @x = 1; END IF",
            "CREATE PROCEDURE q() lbl: BEGIN FOR i IN 1..3 DO SELECT i; END FOR; END lbl",
            "CREATE OR REPLACE PROCEDURE r() BEGIN NOT ATOMIC SELECT 1; END",
            "CREATE FUNCTION g() RETURNS INT RETURN 1",
            "SELECT 2"
        ]
    );
}

#[test]
fn mysql_begin_is_a_transaction_elsewhere() {
    let sql = "BEGIN;\nBEGIN WORK;\nXA BEGIN 'x';\nCREATE TABLE event (begin int, `end` int, trigger_at int);\nINSERT INTO event VALUES (1, 2, 3);\nCOMMIT;";
    assert_eq!(
        my(sql),
        [
            "BEGIN",
            "BEGIN WORK",
            "XA BEGIN 'x'",
            "CREATE TABLE event (begin int, `end` int, trigger_at int)",
            "INSERT INTO event VALUES (1, 2, 3)",
            "COMMIT"
        ]
    );
    // A view is not a routine, even with a definer.
    assert_eq!(
        my("CREATE DEFINER=root@localhost SQL SECURITY INVOKER VIEW v AS SELECT 1; BEGIN;"),
        ["CREATE DEFINER=root@localhost SQL SECURITY INVOKER VIEW v AS SELECT 1", "BEGIN"]
    );
}

#[test]
fn mysql_errors() {
    let my = |sql| error(sql, Dialect::Mysql);
    assert_eq!(my("SELECT 1;\nSELECT 'a\\';"), "line 2, column 8: unterminated string");
    assert_eq!(my("SELECT \"a"), "line 1, column 8: unterminated double-quoted string");
    assert_eq!(my("SELECT `a``"), "line 1, column 8: unterminated backtick-quoted identifier");
    assert_eq!(my("SELECT 1 /* a"), "line 1, column 10: unterminated block comment");
    assert_eq!(my("/*!50001 SELECT 1;"), "line 1, column 1: unterminated version comment /*! */");
    assert_eq!(
        my("SELECT 1;\n  DELIMITER\nSELECT 2;"),
        "line 2, column 3: DELIMITER needs a delimiter on the same line, e.g. DELIMITER $$"
    );
    assert_eq!(my("DELIMITER   "), "line 1, column 1: DELIMITER needs a delimiter on the same line, e.g. DELIMITER $$");
    assert_eq!(my("DELIMITER \\g"), "line 1, column 1: a DELIMITER cannot contain a backslash");
    assert_eq!(my("DELIMITER 0123456789abcdef"), "line 1, column 1: a DELIMITER is at most 15 bytes long");
    assert_eq!(
        my("SELECT 1;\nCREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2;"),
        "line 2, column 22: BEGIN has no matching END"
    );
    assert_eq!(
        my("CREATE PROCEDURE p() BEGIN IF 1 THEN SELECT 1; END IF;"),
        "line 1, column 22: BEGIN has no matching END"
    );
    assert_eq!(
        my("CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW WHILE 1 DO SET @a = 1;"),
        "line 1, column 50: WHILE has no matching END WHILE"
    );
    // A statement that ends unterminated after a DELIMITER change is fine.
    assert_eq!(split("DELIMITER $$\nSELECT 1", Dialect::Mysql).unwrap().len(), 1);
}

#[test]
fn mysql_error_display_matches_fields() {
    let e = split("SELECT 'x", Dialect::Mysql).unwrap_err();
    assert_eq!((e.line, e.column, e.message.as_str()), (1, 8, "unterminated string"));
}

#[test]
fn pathological_inputs_stay_linear() {
    // Each of these would take minutes with a quadratic rescan; linear, they take milliseconds.
    let inputs = [
        ("$a".repeat(200_000), Dialect::Postgres),
        ("(".repeat(400_000), Dialect::Postgres),
        ("/*".repeat(200_000), Dialect::Postgres),
        ("'';".repeat(200_000), Dialect::Mysql),
        (format!("DELIMITER aaaaaaaaaaaaaab\n{}", "a".repeat(400_000)), Dialect::Mysql),
        (format!("CREATE PROCEDURE p() {}", "BEGIN ".repeat(100_000)), Dialect::Mysql),
        (format!("CREATE FUNCTION f() {}", "BEGIN ATOMIC CASE ".repeat(50_000)), Dialect::Postgres),
    ];
    let started = std::time::Instant::now();
    for (sql, dialect) in &inputs {
        let _ = split(sql, *dialect);
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------------
// Invariants, checked on every split in these tests
// ---------------------------------------------------------------------------------------------------

/// Whitespace as both servers define it.
const SPACE: &[char] = &[' ', '\t', '\n', '\r', '\x0b', '\x0c'];

/// Checks that the statements are a faithful split of `sql`: ranges in order, disjoint, on char
/// boundaries, each text trimmed and inside its range, each range ending at the text or at a
/// terminator, and nothing but whitespace, comments, stray terminators and `DELIMITER` lines
/// between them (so splitting then joining loses nothing). The gaps are checked by a small scanner
/// written separately from the lexer, and that scanner also follows the MySQL delimiter.
fn check_invariants(sql: &str, dialect: Dialect, statements: &[Statement]) -> Result<(), TestCaseError> {
    let mut delimiter = ";".to_owned();
    let mut previous_end = 0;
    for statement in statements {
        let (range, text) = (&statement.range, &statement.text_range);
        prop_assert!(previous_end <= range.start && range.start < range.end && range.end <= sql.len(), "{range:?}");
        prop_assert!(sql.is_char_boundary(range.start) && sql.is_char_boundary(range.end));
        prop_assert!(sql.is_char_boundary(text.end));
        prop_assert_eq!(text.start, range.start);
        prop_assert!(text.start < text.end && text.end <= range.end);

        let gap = without_bom(&sql[previous_end..range.start], previous_end);
        prop_assert!(gap_is_ignorable(gap, dialect, &mut delimiter), "gap {gap:?} holds code");

        let body = &sql[text.clone()];
        // The servers' whitespace is ASCII; U+202F and friends are identifier characters to them.
        prop_assert_eq!(body.trim_matches(SPACE), body, "text not trimmed");
        // Looked at in the whole text: in MySQL, whether `--` starts a comment depends on the next byte.
        prop_assert!(!starts_with_comment(&sql[text.start..], dialect), "text starts with a comment: {body:?}");
        let tail = &sql[text.end..range.end];
        if !tail.is_empty() {
            prop_assert!(tail.ends_with(delimiter.as_str()), "{tail:?} does not end with {delimiter:?}");
        }
        let expected_line = 1 + sql[..range.start].matches('\n').count();
        prop_assert_eq!(statement.line as usize, expected_line);
        previous_end = range.end;
    }
    let rest = without_bom(&sql[previous_end..], previous_end);
    prop_assert!(gap_is_ignorable(rest, dialect, &mut delimiter), "tail {rest:?} holds code");
    Ok(())
}

/// `gap` without the byte-order mark the splitter skips at offset 0.
fn without_bom(gap: &str, offset: usize) -> &str {
    if offset == 0 { gap.strip_prefix('\u{FEFF}').unwrap_or(gap) } else { gap }
}

fn starts_with_comment(text: &str, dialect: Dialect) -> bool {
    match dialect {
        Dialect::Postgres => text.starts_with("--") || text.starts_with("/*"),
        Dialect::Mysql => {
            text.starts_with('#')
                || (text.starts_with("--") && text.as_bytes().get(2).is_none_or(|&b| b <= b' ' || b == 0x7f))
                || (text.starts_with("/*") && !text.starts_with("/*!") && !text.starts_with("/*M!"))
        }
    }
}

/// Whether `gap` holds only whitespace, comments, terminators and (MySQL) `DELIMITER` lines, whose
/// delimiter it records.
fn gap_is_ignorable(gap: &str, dialect: Dialect, delimiter: &mut String) -> bool {
    let mut rest = gap;
    loop {
        rest = rest.trim_start_matches(SPACE);
        if rest.is_empty() {
            return true;
        }
        if let Some(after) = rest.strip_prefix(delimiter.as_str()) {
            rest = after;
            continue;
        }
        let line_end = |s: &str, stops: &[char]| s.find(stops).unwrap_or(s.len());
        match dialect {
            Dialect::Postgres if rest.starts_with("--") => rest = &rest[line_end(rest, &['\n', '\r'])..],
            Dialect::Postgres if rest.starts_with("/*") => {
                let mut depth = 0;
                let mut index = 0;
                let bytes = rest.as_bytes();
                loop {
                    match bytes.get(index..index + 2) {
                        Some(b"/*") => (depth, index) = (depth + 1, index + 2),
                        Some(b"*/") => (depth, index) = (depth - 1, index + 2),
                        Some(_) => index += 1,
                        None => return false,
                    }
                    if depth == 0 {
                        break;
                    }
                }
                rest = &rest[index..];
            }
            Dialect::Mysql if starts_with_comment(rest, dialect) => {
                if rest.starts_with("/*") {
                    match rest[2..].find("*/") {
                        Some(n) => rest = &rest[n + 4..],
                        None => return false,
                    }
                } else {
                    rest = &rest[line_end(rest, &['\n'])..];
                }
            }
            Dialect::Mysql
                if rest.len() >= 9
                    && rest.as_bytes()[..9].eq_ignore_ascii_case(b"delimiter")
                    && rest.as_bytes().get(9).is_none_or(|b| b.is_ascii_whitespace() || *b == 0x0b) =>
            {
                let line = &rest[..line_end(rest, &['\n'])];
                let mut new = line[9..].split(SPACE).find(|s| !s.is_empty()).unwrap_or("");
                for quote in ['\'', '"', '`'] {
                    if new.len() > 2 && new.starts_with(quote) && new.ends_with(quote) {
                        new = &new[1..new.len() - 1];
                    }
                }
                if new.is_empty() {
                    return false;
                }
                *delimiter = new.to_owned();
                rest = &rest[line.len()..];
            }
            _ => return false,
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------------------

/// 2,000 cases, or `PROPTEST_CASES` when set: proptest reads that variable only into
/// `ProptestConfig::default()`, and an explicit case count would override it.
fn config() -> ProptestConfig {
    if std::env::var_os("PROPTEST_CASES").is_some() {
        ProptestConfig::default()
    } else {
        ProptestConfig::with_cases(2_000)
    }
}

/// Pieces of SQL syntax glued together at random, so that arbitrary input reaches deep states
/// (open bodies, delimiter changes, half-closed quotes) more often than random characters do.
fn soup() -> impl Strategy<Value = String> {
    const PIECES: &[&str] = &[
        " ",
        "\n",
        "\r\n",
        "\t",
        ";",
        ";;",
        "$$",
        "$a$",
        "$1",
        "$",
        "'",
        "''",
        "\"",
        "`",
        "\\",
        "E'",
        "e",
        "--",
        "-- ",
        "#",
        "/*",
        "*/",
        "/*!",
        "/*M!",
        "/*!50001 ",
        "(",
        ")",
        ":",
        ":=",
        "=",
        "@",
        ".",
        ",",
        "//",
        "|",
        "x",
        "é",
        "☃",
        "BEGIN",
        "begin",
        "ATOMIC",
        "END",
        "CASE",
        "IF",
        "THEN",
        "ELSE",
        "LOOP",
        "WHILE",
        "DO",
        "REPEAT",
        "FOR",
        "ROW",
        "CREATE",
        "OR REPLACE",
        "FUNCTION",
        "PROCEDURE",
        "TRIGGER",
        "EVENT",
        "DEFINER",
        "DELIMITER",
        "delimiter ",
        "DELIMITER $$\n",
        "DELIMITER ;\n",
        "delimiter ;;\n",
        "SELECT 1",
        "END IF",
        "END LOOP",
    ];
    prop::collection::vec(prop_oneof![prop::sample::select(PIECES).prop_map(str::to_owned), any::<String>()], 0..48)
        .prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(config())]

    /// The fuzz entry: any text either splits, keeping every invariant, or is refused; never a panic.
    #[test]
    fn fuzz_arbitrary_text(sql in any::<String>()) {
        for dialect in [Dialect::Postgres, Dialect::Mysql] {
            if let Ok(statements) = split(&sql, dialect) {
                check_invariants(&sql, dialect, &statements)?;
            }
        }
    }

    #[test]
    fn fuzz_sql_soup(sql in soup()) {
        for dialect in [Dialect::Postgres, Dialect::Mysql] {
            if let Ok(statements) = split(&sql, dialect) {
                check_invariants(&sql, dialect, &statements)?;
                // A statement's own text splits into just itself in Postgres (MySQL texts may depend
                // on the DELIMITER in force where they were).
                if dialect == Dialect::Postgres {
                    for statement in &statements {
                        let text = statement.text(&sql);
                        let again = split(text, dialect).map(|s| s.iter().map(|s| s.text(text)).collect::<Vec<_>>());
                        prop_assert_eq!(again, Ok(vec![text]));
                    }
                }
            }
        }
    }

    #[test]
    fn generated_postgres_scripts_split_where_generated(script in generated::script(Dialect::Postgres)) {
        let statements = split(&script.sql, Dialect::Postgres).map_err(|e| TestCaseError::fail(format!("{e}\n{}", script.sql)))?;
        check_invariants(&script.sql, Dialect::Postgres, &statements)?;
        let got: Vec<&str> = statements.iter().map(|s| s.text(&script.sql)).collect();
        prop_assert_eq!(got, script.statements.iter().map(String::as_str).collect::<Vec<_>>(), "{}", script.sql);
    }

    #[test]
    fn generated_mysql_scripts_split_where_generated(script in generated::script(Dialect::Mysql)) {
        let statements = split(&script.sql, Dialect::Mysql).map_err(|e| TestCaseError::fail(format!("{e}\n{}", script.sql)))?;
        check_invariants(&script.sql, Dialect::Mysql, &statements)?;
        let got: Vec<&str> = statements.iter().map(|s| s.text(&script.sql)).collect();
        prop_assert_eq!(got, script.statements.iter().map(String::as_str).collect::<Vec<_>>(), "{}", script.sql);
    }
}

/// Scripts generated from a small grammar, with the statements they were built from: identifiers,
/// strings and quoted identifiers holding `;` and quotes, dollar-quoted bodies, comments, compound
/// bodies and (MySQL) `DELIMITER` sections, joined by terminators, whitespace and comments.
mod generated {
    use proptest::prelude::*;

    use super::Dialect;

    #[derive(Debug, Clone)]
    pub(super) struct Script {
        pub(super) sql: String,
        pub(super) statements: Vec<String>,
    }

    /// Text for inside quotes: the characters that break naive splitters.
    fn quoted_content() -> impl Strategy<Value = String> {
        "[a-z ;'\"`$#\\\\/*\n-]{0,12}"
    }

    /// An unquoted identifier. The words that open or close bodies are reserved in Postgres and
    /// MySQL (`begin` and `end` are not reserved in MySQL, but are no names for columns in a body).
    fn identifier() -> impl Strategy<Value = String> {
        const RESERVED: &[&str] =
            &["begin", "end", "atomic", "case", "if", "loop", "while", "repeat", "until", "for", "then", "else", "do"];
        "[a-z_][a-z0-9_]{0,8}".prop_filter("reserved word", |s| !RESERVED.contains(&s.as_str()))
    }

    /// A code token of `dialect` that never ends a statement.
    fn token(dialect: Dialect) -> BoxedStrategy<String> {
        let common = prop_oneof![
            identifier(),
            "[0-9]{1,4}",
            Just("=".to_owned()),
            Just(",".to_owned()),
            quoted_content().prop_map(move |s| format!("'{}'", escape_single(&s, dialect))),
        ];
        match dialect {
            Dialect::Postgres => prop_oneof![
                4 => common,
                1 => quoted_content().prop_map(|s| format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))),
                1 => quoted_content().prop_map(|s| format!("\"{}\"", s.replace('"', "\"\""))),
                1 => (prop::sample::select(vec!["", "body", "fn", "x1"]), "[a-z ;'\"\n]{0,20}", any::<bool>())
                    .prop_map(|(tag, body, nested)| {
                        let inner = if nested { " $other$ ; $other$ " } else { "" };
                        format!("${tag}${body}{inner}${tag}$")
                    }),
                1 => "[1-9]".prop_map(|n| format!("${n}")),
                1 => (identifier(), quoted_content()).prop_map(|(a, s)| format!("({a}; '{}')", s.replace('\'', "''"))),
            ]
            .boxed(),
            Dialect::Mysql => prop_oneof![
                4 => common,
                1 => quoted_content().prop_map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\"\""))),
                1 => "[a-z ;'\"$#]{0,8}".prop_map(|s| format!("`{}`", s.replace('`', "``"))),
                1 => "[a-z ;'\"]{0,12}".prop_map(|s| format!("/*!50001 {s} */")),
            ]
            .boxed(),
        }
    }

    fn escape_single(content: &str, dialect: Dialect) -> String {
        match dialect {
            Dialect::Postgres => content.replace('\'', "''"),
            // MySQL takes both escapes; backslashes must be doubled to stay literal.
            Dialect::Mysql => content.replace('\\', "\\\\").replace('\'', "\\'"),
        }
    }

    /// A comment of `dialect` holding `;`, which may sit between tokens.
    fn comment(dialect: Dialect) -> BoxedStrategy<String> {
        let text = "[a-z ;'\"$]{0,12}";
        match dialect {
            Dialect::Postgres => prop_oneof![
                text.prop_map(|t| format!("-- {t}\n")),
                (text, text).prop_map(|(a, b)| format!("/* {a} /* {b} */ ; */")),
            ]
            .boxed(),
            Dialect::Mysql => prop_oneof![
                text.prop_map(|t| format!("-- {t}\n")),
                text.prop_map(|t| format!("# {t}\n")),
                text.prop_map(|t| format!("/* {t} */")),
            ]
            .boxed(),
        }
    }

    /// A statement with no terminator: a verb, then tokens with comments between some of them.
    fn plain_statement(dialect: Dialect) -> impl Strategy<Value = String> {
        let verb =
            prop::sample::select(vec!["SELECT", "INSERT INTO t VALUES", "UPDATE t SET", "DELETE FROM", "ALTER TABLE"]);
        let piece = (prop::option::weighted(0.2, comment(dialect)), token(dialect));
        (verb, prop::collection::vec(piece, 1..6)).prop_map(|(verb, pieces)| {
            let mut sql = verb.to_owned();
            for (comment, token) in pieces {
                if let Some(comment) = comment {
                    sql.push(' ');
                    sql.push_str(&comment);
                }
                sql.push(' ');
                sql.push_str(&token);
            }
            sql
        })
    }

    /// A Postgres function with a SQL-standard body.
    fn atomic_function() -> impl Strategy<Value = String> {
        prop::collection::vec((plain_statement(Dialect::Postgres), any::<bool>()), 0..4).prop_map(|body| {
            let mut sql = "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n".to_owned();
            for (statement, with_case) in body {
                sql.push_str(&statement);
                if with_case {
                    sql.push_str(" + CASE WHEN a THEN 1 ELSE CASE b WHEN 2 THEN 3 END END");
                }
                sql.push_str(";\n");
            }
            sql.push_str("END");
            sql
        })
    }

    /// The statements of a MySQL compound body, nested to a few levels.
    fn mysql_body() -> impl Strategy<Value = String> {
        let simple = prop_oneof![
            plain_statement(Dialect::Mysql),
            Just("SET v = IF(a, 1, 2)".to_owned()),
            Just("SET v = CASE WHEN a THEN IF(b, 1, 2) ELSE REPEAT('x', 2) END".to_owned()),
            Just("DROP TABLE IF EXISTS tmp".to_owned()),
        ];
        let statement = simple.prop_recursive(3, 12, 3, |inner| {
            let list =
                prop::collection::vec(inner, 1..3).prop_map(|v| v.iter().map(|s| format!("{s}; ")).collect::<String>());
            prop_oneof![
                list.clone().prop_map(|b| format!("BEGIN {b}END")),
                (list.clone(), list.clone())
                    .prop_map(|(a, b)| format!("IF a > 0 THEN {a}ELSEIF a < 0 THEN {b}ELSE {a}END IF")),
                list.clone().prop_map(|b| format!("IF(a = 1) THEN {b}END IF")),
                list.clone().prop_map(|b| format!("WHILE a < 3 DO {b}END WHILE")),
                list.clone().prop_map(|b| format!("lbl: LOOP {b}LEAVE lbl; END LOOP lbl")),
                list.clone().prop_map(|b| format!("REPEAT {b}UNTIL a END REPEAT")),
                (list.clone(), list).prop_map(|(a, b)| format!("CASE x WHEN 1 THEN {a}ELSE {b}END CASE")),
            ]
        });
        prop::collection::vec(statement, 0..4).prop_map(|v| v.iter().map(|s| format!("{s}; ")).collect::<String>())
    }

    fn mysql_routine() -> impl Strategy<Value = String> {
        let header = prop::sample::select(vec![
            "CREATE PROCEDURE p()",
            "CREATE DEFINER=`root`@`%` PROCEDURE p(IN a INT)",
            "CREATE FUNCTION f() RETURNS INT DETERMINISTIC",
            "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW",
            "create event e on schedule every 1 day do",
        ]);
        (header, mysql_body()).prop_map(|(header, body)| format!("{header}\nBEGIN\n{body}\nEND"))
    }

    /// Text between statements, after a terminator: whitespace, maybe a comment.
    fn separator(dialect: Dialect) -> impl Strategy<Value = String> {
        (prop::sample::select(vec![" ", "\n", "\n\n", "\t", "\r\n"]), prop::option::weighted(0.3, comment(dialect)))
            .prop_map(|(space, comment)| format!("{space}{}\n", comment.unwrap_or_default()))
    }

    /// One section of a script: its delimiter (None: the default `;` without a DELIMITER line) and statements.
    type Section = (Option<&'static str>, Vec<(String, String)>);

    fn section(dialect: Dialect) -> BoxedStrategy<Section> {
        let statement = match dialect {
            Dialect::Postgres => prop_oneof![4 => plain_statement(dialect), 1 => atomic_function()].boxed(),
            Dialect::Mysql => prop_oneof![4 => plain_statement(dialect), 1 => mysql_routine()].boxed(),
        };
        let statements = prop::collection::vec((statement, separator(dialect)), 1..5);
        match dialect {
            Dialect::Postgres => statements.prop_map(|s| (None, s)).boxed(),
            Dialect::Mysql => {
                (prop::option::weighted(0.5, prop::sample::select(vec!["$$", "//", ";;", "|", "ABC"])), statements)
                    .boxed()
            }
        }
    }

    pub(super) fn script(dialect: Dialect) -> impl Strategy<Value = Script> {
        (prop::option::weighted(0.3, comment(dialect)), prop::collection::vec(section(dialect), 1..4), any::<bool>())
            .prop_map(move |(leading, sections, last_terminated)| {
                let mut sql = leading.unwrap_or_default();
                let mut statements = Vec::new();
                let section_count = sections.len();
                for (index, (delimiter, body)) in sections.into_iter().enumerate() {
                    let last_section = index + 1 == section_count;
                    if let Some(delimiter) = delimiter {
                        sql.push_str(&format!("DELIMITER {delimiter}\n"));
                    }
                    let terminator = delimiter.unwrap_or(";");
                    let count = body.len();
                    for (position, (statement, separator)) in body.into_iter().enumerate() {
                        sql.push_str(&statement);
                        if !(last_section && position + 1 == count && !last_terminated) {
                            sql.push_str(terminator);
                            sql.push_str(&separator);
                        }
                        statements.push(statement);
                    }
                    if delimiter.is_some() && !last_section {
                        sql.push_str("delimiter ;\n");
                    }
                }
                Script { sql, statements }
            })
    }
}

#[test]
fn statements_that_cannot_run_in_a_transaction_are_recognised() {
    for (sql, what) in [
        ("CREATE INDEX CONCURRENTLY i ON t (c)", Some("CREATE INDEX CONCURRENTLY")),
        ("create unique index concurrently if not exists i on t (c)", Some("CREATE INDEX CONCURRENTLY")),
        ("-- note\n/* c */ DROP INDEX CONCURRENTLY i", Some("DROP INDEX CONCURRENTLY")),
        ("REINDEX INDEX CONCURRENTLY i", Some("REINDEX CONCURRENTLY")),
        ("REINDEX (VERBOSE) TABLE CONCURRENTLY t", Some("REINDEX CONCURRENTLY")),
        ("REINDEX TABLE t", None),
        ("VACUUM ANALYZE t", Some("VACUUM")),
        ("ALTER SYSTEM SET work_mem = '64MB'", Some("ALTER SYSTEM")),
        ("CREATE DATABASE x", Some("CREATE DATABASE")),
        ("ALTER TABLE p DETACH PARTITION c CONCURRENTLY", Some("DETACH PARTITION CONCURRENTLY")),
        ("CREATE INDEX i ON t (c)", None),
        ("CREATE TABLE concurrently (id int)", None),
        ("SELECT 'CREATE INDEX CONCURRENTLY'", None),
        ("ALTER TABLE t ADD COLUMN database text", None),
        ("commit", Some("COMMIT")),
        ("-- Ranger\nCOMMIT WORK", Some("COMMIT")),
        ("END TRANSACTION", Some("END")),
        ("rollback", Some("ROLLBACK")),
        ("BEGIN", Some("BEGIN")),
        ("start transaction read write", Some("START TRANSACTION")),
        ("SAVEPOINT s", None),
        ("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END", None),
        ("DO $$ BEGIN PERFORM 1; END $$", None),
        ("UPDATE t SET begin = 1", None),
    ] {
        assert_eq!(non_transactional(sql), what, "{sql}");
    }
}

#[test]
fn statements_that_may_release_session_locks_are_named() {
    assert_eq!(may_release_session_locks("SELECT pg_advisory_unlock_all()"), Some("pg_advisory_unlock"));
    assert_eq!(may_release_session_locks("select PG_ADVISORY_UNLOCK(42)"), Some("pg_advisory_unlock"));
    assert_eq!(may_release_session_locks("DISCARD ALL"), Some("DISCARD"));
    assert_eq!(may_release_session_locks("/* reset */ discard all"), Some("DISCARD"));
    // River's job state, not the statement.
    assert_eq!(may_release_session_locks("ALTER TYPE s ADD VALUE 'pending' AFTER 'discarded'"), None);
    assert_eq!(may_release_session_locks("DO $$ BEGIN PERFORM RELEASE_ALL_LOCKS(); END $$"), Some("RELEASE_ALL_LOCKS"));
    assert_eq!(may_release_session_locks("SELECT RELEASE_LOCK('x')"), Some("RELEASE_LOCK"));
    assert_eq!(may_release_session_locks("CREATE TABLE t (id int PRIMARY KEY)"), None);
    assert_eq!(may_release_session_locks("SELECT pg_advisory_lock(1)"), None);
}

#[test]
fn only_a_single_transactional_command_is_atomic_alone() {
    assert!(atomic_alone("CREATE TABLE a (id int)"));
    assert!(atomic_alone("ALTER TABLE a ADD COLUMN b int -- a comment"));
    assert!(!atomic_alone("CREATE INDEX CONCURRENTLY a_b ON a (b)"));
    assert!(!atomic_alone("CALL refresh()"));
    assert!(!atomic_alone("DO $$ BEGIN COMMIT; END $$"));
    assert!(!atomic_alone("CREATE TABLE a (id int); COMMIT; CREATE TABLE b (id int)"));
}
