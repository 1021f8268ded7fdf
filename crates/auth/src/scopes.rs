//! SMART scopes: `patient/Observation.rs`, `user/*.cruds`, `system/*.rs` (v2), and the v1
//! forms `read`, `write` and `*`, which mean `rs`, `cud` and `cruds`. A scope string grants
//! the union of its resource scopes; anything else in it (`openid`, `launch`, a v2 scope
//! narrowed by a query) grants no resource access here.

use std::fmt;

/// Whose data a scope is about: one patient's (the launch context), what the signed-in
/// user may see, or anything (a backend system).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScopeContext {
    Patient,
    User,
    System,
}

impl ScopeContext {
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeContext::Patient => "patient",
            ScopeContext::User => "user",
            ScopeContext::System => "system",
        }
    }
}

/// One of the five SMART v2 permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Create,
    Read,
    Update,
    Delete,
    Search,
}

impl Permission {
    const ALL: [Permission; 5] =
        [Permission::Create, Permission::Read, Permission::Update, Permission::Delete, Permission::Search];

    fn bit(self) -> u8 {
        1 << self as u8
    }

    fn letter(self) -> char {
        b"cruds"[self as usize] as char
    }
}

/// A set of permissions, written in the v2 order `c r u d s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions(u8);

impl Permissions {
    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    fn union(self, other: Permissions) -> Permissions {
        Permissions(self.0 | other.0)
    }
    fn intersection(self, other: Permissions) -> Permissions {
        Permissions(self.0 & other.0)
    }

    /// `rs`, `cud`, …: letters in order, each at most once; or a v1 alias.
    fn parse(text: &str) -> Option<Permissions> {
        match text {
            "read" => return Some(Permissions::of(&[Permission::Read, Permission::Search])),
            "write" => {
                return Some(Permissions::of(&[Permission::Create, Permission::Update, Permission::Delete]));
            }
            "*" => return Some(Permissions(0b11111)),
            _ => {}
        }
        let mut set = 0u8;
        let mut last = None;
        for ch in text.chars() {
            let p = Permission::ALL.into_iter().find(|p| p.letter() == ch)?;
            // The letters must come in the order c, r, u, d, s.
            if last.is_some_and(|l: Permission| l as u8 >= p as u8) {
                return None;
            }
            last = Some(p);
            set |= p.bit();
        }
        (set != 0).then_some(Permissions(set))
    }

    fn of(ps: &[Permission]) -> Permissions {
        Permissions(ps.iter().fold(0, |acc, p| acc | p.bit()))
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in Permission::ALL {
            if self.contains(p) {
                write!(f, "{}", p.letter())?;
            }
        }
        Ok(())
    }
}

/// One resource scope: a context, a resource type (`None` for `*`) and permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub context: ScopeContext,
    pub resource_type: Option<String>,
    pub permissions: Permissions,
}

impl Scope {
    /// A resource scope, or `None` for anything else (which grants no resource access).
    pub fn parse(text: &str) -> Option<Scope> {
        let (context, rest) = text.split_once('/')?;
        let context = match context {
            "patient" => ScopeContext::Patient,
            "user" => ScopeContext::User,
            "system" => ScopeContext::System,
            _ => return None,
        };
        // A v2 scope narrowed by search parameters (`?category=…`) is not honoured yet, and
        // honouring it without the narrowing would grant more than was asked for.
        if rest.contains('?') {
            return None;
        }
        let (ty, perms) = rest.rsplit_once('.')?;
        let resource_type = match ty {
            "*" => None,
            t if !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric()) => Some(t.to_owned()),
            _ => return None,
        };
        Some(Scope { context, resource_type, permissions: Permissions::parse(perms)? })
    }

    fn covers_type(&self, resource_type: &str) -> bool {
        self.resource_type.as_deref().is_none_or(|t| t == resource_type)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}.{}",
            self.context.as_str(),
            self.resource_type.as_deref().unwrap_or("*"),
            self.permissions
        )
    }
}

/// What a token (or a client registration) grants: the union of its resource scopes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grant {
    pub scopes: Vec<Scope>,
}

impl Grant {
    /// The resource scopes of a space-separated scope string; other scopes are left out.
    pub fn parse(scope: &str) -> Grant {
        Grant { scopes: scope.split_whitespace().filter_map(Scope::parse).collect() }
    }

    /// Whether some scope allows `permission` on `resource_type`.
    pub fn allows(&self, resource_type: &str, permission: Permission) -> bool {
        self.scopes.iter().any(|s| s.covers_type(resource_type) && s.permissions.contains(permission))
    }

    /// Whether some scope allows `permission` on every resource type (`*`).
    pub fn allows_all_types(&self, permission: Permission) -> bool {
        self.scopes.iter().any(|s| s.resource_type.is_none() && s.permissions.contains(permission))
    }

    /// The contexts the grant's scopes are in.
    pub fn contexts(&self) -> Vec<ScopeContext> {
        let mut c: Vec<ScopeContext> = self.scopes.iter().map(|s| s.context).collect();
        c.sort();
        c.dedup();
        c
    }

    /// What of `requested` this grant covers: each requested scope keeps the permissions
    /// some scope of this grant (same context, covering type) also has. What a client asks
    /// for is narrowed to what it was registered for this way.
    pub fn narrow(&self, requested: &Grant) -> Grant {
        let scopes = requested
            .scopes
            .iter()
            .filter_map(|r| {
                let permissions = self
                    .scopes
                    .iter()
                    .filter(|a| {
                        a.context == r.context
                            && (a.resource_type.is_none() || a.resource_type == r.resource_type)
                    })
                    .fold(Permissions::default(), |acc, a| {
                        acc.union(a.permissions.intersection(r.permissions))
                    });
                (!permissions.is_empty()).then(|| Scope { permissions, ..r.clone() })
            })
            .collect();
        Grant { scopes }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let texts: Vec<String> = self.scopes.iter().map(Scope::to_string).collect();
        f.write_str(&texts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_per_the_smart_grammar() {
        let cases = [
            ("patient/Observation.rs", Some("patient/Observation.rs")),
            ("user/*.cruds", Some("user/*.cruds")),
            ("system/*.rs", Some("system/*.rs")),
            // v1 aliases
            ("patient/*.read", Some("patient/*.rs")),
            ("user/Patient.write", Some("user/Patient.cud")),
            ("system/*.*", Some("system/*.cruds")),
            // letters out of order, repeated, unknown, or none
            ("patient/Observation.sr", None),
            ("patient/Observation.rrs", None),
            ("patient/Observation.x", None),
            ("patient/Observation.", None),
            // not resource scopes
            ("openid", None),
            ("launch/patient", None),
            ("fhirUser", None),
            ("admin/*.rs", None),
            ("patient/Obs-ervation.rs", None),
            // narrowed by a query: not honoured, so it grants nothing
            ("patient/Observation.rs?category=laboratory", None),
        ];
        for (text, expected) in cases {
            assert_eq!(Scope::parse(text).map(|s| s.to_string()).as_deref(), expected, "{text}");
        }
    }

    #[test]
    fn grants_are_the_union_of_their_scopes() {
        let g = Grant::parse("openid system/Observation.r system/Patient.s system/Encounter.cruds");
        assert!(g.allows("Observation", Permission::Read));
        assert!(!g.allows("Observation", Permission::Search));
        assert!(g.allows("Patient", Permission::Search));
        assert!(!g.allows("Patient", Permission::Read));
        assert!(g.allows("Encounter", Permission::Delete));
        assert!(!g.allows("Condition", Permission::Read));
        assert!(!g.allows_all_types(Permission::Read));
        assert!(Grant::parse("system/*.rs").allows_all_types(Permission::Search));
        assert!(Grant::parse("").scopes.is_empty());
    }

    #[test]
    fn requests_are_narrowed_to_the_registration() {
        let registered = Grant::parse("system/*.rs system/Observation.cu");
        let asked = Grant::parse("system/Observation.cruds system/Patient.rs system/*.d user/*.rs");
        assert_eq!(registered.narrow(&asked).to_string(), "system/Observation.crus system/Patient.rs");
        // nothing in common: nothing granted
        assert!(registered.narrow(&Grant::parse("patient/*.rs")).scopes.is_empty());
    }
}
