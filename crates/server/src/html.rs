//! The server's own HTML pages (the sign-in page, the portal): one page shell, one escape.
//! Pages are rendered on the server and work without scripts; none is allowed to run
//! (`script-src 'none'`), no page may be framed (clickjacking), and none is cached (they
//! show health data).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The stylesheet every page links to (`/portal/style.css`).
pub const STYLESHEET: &str = include_str!("routes/portal/style.css");

/// Which language a page is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Norwegian (bokmål), the default.
    No,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::No => "no",
            Lang::En => "en",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "no" | "nb" | "nn" | "nb-no" | "nn-no" | "no-no" => Some(Lang::No),
            "en" | "en-gb" | "en-us" => Some(Lang::En),
            _ => None,
        }
    }

    /// This language's of two texts.
    pub fn pick<'a>(self, no: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::No => no,
            Lang::En => en,
        }
    }

    /// Of a bilingual text `norsk / English` (as the summary's titles are), this language's
    /// half.
    pub fn half(self, both: &str) -> &str {
        match both.split_once(" / ") {
            Some((no, en)) => match self {
                Lang::No => no.trim(),
                Lang::En => en.trim(),
            },
            None => both,
        }
    }
}

/// A whole HTML page around `body`, in `lang`.
pub fn document(status: StatusCode, lang: Lang, title: &str, body: &str) -> Response {
    let html = format!(
        r#"<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title><link rel="stylesheet" href="/portal/style.css"></head><body>{body}</body></html>"#,
        lang = lang.code(),
        title = escape(title),
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'none'; frame-ancestors 'none'; form-action 'self'",
            ),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        html,
    )
        .into_response()
}

/// A bilingual page (the sign-in page an app sends a person to, whose language it does not
/// know).
pub fn page(status: StatusCode, body: &str) -> Response {
    document(status, Lang::No, "Helse", &format!("<main>{body}</main>"))
}

/// Text safe inside HTML elements and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn bilingual_texts_split_by_language() {
        assert_eq!(Lang::No.half("Allergier / Allergies"), "Allergier");
        assert_eq!(Lang::En.half("Allergier / Allergies"), "Allergies");
        assert_eq!(Lang::En.half("Helse"), "Helse");
        assert_eq!(Lang::parse("nb-NO"), Some(Lang::No));
        assert_eq!(Lang::parse("de"), None);
    }
}
