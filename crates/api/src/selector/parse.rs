//! Tokenizer and recursive-descent parser for selectors, following
//! libcalico-go's `tokenizer.AppendTokens` and `parser.parseRoot`: the whole
//! input is tokenized first, then parsed. Every slice of the input is taken
//! with `str::get` at offsets that sit just after ASCII bytes, so no input can
//! make this code panic.

use std::collections::BTreeSet;
use std::fmt;

use super::{MAX_NESTING_DEPTH, Node, SelectorError};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Label(String),
    Str(String),
    LBrace,
    RBrace,
    Comma,
    Eq,
    Ne,
    In,
    NotIn,
    Not,
    Contains,
    StartsWith,
    EndsWith,
    All,
    Has(String),
    Global,
    LParen,
    RParen,
    And,
    Or,
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Label(k) => write!(f, "label '{k}'"),
            Tok::Str(_) => f.write_str("string literal"),
            Tok::LBrace => f.write_str("'{'"),
            Tok::RBrace => f.write_str("'}'"),
            Tok::Comma => f.write_str("','"),
            Tok::Eq => f.write_str("'=='"),
            Tok::Ne => f.write_str("'!='"),
            Tok::In => f.write_str("'in'"),
            Tok::NotIn => f.write_str("'not in'"),
            Tok::Not => f.write_str("'!'"),
            Tok::Contains => f.write_str("'contains'"),
            Tok::StartsWith => f.write_str("'starts with'"),
            Tok::EndsWith => f.write_str("'ends with'"),
            Tok::All => f.write_str("'all()'"),
            Tok::Has(k) => write!(f, "'has({k})'"),
            Tok::Global => f.write_str("'global()'"),
            Tok::LParen => f.write_str("'('"),
            Tok::RParen => f.write_str("')'"),
            Tok::And => f.write_str("'&&'"),
            Tok::Or => f.write_str("'||'"),
            Tok::Eof => f.write_str("end of selector"),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// Byte offset of the token's first character.
    pos: usize,
}

fn err(position: usize, message: impl Into<String>) -> SelectorError {
    SelectorError::new(position, message)
}

/// Calico's whitespace: space and tab only.
fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Calico's label characters (`findIdentifier`).
fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-')
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn skip_ws(&mut self) {
        while let Some(&b) = self.src.as_bytes().get(self.pos)
            && is_ws(b)
        {
            self.pos += 1;
        }
    }

    /// Consumes `prefix` (ASCII) if the input continues with it.
    fn eat(&mut self, prefix: &str) -> bool {
        if self.rest().starts_with(prefix) {
            self.pos += prefix.len();
            true
        } else {
            false
        }
    }

    /// Consumes a label, if one starts here.
    fn take_label(&mut self) -> Option<String> {
        let rest = self.rest();
        let n = rest.bytes().take_while(|&b| is_label_byte(b)).count();
        let label = rest.get(..n).filter(|l| !l.is_empty())?;
        self.pos += n;
        Some(label.to_owned())
    }

    /// Consumes a string literal whose opening quote `q` is at `self.pos`.
    fn take_string(&mut self, q: char) -> Result<String, SelectorError> {
        let start = self.pos;
        let body = self.src.get(start + 1..).unwrap_or("");
        let Some(end) = body.find(q) else {
            return Err(err(start, "unterminated string"));
        };
        let value = body.get(..end).unwrap_or("").to_owned();
        self.pos = start + 1 + end + 1;
        Ok(value)
    }

    /// After a label, only an operator word may follow (Calico checks these
    /// as plain prefixes, so `a startswith "x"` and `a in{"x"}` are valid).
    fn operator_after(&mut self, label: &str) -> Result<Tok, SelectorError> {
        let start = self.pos;
        if self.eat("contains") {
            return Ok(Tok::Contains);
        }
        for (word, tok) in [("starts", Tok::StartsWith), ("ends", Tok::EndsWith)] {
            if self.eat(word) {
                self.skip_ws();
                if self.eat("with") {
                    return Ok(tok);
                }
                return Err(err(self.pos, format!("expected 'with' after '{word}'")));
            }
        }
        if self.eat("not") {
            self.skip_ws();
            if self.eat("in") {
                return Ok(Tok::NotIn);
            }
            return Err(err(self.pos, "expected 'in' after 'not'"));
        }
        if self.eat("in") {
            return Ok(Tok::In);
        }
        Err(err(
            start,
            format!("unexpected characters after label '{label}', expected an operator"),
        ))
    }

    /// `has(`, `all(` and `global(` have been consumed: reads the rest.
    fn close_call(&mut self, name: &str) -> Result<(), SelectorError> {
        self.skip_ws();
        if self.eat(")") {
            Ok(())
        } else {
            Err(err(self.pos, format!("expected ')' after '{name}('")))
        }
    }

    fn unexpected_char(&self) -> SelectorError {
        match self.rest().chars().next() {
            Some(c) => err(self.pos, format!("unexpected character {c:?}")),
            None => err(self.pos, "unexpected end of selector"),
        }
    }
}

fn tokenize(src: &str) -> Result<Vec<Token>, SelectorError> {
    let mut lx = Lexer { src, pos: 0 };
    let mut toks: Vec<Token> = Vec::new();
    loop {
        lx.skip_ws();
        let start = lx.pos;
        let Some(&b) = src.as_bytes().get(start) else {
            toks.push(Token {
                tok: Tok::Eof,
                pos: start,
            });
            return Ok(toks);
        };
        let tok = match b {
            b'(' | b')' | b'{' | b'}' | b',' => {
                lx.pos += 1;
                match b {
                    b'(' => Tok::LParen,
                    b')' => Tok::RParen,
                    b'{' => Tok::LBrace,
                    b'}' => Tok::RBrace,
                    _ => Tok::Comma,
                }
            }
            b'"' => Tok::Str(lx.take_string('"')?),
            b'\'' => Tok::Str(lx.take_string('\'')?),
            b'=' => {
                if !lx.eat("==") {
                    return Err(err(start, "expected '=='"));
                }
                Tok::Eq
            }
            b'!' => {
                if lx.eat("!=") {
                    Tok::Ne
                } else {
                    lx.pos += 1;
                    Tok::Not
                }
            }
            b'&' => {
                if !lx.eat("&&") {
                    return Err(err(start, "expected '&&'"));
                }
                Tok::And
            }
            b'|' => {
                if !lx.eat("||") {
                    return Err(err(start, "expected '||'"));
                }
                Tok::Or
            }
            _ => match toks.last() {
                Some(Token {
                    tok: Tok::Label(label),
                    ..
                }) => lx.operator_after(label)?,
                _ => {
                    if lx.eat("has(") {
                        lx.skip_ws();
                        let Some(label) = lx.take_label() else {
                            return Err(err(lx.pos, "expected a label name in 'has()'"));
                        };
                        lx.close_call("has")?;
                        Tok::Has(label)
                    } else if lx.eat("all(") {
                        lx.close_call("all")?;
                        Tok::All
                    } else if lx.eat("global(") {
                        lx.close_call("global")?;
                        Tok::Global
                    } else if let Some(label) = lx.take_label() {
                        Tok::Label(label)
                    } else {
                        return Err(lx.unexpected_char());
                    }
                }
            },
        };
        toks.push(Token { tok, pos: start });
    }
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
    eof: Token,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks.get(self.i).unwrap_or(&self.eof).tok
    }

    /// Takes the next token (the end-of-input token repeats forever).
    fn next(&mut self) -> Token {
        match self.toks.get_mut(self.i) {
            Some(t) => {
                self.i += 1;
                let pos = t.pos;
                std::mem::replace(t, Token { tok: Tok::Eof, pos })
            }
            None => self.eof.clone(),
        }
    }

    fn parse_or(&mut self, depth: usize) -> Result<Node, SelectorError> {
        let mut nodes = vec![self.parse_and(depth)?];
        while *self.peek() == Tok::Or {
            self.next();
            nodes.push(self.parse_and(depth)?);
        }
        Ok(match <[Node; 1]>::try_from(nodes) {
            Ok([only]) => only,
            Err(nodes) => Node::Or(nodes),
        })
    }

    fn parse_and(&mut self, depth: usize) -> Result<Node, SelectorError> {
        let mut nodes = vec![self.parse_operation(depth)?];
        while *self.peek() == Tok::And {
            self.next();
            nodes.push(self.parse_operation(depth)?);
        }
        Ok(match <[Node; 1]>::try_from(nodes) {
            Ok([only]) => only,
            Err(nodes) => Node::And(nodes),
        })
    }

    /// One possibly negated operation; a run of `!` collapses to one or none.
    fn parse_operation(&mut self, depth: usize) -> Result<Node, SelectorError> {
        let mut negated = false;
        while *self.peek() == Tok::Not {
            self.next();
            negated = !negated;
        }
        let t = self.next();
        let node = match t.tok {
            Tok::Has(label) => Node::Has(label),
            Tok::All => Node::All,
            Tok::Global => Node::Global,
            Tok::Label(label) => self.parse_label_op(label)?,
            Tok::LParen => {
                if depth >= MAX_NESTING_DEPTH {
                    return Err(err(
                        t.pos,
                        format!("parentheses nested deeper than {MAX_NESTING_DEPTH} levels"),
                    ));
                }
                let inner = self.parse_or(depth + 1)?;
                let close = self.next();
                if close.tok != Tok::RParen {
                    return Err(err(close.pos, "expected ')'"));
                }
                inner
            }
            Tok::Eof => return Err(err(t.pos, "unexpected end of selector")),
            other => return Err(err(t.pos, format!("unexpected {other}"))),
        };
        Ok(if negated {
            Node::Not(Box::new(node))
        } else {
            node
        })
    }

    fn parse_label_op(&mut self, label: String) -> Result<Node, SelectorError> {
        let op = self.next();
        let make: fn(String, String) -> Node = match op.tok {
            Tok::Eq => Node::Eq,
            Tok::Ne => Node::Ne,
            Tok::Contains => Node::Contains,
            Tok::StartsWith => Node::StartsWith,
            Tok::EndsWith => Node::EndsWith,
            Tok::In | Tok::NotIn => {
                let set = self.parse_set(&op.tok)?;
                return Ok(if op.tok == Tok::In {
                    Node::In(label, set)
                } else {
                    Node::NotIn(label, set)
                });
            }
            _ => {
                return Err(err(
                    op.pos,
                    format!(
                        "expected an operator after label '{label}', found {}",
                        op.tok
                    ),
                ));
            }
        };
        let value = self.next();
        match value.tok {
            Tok::Str(v) => Ok(make(label, v)),
            other => Err(err(
                value.pos,
                format!("expected a quoted string after {}, found {other}", op.tok),
            )),
        }
    }

    /// `{ "a", "b" }`; like Calico, a trailing comma and the empty set are valid.
    fn parse_set(&mut self, op: &Tok) -> Result<BTreeSet<String>, SelectorError> {
        let open = self.next();
        if open.tok != Tok::LBrace {
            return Err(err(
                open.pos,
                format!("expected '{{' after {op}, found {}", open.tok),
            ));
        }
        let mut set = BTreeSet::new();
        while matches!(self.peek(), Tok::Str(_)) {
            if let Tok::Str(v) = self.next().tok {
                set.insert(v);
            }
            if *self.peek() != Tok::Comma {
                break;
            }
            self.next();
        }
        let close = self.next();
        if close.tok != Tok::RBrace {
            return Err(err(
                close.pos,
                format!("expected '}}', found {}", close.tok),
            ));
        }
        Ok(set)
    }
}

/// Parses a whole selector; the empty (or blank) input is `all()`.
pub(super) fn parse(src: &str) -> Result<Node, SelectorError> {
    let toks = tokenize(src)?;
    let eof = Token {
        tok: Tok::Eof,
        pos: src.len(),
    };
    let mut p = Parser { toks, i: 0, eof };
    if *p.peek() == Tok::Eof {
        return Ok(Node::All);
    }
    let node = p.parse_or(0)?;
    let rest = p.next();
    if rest.tok != Tok::Eof {
        return Err(err(
            rest.pos,
            format!("unexpected {} after the end of the expression", rest.tok),
        ));
    }
    // The canonical form parenthesizes every `&&`/`||` group, which can add
    // one level; refuse what could not be read back.
    if node.display_depth() > MAX_NESTING_DEPTH {
        return Err(err(
            0,
            format!("selector nested deeper than {MAX_NESTING_DEPTH} levels"),
        ));
    }
    Ok(node)
}
