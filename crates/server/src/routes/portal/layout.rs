//! The frame around every portal page: who is signed in, what they can go to, the language
//! switch and signing out.

use axum::http::StatusCode;
use axum::response::Response;
use helse_auth::Role;

use super::Visit;
use crate::html::{Lang, document, escape};

pub fn page(visit: &Visit, status: StatusCode, title: &str, body: &str) -> Response {
    let lang = visit.lang;
    let nav = match &visit.session {
        None => String::new(),
        Some(session) => {
            let links: &[(&str, &str, &str)] = match session.role {
                Role::Patient => &[
                    ("/portal/summary", "Mitt sammendrag", "My summary"),
                    ("/portal/donor", "Organdonasjon", "Organ donation"),
                    ("/portal/access-log", "Hvem har sett journalen min", "Who has seen my record"),
                ],
                Role::Practitioner => &[("/portal/patients", "Pasienter", "Patients")],
                Role::Admin => &[],
            };
            let items: String = links
                .iter()
                .map(|(href, no, en)| {
                    let current = if visit.path == *href { r#" aria-current="page""# } else { "" };
                    format!(r#"<li><a href="{href}"{current}>{}</a></li>"#, lang.pick(no, en))
                })
                .collect();
            format!(
                r#"<nav aria-label="{menu}"><ul>{items}</ul></nav><form method="post" action="/portal/logout" class="signout"><input type="hidden" name="csrf" value="{csrf}"><span class="who">{who}</span> <button type="submit">{out}</button></form>"#,
                menu = lang.pick("Meny", "Menu"),
                csrf = escape(&session.csrf),
                who = escape(&session.username),
                out = lang.pick("Logg ut", "Sign out"),
            )
        }
    };
    let other = match lang {
        Lang::No => (Lang::En, "English"),
        Lang::En => (Lang::No, "Norsk"),
    };
    let switch = format!(
        r#"<a class="lang" href="{path}?lang={code}" hreflang="{code}" lang="{code}">{name}</a>"#,
        path = escape(&visit.path),
        code = other.0.code(),
        name = other.1,
    );
    let body = format!(
        r#"<header><a class="brand" href="/portal">Helse</a>{nav}{switch}</header><main><h1>{title}</h1>{body}</main>"#,
        title = escape(title),
    );
    document(status, lang, &format!("{title} — Helse"), &body)
}
