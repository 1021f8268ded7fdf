//! Splits FHIRPath text into tokens.

use crate::parser::ParseError;

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    Identifier(String),
    /// `%name` or `%'name'`.
    Variable(String),
    String(String),
    /// Numbers keep their text (FHIR decimals are exact).
    Number(String),
    Symbol(&'static str),
}

const SYMBOLS: [&str; 17] =
    ["<=", ">=", "!=", "!~", ".", "(", ")", "[", "]", "{", "}", ",", "|", "=", "<", ">", "~"];
const MORE_SYMBOLS: [&str; 5] = ["+", "-", "*", "/", "&"];

pub fn tokenize(text: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '\'' || c == '`' {
            let (s, next) = quoted(&chars, i, c)?;
            tokens.push(if c == '\'' { Token::String(s) } else { Token::Identifier(s) });
            i = next;
        } else if c == '%' {
            if chars.get(i + 1) == Some(&'\'') || chars.get(i + 1) == Some(&'`') {
                let (s, next) = quoted(&chars, i + 1, chars[i + 1])?;
                tokens.push(Token::Variable(s));
                i = next;
            } else {
                let start = i + 1;
                i = start;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '-') {
                    i += 1;
                }
                tokens.push(Token::Variable(chars[start..i].iter().collect()));
            }
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(char::is_ascii_digit) {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            tokens.push(Token::Number(chars[start..i].iter().collect()));
        } else if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Identifier(chars[start..i].iter().collect()));
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let symbol = SYMBOLS
                .iter()
                .chain(MORE_SYMBOLS.iter())
                .find(|s| rest.starts_with(**s))
                .ok_or_else(|| ParseError(format!("unexpected character '{c}'")))?;
            tokens.push(Token::Symbol(symbol));
            i += symbol.len();
        }
    }
    Ok(tokens)
}

fn quoted(chars: &[char], start: usize, quote: char) -> Result<(String, usize), ParseError> {
    let mut s = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                let escaped = *chars.get(i + 1).ok_or_else(|| ParseError("unterminated escape".into()))?;
                s.push(match escaped {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'f' => '\u{c}',
                    other => other,
                });
                i += 2;
            }
            c if c == quote => return Ok((s, i + 1)),
            c => {
                s.push(c);
                i += 1;
            }
        }
    }
    Err(ParseError(format!("unterminated {quote}")))
}
