//! A Pratt parser for FHIRPath, with the specification's operator precedence.

use crate::lexer::{Token, tokenize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("FHIRPath: {0}")]
pub struct ParseError(pub String);

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// The input collection (`$this` at the top of an expression).
    This,
    Variable(String),
    String(String),
    Number(String),
    Boolean(bool),
    Empty,
    /// Navigation to a child element from the focus.
    Member(Box<Expr>, String),
    /// A function call on the focus.
    Call(Box<Expr>, String, Vec<Expr>),
    Index(Box<Expr>, Box<Expr>),
    Binary(&'static str, Box<Expr>, Box<Expr>),
    /// `is` / `as` with a type name.
    TypeOp(&'static str, Box<Expr>, String),
}

const FUNCTIONS: &[&str] = &[
    "where",
    "select",
    "ofType",
    "as",
    "is",
    "exists",
    "empty",
    "not",
    "first",
    "last",
    "tail",
    "count",
    "hasValue",
    "resolve",
    "extension",
    "iif",
];

pub fn parse(text: &str) -> Result<Expr, ParseError> {
    let tokens = tokenize(text)?;
    let mut p = Parser { tokens, pos: 0 };
    let e = p.expression(0)?;
    match p.peek() {
        None => Ok(e),
        Some(t) => Err(ParseError(format!("unexpected {t:?} in '{text}'"))),
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

/// Binding power of infix operators (higher binds tighter), from the specification's table.
fn infix(t: &Token) -> Option<(&'static str, u8)> {
    Some(match t {
        Token::Symbol(s @ ("*" | "/")) => (s, 10),
        Token::Symbol(s @ ("+" | "-" | "&")) => (s, 9),
        Token::Identifier(s) if s == "is" => ("is", 8),
        Token::Identifier(s) if s == "as" => ("as", 8),
        Token::Symbol("|") => ("|", 7),
        Token::Symbol(s @ ("<" | ">" | "<=" | ">=")) => (s, 6),
        Token::Symbol(s @ ("=" | "!=" | "~" | "!~")) => (s, 5),
        Token::Identifier(s) if s == "in" => ("in", 4),
        Token::Identifier(s) if s == "contains" => ("contains", 4),
        Token::Identifier(s) if s == "and" => ("and", 3),
        Token::Identifier(s) if s == "or" => ("or", 2),
        Token::Identifier(s) if s == "xor" => ("xor", 2),
        Token::Identifier(s) if s == "implies" => ("implies", 1),
        _ => return None,
    })
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn expect(&mut self, symbol: &str) -> Result<(), ParseError> {
        match self.next() {
            Some(Token::Symbol(s)) if s == symbol => Ok(()),
            other => Err(ParseError(format!("expected '{symbol}', found {other:?}"))),
        }
    }

    fn expression(&mut self, min_bp: u8) -> Result<Expr, ParseError> {
        let mut left = self.postfix()?;
        while let Some((op, bp)) = self.peek().and_then(infix) {
            if bp <= min_bp {
                break;
            }
            self.pos += 1;
            left = if op == "is" || op == "as" {
                let ty = self.type_name()?;
                Expr::TypeOp(op, Box::new(left), ty)
            } else {
                let right = self.expression(bp)?;
                Expr::Binary(op, Box::new(left), Box::new(right))
            };
        }
        Ok(left)
    }

    fn type_name(&mut self) -> Result<String, ParseError> {
        let mut name = match self.next() {
            Some(Token::Identifier(s)) => s,
            other => return Err(ParseError(format!("expected a type name, found {other:?}"))),
        };
        // Qualified names (`FHIR.Patient`, `System.String`): keep the last part.
        while self.peek() == Some(&Token::Symbol(".")) {
            self.pos += 1;
            if let Some(Token::Identifier(s)) = self.next() {
                name = s;
            }
        }
        Ok(name)
    }

    /// A term followed by any number of `.member`, `.function(...)` and `[index]`.
    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.term()?;
        loop {
            match self.peek() {
                Some(Token::Symbol(".")) => {
                    self.pos += 1;
                    let name = match self.next() {
                        Some(Token::Identifier(s)) => s,
                        other => {
                            return Err(ParseError(format!("expected a name after '.', found {other:?}")));
                        }
                    };
                    e = self.member_or_call(e, name)?;
                }
                Some(Token::Symbol("[")) => {
                    self.pos += 1;
                    let index = self.expression(0)?;
                    self.expect("]")?;
                    e = Expr::Index(Box::new(e), Box::new(index));
                }
                _ => return Ok(e),
            }
        }
    }

    fn member_or_call(&mut self, focus: Expr, name: String) -> Result<Expr, ParseError> {
        if self.peek() != Some(&Token::Symbol("(")) {
            return Ok(Expr::Member(Box::new(focus), name));
        }
        self.pos += 1;
        if !FUNCTIONS.contains(&name.as_str()) {
            return Err(ParseError(format!("function '{name}' is not supported")));
        }
        let mut args = Vec::new();
        if self.peek() != Some(&Token::Symbol(")")) {
            loop {
                args.push(if name == "ofType" || name == "as" || name == "is" {
                    Expr::String(self.type_name()?)
                } else {
                    self.expression(0)?
                });
                match self.next() {
                    Some(Token::Symbol(",")) => continue,
                    Some(Token::Symbol(")")) => break,
                    other => {
                        return Err(ParseError(format!("expected ',' or ')', found {other:?}")));
                    }
                }
            }
        } else {
            self.pos += 1;
        }
        Ok(Expr::Call(Box::new(focus), name, args))
    }

    fn term(&mut self) -> Result<Expr, ParseError> {
        match self.next() {
            Some(Token::Symbol("(")) => {
                let e = self.expression(0)?;
                self.expect(")")?;
                Ok(e)
            }
            Some(Token::Symbol("{")) => {
                self.expect("}")?;
                Ok(Expr::Empty)
            }
            Some(Token::Symbol("-")) => match self.next() {
                Some(Token::Number(n)) => Ok(Expr::Number(format!("-{n}"))),
                other => Err(ParseError(format!("unsupported unary minus before {other:?}"))),
            },
            Some(Token::String(s)) => Ok(Expr::String(s)),
            Some(Token::Number(n)) => Ok(Expr::Number(n)),
            Some(Token::Variable(v)) => Ok(Expr::Variable(v)),
            Some(Token::Identifier(s)) => match s.as_str() {
                "true" => Ok(Expr::Boolean(true)),
                "false" => Ok(Expr::Boolean(false)),
                "$this" => Ok(Expr::This),
                _ => self.member_or_call(Expr::This, s),
            },
            other => Err(ParseError(format!("unexpected {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: &str) {
        let got = match parse(text) {
            Ok(e) => format!("{e:?}"),
            Err(e) => e.to_string(),
        };
        assert_eq!(got, expected, "{text}");
    }

    #[test]
    fn precedence_and_shapes() {
        check("Patient.name", r#"Member(Member(This, "Patient"), "name")"#);
        check("a | b.c", r#"Binary("|", Member(This, "a"), Member(Member(This, "b"), "c"))"#);
        check(
            "a = 'x' and b",
            r#"Binary("and", Binary("=", Member(This, "a"), String("x")), Member(This, "b"))"#,
        );
        check(
            "(Observation.value as Quantity)",
            r#"TypeOp("as", Member(Member(This, "Observation"), "value"), "Quantity")"#,
        );
        check(
            "x.where(resolve() is Patient)",
            r#"Call(Member(This, "x"), "where", [TypeOp("is", Call(This, "resolve", []), "Patient")])"#,
        );
        check(
            "Bundle.entry[0].resource",
            r#"Member(Index(Member(Member(This, "Bundle"), "entry"), Number("0")), "resource")"#,
        );
        check("v.ofType(FHIR.Quantity)", r#"Call(Member(This, "v"), "ofType", [String("Quantity")])"#);
        check("a.frobnicate()", "FHIRPath: function 'frobnicate' is not supported");
        check("a.", "FHIRPath: expected a name after '.', found None");
        check("'unterminated", "FHIRPath: unterminated '");
    }
}
