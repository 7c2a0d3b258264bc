use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::{MAX_NESTING_DEPTH, Node, Selector, SelectorError};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn sel(s: &str) -> Selector {
    match Selector::parse(s) {
        Ok(sel) => sel,
        Err(e) => panic!("{s:?} should parse: {e}"),
    }
}

fn parse_err(s: &str) -> SelectorError {
    match Selector::parse(s) {
        Ok(sel) => panic!("{s:?} should not parse, got {sel}"),
        Err(e) => e,
    }
}

/// Asserts which label sets `s` matches and which it doesn't (namespaced
/// context), both as parsed and after a trip through its canonical form.
fn check(s: &str, yes: &[&[(&str, &str)]], no: &[&[(&str, &str)]]) {
    let parsed = sel(s);
    let canon = sel(&parsed.to_string());
    assert_eq!(parsed, canon, "{s:?} round trip");
    for l in yes {
        assert!(parsed.matches(&labels(l)), "{s:?} should match {l:?}");
        assert!(canon.matches(&labels(l)), "{canon} should match {l:?}");
    }
    for l in no {
        assert!(!parsed.matches(&labels(l)), "{s:?} should not match {l:?}");
        assert!(!canon.matches(&labels(l)), "{canon} should not match {l:?}");
    }
}

fn canonical(s: &str) -> String {
    sel(s).to_string()
}

// ---------------------------------------------------------------- operators

#[test]
fn eq() {
    check(
        r#"a == "b""#,
        &[&[("a", "b")], &[("a", "b"), ("c", "d")]],
        &[
            &[],
            &[("a", "c")],
            &[("c", "d")],
            &[("a", "")],
            &[("a", "bb")],
        ],
    );
    check(r#"a == """#, &[&[("a", "")]], &[&[], &[("a", "x")]]);
}

#[test]
fn ne_is_true_when_label_absent() {
    check(
        r#"a != "b""#,
        &[&[], &[("a", "c")], &[("c", "b")]],
        &[&[("a", "b")]],
    );
}

#[test]
fn in_set() {
    check(
        r#"a in {"x", "y"}"#,
        &[&[("a", "x")], &[("a", "y")]],
        &[&[], &[("a", "z")], &[("b", "x")]],
    );
    check(r#"a in {}"#, &[], &[&[], &[("a", "")]]);
    check(r#"a in {"x",}"#, &[&[("a", "x")]], &[&[("a", "y")]]);
    check(
        r#"a in {"'", '"', "c"}"#,
        &[&[("a", "'")], &[("a", "\"")], &[("a", "c")]],
        &[&[], &[("a", "e")]],
    );
}

#[test]
fn not_in_set_is_true_when_label_absent() {
    check(
        r#"a not in {"x", "y"}"#,
        &[&[], &[("a", "z")], &[("b", "x")]],
        &[&[("a", "x")], &[("a", "y")]],
    );
    check(r#"a not in {}"#, &[&[], &[("a", "x")]], &[]);
}

#[test]
fn has_and_not_has() {
    check(
        "has(a)",
        &[&[("a", "")], &[("a", "b")]],
        &[&[], &[("b", "a")]],
    );
    check("!has(a)", &[&[], &[("b", "a")]], &[&[("a", "")]]);
    check("has( a )", &[&[("a", "x")]], &[&[]]);
    check(
        "has(example.com/tier)",
        &[&[("example.com/tier", "x")]],
        &[&[("tier", "x")]],
    );
}

#[test]
fn string_operators_are_false_when_label_absent() {
    check(
        r#"a contains "ab""#,
        &[&[("a", "ab")], &[("a", "xaby")]],
        &[&[], &[("a", "a")], &[("a", "ba")], &[("b", "ab")]],
    );
    check(
        r#"a starts with "ab""#,
        &[&[("a", "ab")], &[("a", "abc")]],
        &[&[], &[("a", "cab")], &[("a", "a")]],
    );
    check(
        r#"a ends with "ab""#,
        &[&[("a", "ab")], &[("a", "cab")]],
        &[&[], &[("a", "abc")], &[("a", "b")]],
    );
    check(r#"a contains """#, &[&[("a", "")], &[("a", "x")]], &[&[]]);
    check(r#"a starts with """#, &[&[("a", "x")]], &[&[]]);
    check(r#"a ends with """#, &[&[("a", "x")]], &[&[]]);
}

#[test]
fn all_and_empty() {
    for s in [
        "",
        " ",
        "\t \t",
        "all()",
        " all() ",
        "all( )",
        "(all())",
        "((all()))",
    ] {
        let parsed = sel(s);
        assert!(parsed.is_all(), "{s:?}");
        assert!(parsed.matches(&labels(&[])));
        assert!(parsed.matches(&labels(&[("a", "b")])));
        assert_eq!(parsed.to_string(), "all()");
        assert_eq!(parsed, Selector::all());
    }
    assert!(!sel("!all()").is_all());
    assert!(!sel("!all()").matches(&labels(&[])));
    assert!(!sel("global()").is_all());
    assert!(!sel("has(a)").is_all());
    assert!(!sel("all() && all()").is_all());
    assert_eq!(Selector::default(), Selector::all());
}

#[test]
fn global_depends_on_flag() {
    let g = sel("global()");
    assert!(!g.matches(&labels(&[])));
    assert!(!g.matches_with(&labels(&[("a", "b")]), false));
    assert!(g.matches_with(&labels(&[]), true));
    assert!(sel(" global( ) ").matches_with(&labels(&[]), true));
    let not_g = sel("!global()");
    assert!(not_g.matches(&labels(&[])));
    assert!(!not_g.matches_with(&labels(&[]), true));
    let mixed = sel(r#"global() || a == "b""#);
    assert!(mixed.matches_with(&labels(&[]), true));
    assert!(mixed.matches(&labels(&[("a", "b")])));
    assert!(!mixed.matches(&labels(&[])));
    // Non-global selectors ignore the flag.
    assert!(sel("has(a)").matches_with(&labels(&[("a", "")]), true));
    assert!(sel("all()").matches_with(&labels(&[]), true));
}

#[test]
fn and_or_not() {
    check(
        r#"a == "b" && c == "d""#,
        &[&[("a", "b"), ("c", "d")]],
        &[&[], &[("a", "b")], &[("c", "d")], &[("a", "b"), ("c", "e")]],
    );
    check(
        r#"a == "b" || c == "d""#,
        &[&[("a", "b")], &[("c", "d")], &[("a", "b"), ("c", "d")]],
        &[&[], &[("a", "e"), ("c", "e")]],
    );
    check(
        "!(!has(a) || has(b))",
        &[&[("a", "x")]],
        &[&[], &[("a", "x"), ("b", "y")]],
    );
    check(
        r#"has(a) && has(b) && has(c)"#,
        &[&[("a", ""), ("b", ""), ("c", "")]],
        &[&[("a", ""), ("b", "")]],
    );
    check(
        r#"has(a) || has(b) || has(c)"#,
        &[&[("c", "")]],
        &[&[("d", "")]],
    );
}

#[test]
fn precedence() {
    // `&&` binds tighter than `||`.
    assert_eq!(
        sel("has(a) || has(b) && has(c)"),
        sel("has(a) || (has(b) && has(c))")
    );
    assert_eq!(
        sel("has(a) && has(b) || has(c)"),
        sel("(has(a) && has(b)) || has(c)")
    );
    check(
        "has(a) || has(b) && has(c)",
        &[&[("a", "")], &[("b", ""), ("c", "")]],
        &[&[("b", "")]],
    );
    // `!` binds tightest, including over a label comparison.
    assert_eq!(
        sel(r#"!a == "x" && has(b)"#),
        sel(r#"(!(a == "x")) && has(b)"#)
    );
    assert_eq!(sel("!has(a) || has(b)"), sel("(!has(a)) || has(b)"));
    check(r#"!a in {"a"}"#, &[&[("a", "b")], &[]], &[&[("a", "a")]]);
    // Parentheses override.
    check(
        "(has(a) || has(b)) && has(c)",
        &[&[("a", ""), ("c", "")]],
        &[&[("a", "")], &[("c", "")]],
    );
    // Flat chains stay flat; parenthesized groups nest.
    assert_eq!(
        sel("has(a) && has(b) && has(c)").to_string(),
        "(has(a) && has(b) && has(c))"
    );
    assert_eq!(
        sel("(has(a) && has(b)) && has(c)").to_string(),
        "((has(a) && has(b)) && has(c))"
    );
}

#[test]
fn repeated_negation_collapses_like_calico() {
    assert_eq!(sel("!!has(a)"), sel("has(a)"));
    assert_eq!(sel("!!!has(a)"), sel("!has(a)"));
    assert_eq!(sel("! !! has(a)"), sel("!has(a)"));
    // Through parentheses it does not collapse, and prints so it reads back.
    let s = sel("!(!has(a))");
    assert_eq!(s.to_string(), "!(!has(a))");
    assert_eq!(sel(&s.to_string()), s);
    assert!(s.matches(&labels(&[("a", "")])));
    assert!(!s.matches(&labels(&[])));
    let many = format!("{}has(a)", "!".repeat(100_001));
    assert_eq!(sel(&many), sel("!has(a)"));
}

// ---------------------------------------------------------------- syntax

#[test]
fn quoting() {
    check(r#"a == 'b'"#, &[&[("a", "b")]], &[&[("a", "'b'")]]);
    check(r#"a == "it's""#, &[&[("a", "it's")]], &[]);
    check(r#"a == 'say "hi"'"#, &[&[("a", "say \"hi\"")]], &[]);
    check(
        "a == \"h\u{e9}llo \u{2603}\"",
        &[&[("a", "h\u{e9}llo \u{2603}")]],
        &[],
    );
    check("a == \"x\ny\"", &[&[("a", "x\ny")]], &[]);
    check(
        r#"a == "&& || ( ) ! {}""#,
        &[&[("a", "&& || ( ) ! {}")]],
        &[],
    );
    assert_eq!(canonical("a == 'b'"), r#"a == "b""#);
    assert_eq!(canonical(r#"a == '"'"#), r#"a == '"'"#);
    assert_eq!(canonical(r#"a == "'""#), r#"a == "'""#);
    assert_eq!(canonical(r#"a in {'"', "'"}"#), r#"a in {'"', "'"}"#);
}

#[test]
fn canonical_form_matches_calico() {
    let cases = [
        ("", "all()"),
        (" (all() )", "all()"),
        (" global( ) ", "global()"),
        ("! (has( b)||! has(a ))", "!(has(b) || !has(a))"),
        (r#"! (a == "b"&&! c != "d")"#, r#"!(a == "b" && !c != "d")"#),
        (r#"a contains '"'"#, r#"a contains '"'"#),
        (r#"a startswith '"'"#, r#"a starts with '"'"#),
        (r#"a endswith "'""#, r#"a ends with "'""#),
        (r#"a starts	with "x""#, r#"a starts with "x""#),
        (r#"a!='"'"#, r#"a != '"'"#),
        (r#"a=="b""#, r#"a == "b""#),
        (r#"a in{"x"}"#, r#"a in {"x"}"#),
        (r#"a notin {"x"}"#, r#"a not in {"x"}"#),
        (r#"a not  in {"x"}"#, r#"a not in {"x"}"#),
        (r#"a in {"d", "a", "b"}"#, r#"a in {"a", "b", "d"}"#),
        (
            r#"a in {"z", "z", "x", "y", "x", "a"}"#,
            r#"a in {"a", "x", "y", "z"}"#,
        ),
        (r#"a in { }"#, r#"a in {}"#),
        ("k == 'v' && x == 'y'", r#"(k == "v" && x == "y")"#),
        ("k == 'v' || has(x)", r#"(k == "v" || has(x))"#),
        ("!(k == 'v')", r#"!k == "v""#),
        (
            "!(!(k == 'v' && has(t) || all()) && (a in {'b', 'c'}))",
            r#"!(!((k == "v" && has(t)) || all()) && a in {"b", "c"})"#,
        ),
    ];
    for (input, want) in cases {
        let got = canonical(input);
        assert_eq!(got, want, "canonical form of {input:?}");
        assert_eq!(
            canonical(&got),
            got,
            "canonical form is stable for {input:?}"
        );
    }
}

#[test]
fn whitespace() {
    let want = sel(r#"(a == "b" && has(c)) || !d in {"e"}"#);
    for s in [
        r#"(a=="b"&&has(c))||!d in{"e"}"#,
        "  ( a  ==  \"b\"  &&  has( c ) )  ||  !  d  in  { \"e\" }  ",
        "\t(\ta\t==\t\"b\"\t&&\thas(\tc\t)\t)\t||\t!\td\tin\t{\t\"e\"\t}\t",
    ] {
        assert_eq!(sel(s), want, "{s:?}");
    }
    // Calico's whitespace is space and tab only.
    let e = parse_err("has(a)\n&& has(b)");
    assert_eq!(e.position, 6);
    assert_eq!(e.message, "unexpected character '\\n'");
    assert_eq!(parse_err("\r\nall()").position, 0);
    // `has(`, `all(` and `global(` take no space before the parenthesis.
    assert!(Selector::parse("has (a)").is_err());
    assert!(Selector::parse("all ()").is_err());
    assert!(Selector::parse("global ()").is_err());
}

#[test]
fn label_keys() {
    for key in [
        "a",
        "A9",
        "9a",
        "app.kubernetes.io/name",
        "example.com/key",
        "projectcalico.org/namespace",
        "a-b_c.d",
        "_x",
        "-",
        "a/b/c",
    ] {
        let s = format!(r#"{key} == "v""#);
        check(&s, &[&[(key, "v")]], &[&[(key, "w")], &[]]);
        check(&format!("has({key})"), &[&[(key, "")]], &[&[]]);
    }
    // Keywords are plain labels where a label is expected.
    for key in [
        "has", "all", "global", "in", "not", "contains", "starts", "ends", "with",
    ] {
        check(&format!(r#"{key} == "v""#), &[&[(key, "v")]], &[&[]]);
        check(
            &format!(r#"{key} not in {{"v"}}"#),
            &[&[(key, "w")]],
            &[&[(key, "v")]],
        );
        check(&format!("has({key})"), &[&[(key, "")]], &[&[]]);
    }
}

#[test]
fn bad_keys() {
    let e = parse_err("has()");
    assert_eq!(
        (e.position, e.message.as_str()),
        (4, "expected a label name in 'has()'")
    );
    let e = parse_err("has(a b)");
    assert_eq!(
        (e.position, e.message.as_str()),
        (6, "expected ')' after 'has('")
    );
    let e = parse_err("has(a:b)");
    assert_eq!(e.position, 5);
    let e = parse_err(r#"k$ == "x""#);
    assert_eq!(
        (e.position, e.message.as_str()),
        (
            1,
            "unexpected characters after label 'k', expected an operator"
        )
    );
    let e = parse_err("k\u{e9} == \"x\"");
    assert_eq!(e.position, 1);
    let e = parse_err("\u{e9}k == \"x\"");
    assert_eq!(
        (e.position, e.message.as_str()),
        (0, "unexpected character '\u{e9}'")
    );
    let e = parse_err(r#"a b == "c""#);
    assert_eq!(e.position, 2);
}

// ---------------------------------------------------------------- errors

#[test]
fn error_display() {
    let e = parse_err(r#"(a == "b""#);
    assert_eq!(
        e,
        SelectorError {
            position: 9,
            message: "expected ')'".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "invalid selector at position 9: expected ')'"
    );
    let e = parse_err("(has(a) && has(b)");
    assert_eq!(
        e.to_string(),
        "invalid selector at position 17: expected ')'"
    );
}

#[test]
fn error_positions() {
    let cases: &[(&str, usize, &str)] = &[
        (r#"a == "abc"#, 5, "unterminated string"),
        (r#"a == 'abc"#, 5, "unterminated string"),
        (r#""FOO'"#, 0, "unterminated string"),
        (r#"a in {"x", 'y}"#, 11, "unterminated string"),
        ("(has(a)", 7, "expected ')'"),
        ("((has(a))", 9, "expected ')'"),
        ("(has(a) has(b))", 8, "expected ')'"),
        ("(", 1, "unexpected end of selector"),
        ("()", 1, "unexpected ')'"),
        (")", 0, "unexpected ')'"),
        ("!", 1, "unexpected end of selector"),
        ("has(a) &&", 9, "unexpected end of selector"),
        ("has(a) ||", 9, "unexpected end of selector"),
        ("has(a) && || has(b)", 10, "unexpected '||'"),
        (
            r#"a == "b" c"#,
            9,
            "unexpected label 'c' after the end of the expression",
        ),
        (
            "has(a))",
            6,
            "unexpected ')' after the end of the expression",
        ),
        (
            "all() all()",
            6,
            "unexpected 'all()' after the end of the expression",
        ),
        (
            r#"a == "b" "c""#,
            9,
            "unexpected string literal after the end of the expression",
        ),
        (
            r#"a in "x""#,
            5,
            "expected '{' after 'in', found string literal",
        ),
        (
            r#"a not in "x""#,
            9,
            "expected '{' after 'not in', found string literal",
        ),
        (r#"a in ("x")"#, 5, "expected '{' after 'in', found '('"),
        (
            r#"a in {"x" "y"}"#,
            10,
            "expected '}', found string literal",
        ),
        (r#"a in {"x", ||"#, 11, "expected '}', found '||'"),
        (r#"a in {,}"#, 6, "expected '}', found ','"),
        (r#"a in {"x""#, 9, "expected '}', found end of selector"),
        (
            "a == b",
            5,
            "expected a quoted string after '==', found label 'b'",
        ),
        (
            "a contains b",
            11,
            "expected a quoted string after 'contains', found label 'b'",
        ),
        (
            "a starts with b",
            14,
            "expected a quoted string after 'starts with', found label 'b'",
        ),
        (
            "a ends with b",
            12,
            "expected a quoted string after 'ends with', found label 'b'",
        ),
        (
            "a != ||",
            5,
            "expected a quoted string after '!=', found '||'",
        ),
        (
            "a ==",
            4,
            "expected a quoted string after '==', found end of selector",
        ),
        (
            "a",
            1,
            "expected an operator after label 'a', found end of selector",
        ),
        (
            "a ",
            2,
            "expected an operator after label 'a', found end of selector",
        ),
        ("a (", 2, "expected an operator after label 'a', found '('"),
        (r#""b1" == b"#, 0, "unexpected string literal"),
        (
            "a b",
            2,
            "unexpected characters after label 'a', expected an operator",
        ),
        ("a starts \"x\"", 9, "expected 'with' after 'starts'"),
        ("a ends", 6, "expected 'with' after 'ends'"),
        ("a not {}", 6, "expected 'in' after 'not'"),
        ("a = \"b\"", 2, "expected '=='"),
        ("has(a) & has(b)", 7, "expected '&&'"),
        ("has(a) | has(b)", 7, "expected '||'"),
        (r#"foo == "bar" &"#, 13, "expected '&&'"),
        ("%", 0, "unexpected character '%'"),
        (r#"a == "b" && %"#, 12, "unexpected character '%'"),
        ("has(a", 5, "expected ')' after 'has('"),
        ("all(x)", 4, "expected ')' after 'all('"),
        ("global(", 7, "expected ')' after 'global('"),
    ];
    for &(input, position, message) in cases {
        let e = parse_err(input);
        assert_eq!(
            (e.position, e.message.as_str()),
            (position, message),
            "error for {input:?}"
        );
        assert!(e.position <= input.len());
        assert!(input.is_char_boundary(e.position));
        assert!(!e.message.ends_with('.'));
        assert_eq!(e.message, e.message.to_lowercase());
    }
}

#[test]
fn calico_bad_selectors_are_rejected() {
    for s in [
        "b == b",
        "b contains b",
        "b starts with b",
        "b ends with b",
        "'b1' == b",
        "b",
        "a b",
        "!",
        r#"foo == "bar" &"#,
        r#"foo == "bar" |"#,
        "foo != ||",
        r#"foo in {"", ||"#,
        r#"foo in """#,
        r#""FOO"#,
        r#""FOO'"#,
        "'FOO",
        "(",
        r#"(a == "foo""#,
        ")",
        "()",
        "%",
        r#"a == "b" && %"#,
        r#"a == "b" || %"#,
        "a ",
        "has(foo) &&",
        "has(foo) has(bar)",
        "a has(b)",
        "has(a) == \"b\"",
        "!has(a) a",
        "{}",
        ",",
        "&&",
        "a == 'x' &&& has(b)",
    ] {
        assert!(Selector::parse(s).is_err(), "{s:?} should be rejected");
    }
}

// ---------------------------------------------------------------- limits

#[test]
fn nesting_depth_is_bounded() {
    let nest = |n: usize| format!("{}has(a){}", "(".repeat(n), ")".repeat(n));
    assert_eq!(sel(&nest(MAX_NESTING_DEPTH)), sel("has(a)"));
    let e = parse_err(&nest(MAX_NESTING_DEPTH + 1));
    assert_eq!(e.position, MAX_NESTING_DEPTH);
    assert_eq!(e.message, "parentheses nested deeper than 128 levels");
    // Hostile inputs fail fast instead of overflowing the stack.
    assert!(Selector::parse(&"(".repeat(200_000)).is_err());
    assert!(Selector::parse(&"!(".repeat(200_000)).is_err());
    assert!(Selector::parse(&nest(100_000)).is_err());
}

#[test]
fn canonical_form_depth_is_bounded() {
    // 128 levels of `!(!...)`: the canonical form has the same depth.
    let deep_not = format!("{}has(a){}", "!(".repeat(128), ")".repeat(128));
    let s = sel(&deep_not);
    assert_eq!(sel(&s.to_string()), s);
    // Each `&&` group is parenthesized in the canonical form, so a chain of
    // groups nested in n parentheses prints with n + 1 levels: whatever
    // parses must read back, so n = 128 is refused.
    let mut chain = "has(a) && has(b)".to_owned();
    for _ in 0..MAX_NESTING_DEPTH - 1 {
        chain = format!("({chain}) && has(c)");
    }
    let s = sel(&chain);
    assert_eq!(sel(&s.to_string()), s);
    let e = parse_err(&format!("({chain}) && has(c)"));
    assert_eq!(e.position, 0);
    assert_eq!(e.message, "selector nested deeper than 128 levels");
}

#[test]
fn long_flat_selectors() {
    let long = vec!["has(a)"; 20_000].join(" && ");
    let s = sel(&long);
    assert!(s.matches(&labels(&[("a", "")])));
    assert_eq!(sel(&s.to_string()), s);
    let long_or = vec![r#"a == "x""#; 20_000].join(" || ");
    assert!(!sel(&long_or).matches(&labels(&[])));
    let big_set = format!(
        "a in {{{}}}",
        (0..20_000)
            .map(|i| format!("\"v{i}\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert!(sel(&big_set).matches(&labels(&[("a", "v19999")])));
    let long_key = "k".repeat(100_000);
    assert!(sel(&format!("has({long_key})")).matches(&labels(&[(long_key.as_str(), "")])));
}

// ---------------------------------------------------------------- traits

#[test]
fn from_str_and_hash() {
    use std::collections::HashSet;
    let a: Selector = "has(a)&&b=='c'".parse().expect("parses");
    let b: Selector = r#" has( a ) && b == "c" "#.parse().expect("parses");
    assert_eq!(a, b);
    let set: HashSet<Selector> = [a, b].into_iter().collect();
    assert_eq!(set.len(), 1);
    assert!("a ==".parse::<Selector>().is_err());
}

#[test]
fn serde_as_string() {
    let s = sel("has(a)&&b=='c'");
    let json = serde_json::to_string(&s).expect("serializes");
    assert_eq!(json, r#""(has(a) && b == \"c\")""#);
    let back: Selector = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, s);
    let all: Selector = serde_json::from_str(r#""""#).expect("deserializes");
    assert!(all.is_all());
    let e = serde_json::from_str::<Selector>(r#""(a == 'b'""#).expect_err("must fail");
    assert!(
        e.to_string()
            .contains("invalid selector at position 9: expected ')'"),
        "{e}"
    );
    assert!(serde_json::from_str::<Selector>("42").is_err());
    #[derive(serde::Deserialize)]
    struct Wrapper {
        selector: Option<Selector>,
    }
    let w: Wrapper = serde_json::from_str(r#"{"selector": "global()"}"#).expect("deserializes");
    assert_eq!(w.selector, Some(sel("global()")));
}

// ---------------------------------------------------------------- properties

const KEYS: &[&str] = &[
    "a",
    "b",
    "app",
    "example.com/tier",
    "in",
    "not",
    "has",
    "x-y_z.w",
];
const VALUES: &[&str] = &["", "v", "va", "av", "vav", "it's", "say \"hi\"", "\u{2603}"];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(KEYS).prop_map(str::to_owned),
        1 => "[a-zA-Z0-9_./-]{1,10}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(VALUES).prop_map(str::to_owned),
        1 => "[a-z' \t\n{}(),!&|=\u{e9}\u{2603}]{0,6}",
        1 => "[a-z\" ]{0,6}",
    ]
}

fn leaf() -> impl Strategy<Value = Node> {
    let set = || prop::collection::btree_set(value(), 0..4);
    prop_oneof![
        Just(Node::All),
        Just(Node::Global),
        key().prop_map(Node::Has),
        (key(), value()).prop_map(|(k, v)| Node::Eq(k, v)),
        (key(), value()).prop_map(|(k, v)| Node::Ne(k, v)),
        (key(), value()).prop_map(|(k, v)| Node::Contains(k, v)),
        (key(), value()).prop_map(|(k, v)| Node::StartsWith(k, v)),
        (key(), value()).prop_map(|(k, v)| Node::EndsWith(k, v)),
        (key(), set()).prop_map(|(k, s)| Node::In(k, s)),
        (key(), set()).prop_map(|(k, s)| Node::NotIn(k, s)),
    ]
}

fn node() -> impl Strategy<Value = Node> {
    leaf().prop_recursive(6, 64, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|n| Node::Not(Box::new(n))),
            prop::collection::vec(inner.clone(), 2..5).prop_map(Node::And),
            prop::collection::vec(inner, 2..5).prop_map(Node::Or),
        ]
    })
}

fn label_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        prop::sample::select(KEYS).prop_map(str::to_owned),
        value(),
        0..5,
    )
}

/// A deliberately plain evaluator, written from Calico's node semantics.
fn reference_eval(n: &Node, labels: &BTreeMap<String, String>, global: bool) -> bool {
    let get = |k: &String| labels.get(k).map(String::as_str);
    match n {
        Node::All => true,
        Node::Global => global,
        Node::Has(k) => get(k).is_some(),
        Node::Eq(k, v) => get(k) == Some(v.as_str()),
        Node::Ne(k, v) => get(k) != Some(v.as_str()),
        Node::In(k, set) => match get(k) {
            Some(x) => set.iter().any(|m| m == x),
            None => false,
        },
        Node::NotIn(k, set) => match get(k) {
            Some(x) => !set.iter().any(|m| m == x),
            None => true,
        },
        Node::Contains(k, v) => match get(k) {
            Some(x) => (0..=x.len()).any(|i| x.get(i..).is_some_and(|t| t.starts_with(v.as_str()))),
            None => false,
        },
        Node::StartsWith(k, v) => match get(k) {
            Some(x) => x.as_bytes().get(..v.len()) == Some(v.as_bytes()),
            None => false,
        },
        Node::EndsWith(k, v) => match get(k) {
            Some(x) => x
                .len()
                .checked_sub(v.len())
                .is_some_and(|i| x.as_bytes().get(i..) == Some(v.as_bytes())),
            None => false,
        },
        Node::Not(inner) => !reference_eval(inner, labels, global),
        Node::And(ns) => {
            ns.iter()
                .filter(|n| reference_eval(n, labels, global))
                .count()
                == ns.len()
        }
        Node::Or(ns) => {
            ns.iter()
                .filter(|n| reference_eval(n, labels, global))
                .count()
                > 0
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, char),
    Replace(usize, char),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let ch = prop_oneof![
        prop::sample::select(vec![
            '(',
            ')',
            '{',
            '}',
            ',',
            '!',
            '=',
            '&',
            '|',
            '"',
            '\'',
            ' ',
            '\t',
            '\n',
            'a',
            '/',
            '.',
            '-',
            '\u{e9}',
            '\u{2603}',
            '\u{1f600}',
        ]),
        any::<char>(),
    ];
    prop_oneof![
        (any::<usize>(), 1..6usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<usize>(), ch.clone()).prop_map(|(i, c)| Mutation::Insert(i, c)),
        (any::<usize>(), ch).prop_map(|(i, c)| Mutation::Replace(i, c)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1..12usize).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn mutate(s: &str, m: &Mutation) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    let len = chars.len();
    let at = |i: usize| if len == 0 { 0 } else { i % (len + 1) };
    match *m {
        Mutation::Delete(i, n) => {
            let start = at(i);
            let end = (start + n).min(len);
            chars.drain(start..end);
        }
        Mutation::Insert(i, c) => chars.insert(at(i), c),
        Mutation::Replace(i, c) => {
            if let Some(slot) = chars.get_mut(at(i)) {
                *slot = c;
            }
        }
        Mutation::Truncate(i) => chars.truncate(at(i)),
        Mutation::Duplicate(i, n) => {
            let start = at(i);
            let end = (start + n).min(len);
            let copy: Vec<char> = chars.get(start..end).unwrap_or(&[]).to_vec();
            for (j, c) in copy.into_iter().enumerate() {
                chars.insert(end + j, c);
            }
        }
    }
    chars.into_iter().collect()
}

/// Parsing must not panic; an accepted input must have a canonical form
/// that reads back to the same selector.
fn parse_is_total(input: &str) -> Result<(), TestCaseError> {
    match Selector::parse(input) {
        Ok(s) => {
            let canon = s.to_string();
            prop_assert_eq!(Selector::parse(&canon), Ok(s), "canonical form {:?}", canon);
        }
        Err(e) => {
            prop_assert!(e.position <= input.len());
            prop_assert!(input.is_char_boundary(e.position));
            prop_assert!(!e.message.is_empty());
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn prop_display_parse_round_trip(ast in node()) {
        let s = Selector { root: ast };
        let text = s.to_string();
        prop_assert_eq!(Selector::parse(&text), Ok(s.clone()), "text {:?}", text);
        prop_assert_eq!(text.parse::<Selector>().map(|p| p.to_string()), Ok(text.clone()));
        let json = serde_json::to_string(&s).expect("serializes");
        prop_assert_eq!(serde_json::from_str::<Selector>(&json).ok(), Some(s));
    }

    #[test]
    fn prop_eval_matches_reference(ast in node(), labels in label_map(), global in any::<bool>()) {
        let want = reference_eval(&ast, &labels, global);
        let s = Selector { root: ast };
        prop_assert_eq!(s.matches_with(&labels, global), want);
        if !global {
            prop_assert_eq!(s.matches(&labels), want);
        }
        let reparsed = Selector::parse(&s.to_string()).expect("canonical form parses");
        prop_assert_eq!(reparsed.matches_with(&labels, global), want);
    }

    #[test]
    fn prop_parse_never_panics_on_any_string(input in any::<String>()) {
        parse_is_total(&input)?;
    }

    #[test]
    fn prop_parse_never_panics_on_selector_alphabet(
        input in "[a-c(){},!=&|\"' \t\n./-]{0,40}|(has\\(|all\\(|global\\(|in |not in |contains |starts with |ends with |[a-c]|[ (){}!,'\"]|&&|\\|\\||==|!=|\u{e9}){0,20}"
    ) {
        parse_is_total(&input)?;
    }

    #[test]
    fn prop_parse_never_panics_on_mutations(
        ast in node(),
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let mut text = Selector { root: ast }.to_string();
        for m in &mutations {
            text = mutate(&text, m);
            parse_is_total(&text)?;
        }
    }

    #[test]
    fn prop_boolean_algebra(a in node(), b in node(), labels in label_map(), global in any::<bool>()) {
        let (sa, sb) = (Selector { root: a }, Selector { root: b });
        let (ea, eb) = (sa.matches_with(&labels, global), sb.matches_with(&labels, global));
        let eval = |text: String| -> Result<bool, TestCaseError> {
            match Selector::parse(&text) {
                Ok(s) => Ok(s.matches_with(&labels, global)),
                Err(e) => Err(TestCaseError::fail(format!("{text:?}: {e}"))),
            }
        };
        prop_assert_eq!(eval(format!("!({sa})"))?, !ea);
        prop_assert_eq!(eval(format!("!!({sa})"))?, ea);
        prop_assert_eq!(eval(format!("({sa}) && ({sb})"))?, ea && eb);
        prop_assert_eq!(eval(format!("({sa}) || ({sb})"))?, ea || eb);
        prop_assert_eq!(eval(format!("!(({sa}) && ({sb}))"))?, eval(format!("!({sa}) || !({sb})"))?);
        prop_assert_eq!(eval(format!("!(({sa}) || ({sb}))"))?, eval(format!("!({sa}) && !({sb})"))?);
        prop_assert_eq!(eval(format!("{sa} && {sb}"))?, ea && eb);
        prop_assert_eq!(eval(format!("{sa} || {sb}"))?, ea || eb);
    }
}

#[test]
fn reference_evaluator_sanity() {
    let l = labels(&[("a", "xyz")]);
    let set: BTreeSet<String> = ["xyz".to_owned()].into();
    assert!(reference_eval(
        &Node::Contains("a".into(), "y".into()),
        &l,
        false
    ));
    assert!(reference_eval(
        &Node::StartsWith("a".into(), "xy".into()),
        &l,
        false
    ));
    assert!(reference_eval(
        &Node::EndsWith("a".into(), "yz".into()),
        &l,
        false
    ));
    assert!(!reference_eval(
        &Node::EndsWith("a".into(), "wxyz".into()),
        &l,
        false
    ));
    assert!(reference_eval(
        &Node::In("a".into(), set.clone()),
        &l,
        false
    ));
    assert!(!reference_eval(&Node::NotIn("a".into(), set), &l, false));
}

#[test]
fn required_values_name_a_label_every_match_carries() {
    assert_eq!(
        sel("app == 'web'").required_values(""),
        Some(("app", vec!["web"]))
    );
    assert_eq!(
        sel("app in {'b', 'a'} && has(x)").required_values(""),
        Some(("app", vec!["a", "b"]))
    );
    assert_eq!(
        sel("ns == 'n' && app == 'web'").required_values("ns"),
        Some(("app", vec!["web"]))
    );
    assert_eq!(
        sel("ns == 'n' && has(a)").required_values("ns"),
        Some(("ns", vec!["n"]))
    );
    for none in [
        "all()",
        "has(app)",
        "app != 'x'",
        "a == 'b' || c == 'd'",
        "!(a == 'b')",
    ] {
        assert_eq!(sel(none).required_values(""), None, "{none}");
    }
}
