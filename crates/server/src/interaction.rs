//! Reads a request line (method, path below the FHIR base) as a FHIR interaction.

use axum::http::Method;
use helse_fhir_r4::{ResourceId, ResourceType};

use crate::error::FhirError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interaction {
    Capabilities,
    Read(ResourceType, ResourceId),
    Vread(ResourceType, ResourceId, u64),
    Update(ResourceType, ResourceId),
    Patch(ResourceType, ResourceId),
    Delete(ResourceType, ResourceId),
    Create(ResourceType),
    SearchType(ResourceType),
    ConditionalUpdate(ResourceType),
    ConditionalPatch(ResourceType),
    ConditionalDelete(ResourceType),
    HistoryInstance(ResourceType, ResourceId),
    HistoryType(ResourceType),
    HistorySystem,
    Validate(ResourceType, Option<ResourceId>),
    /// `GET /Patient/123/Observation?…`: search within a compartment.
    CompartmentSearch {
        compartment: ResourceType,
        id: ResourceId,
        target: ResourceType,
    },
    /// `GET /Patient/123/$everything`.
    Everything(ResourceType, ResourceId),
    /// `GET /Patient/123/$access-log`: who accessed the patient's record.
    AccessLog(ResourceId),
    /// `GET /Patient/123/$summary`: the patient summary document (IPS).
    Summary(ResourceId),
    /// `POST /` with a `batch` or `transaction` Bundle.
    Bundle,
    /// Bulk Data kick-off: `$export`, `Patient/$export`, `Group/{id}/$export`.
    Export(crate::routes::export::Level),
    ExportStatus(String),
    ExportCancel(String),
    ExportFile(String, u32),
}

impl Interaction {
    /// A label without ids, for metrics and logs.
    pub fn kind(&self) -> InteractionKind {
        use Interaction::*;
        match self {
            Capabilities => InteractionKind::Capabilities,
            Read(..) => InteractionKind::Read,
            Vread(..) => InteractionKind::Vread,
            Update(..) | ConditionalUpdate(_) => InteractionKind::Update,
            Patch(..) | ConditionalPatch(_) => InteractionKind::Patch,
            Delete(..) | ConditionalDelete(_) => InteractionKind::Delete,
            Create(_) => InteractionKind::Create,
            SearchType(_) => InteractionKind::SearchType,
            HistoryInstance(..) => InteractionKind::HistoryInstance,
            HistoryType(_) => InteractionKind::HistoryType,
            HistorySystem => InteractionKind::HistorySystem,
            Validate(..) => InteractionKind::Validate,
            CompartmentSearch { .. } => InteractionKind::SearchType,
            Everything(..) => InteractionKind::Everything,
            AccessLog(_) => InteractionKind::SearchType,
            Summary(_) => InteractionKind::Summary,
            Bundle => InteractionKind::Batch,
            Export(_) | ExportStatus(_) | ExportCancel(_) | ExportFile(..) => InteractionKind::Export,
        }
    }
}

/// Interaction kinds; `code()` is the CapabilityStatement's interaction code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InteractionKind {
    Capabilities,
    Read,
    Vread,
    Update,
    Patch,
    Delete,
    Create,
    SearchType,
    HistoryInstance,
    HistoryType,
    HistorySystem,
    Validate,
    Everything,
    Summary,
    Batch,
    Export,
    Other,
}

impl InteractionKind {
    pub const ALL: [InteractionKind; 17] = [
        InteractionKind::Capabilities,
        InteractionKind::Read,
        InteractionKind::Vread,
        InteractionKind::Update,
        InteractionKind::Patch,
        InteractionKind::Delete,
        InteractionKind::Create,
        InteractionKind::SearchType,
        InteractionKind::HistoryInstance,
        InteractionKind::HistoryType,
        InteractionKind::HistorySystem,
        InteractionKind::Validate,
        InteractionKind::Everything,
        InteractionKind::Summary,
        InteractionKind::Batch,
        InteractionKind::Export,
        InteractionKind::Other,
    ];
    /// Type-level interactions this server implements, as CapabilityStatement codes.
    pub const RESOURCE_LEVEL: [InteractionKind; 8] = [
        InteractionKind::Read,
        InteractionKind::Vread,
        InteractionKind::Update,
        InteractionKind::Patch,
        InteractionKind::Delete,
        InteractionKind::HistoryInstance,
        InteractionKind::HistoryType,
        InteractionKind::Create,
    ];

    pub fn code(self) -> &'static str {
        match self {
            InteractionKind::Capabilities => "capabilities",
            InteractionKind::Read => "read",
            InteractionKind::Vread => "vread",
            InteractionKind::Update => "update",
            InteractionKind::Patch => "patch",
            InteractionKind::Delete => "delete",
            InteractionKind::Create => "create",
            InteractionKind::SearchType => "search-type",
            InteractionKind::HistoryInstance => "history-instance",
            InteractionKind::HistoryType => "history-type",
            InteractionKind::HistorySystem => "history-system",
            InteractionKind::Validate => "validate",
            InteractionKind::Everything => "everything",
            InteractionKind::Summary => "summary",
            InteractionKind::Batch => "batch",
            InteractionKind::Export => "export",
            InteractionKind::Other => "other",
        }
    }
}

fn resource_type(s: &str) -> Result<ResourceType, FhirError> {
    ResourceType::parse(s).map_err(|_| FhirError::UnknownType(s.to_owned()))
}

fn resource_id(s: &str) -> Result<ResourceId, FhirError> {
    ResourceId::parse(s).map_err(|e| FhirError::BadRequest(e.to_string()))
}

/// `path` is what follows the base (`Patient/1/_history/2`); `has_query` tells whether the URL
/// carries search criteria (for the conditional interactions).
pub fn parse(method: &Method, path: &str, has_query: bool) -> Result<Interaction, FhirError> {
    use Interaction::*;
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let not_allowed = || Err(FhirError::MethodNotAllowed(method.to_string()));
    let m = method.as_str();
    match segments.as_slice() {
        [] => {
            if m == "POST" {
                Ok(Bundle)
            } else {
                not_allowed()
            }
        }
        ["metadata"] => {
            if m == "GET" {
                Ok(Capabilities)
            } else {
                not_allowed()
            }
        }
        ["$export"] => {
            if m == "GET" {
                Ok(Export(crate::routes::export::Level::System))
            } else {
                not_allowed()
            }
        }
        ["$export-status", job] => match m {
            "GET" => Ok(ExportStatus(job.to_string())),
            "DELETE" => Ok(ExportCancel(job.to_string())),
            _ => not_allowed(),
        },
        ["$export-file", job, n] => {
            let n = n.parse().map_err(|_| FhirError::NotFound(format!("export file {job}/{n}")))?;
            if m == "GET" { Ok(ExportFile(job.to_string(), n)) } else { not_allowed() }
        }
        ["Patient", "$export"] => {
            if m == "GET" {
                Ok(Export(crate::routes::export::Level::Patient))
            } else {
                not_allowed()
            }
        }
        ["Group", id, "$export"] => {
            let id = resource_id(id)?;
            if m == "GET" {
                Ok(Export(crate::routes::export::Level::Group(id.to_string())))
            } else {
                not_allowed()
            }
        }
        ["_history"] => {
            if m == "GET" {
                Ok(HistorySystem)
            } else {
                not_allowed()
            }
        }
        [ty] => {
            let ty = resource_type(ty)?;
            match m {
                "GET" => Ok(SearchType(ty)),
                "POST" => Ok(Create(ty)),
                "PUT" if has_query => Ok(ConditionalUpdate(ty)),
                "PATCH" if has_query => Ok(ConditionalPatch(ty)),
                "DELETE" if has_query => Ok(ConditionalDelete(ty)),
                _ => not_allowed(),
            }
        }
        [ty, "_search"] => {
            let ty = resource_type(ty)?;
            if m == "POST" { Ok(SearchType(ty)) } else { not_allowed() }
        }
        [ty, "_history"] => {
            let ty = resource_type(ty)?;
            if m == "GET" { Ok(HistoryType(ty)) } else { not_allowed() }
        }
        [ty, "$validate"] => {
            let ty = resource_type(ty)?;
            if m == "POST" { Ok(Validate(ty, None)) } else { not_allowed() }
        }
        [ty, id] => {
            let (ty, id) = (resource_type(ty)?, resource_id(id)?);
            match m {
                "GET" | "HEAD" => Ok(Read(ty, id)),
                "PUT" => Ok(Update(ty, id)),
                "PATCH" => Ok(Patch(ty, id)),
                "DELETE" => Ok(Delete(ty, id)),
                _ => not_allowed(),
            }
        }
        [ty, id, "_history"] => {
            let (ty, id) = (resource_type(ty)?, resource_id(id)?);
            if m == "GET" { Ok(HistoryInstance(ty, id)) } else { not_allowed() }
        }
        [ty, id, "$validate"] => {
            let (ty, id) = (resource_type(ty)?, resource_id(id)?);
            if m == "POST" { Ok(Validate(ty, Some(id))) } else { not_allowed() }
        }
        [ty, id, "$everything"] => {
            let (ty, id) = (resource_type(ty)?, resource_id(id)?);
            match (m, ty.as_str()) {
                ("GET", "Patient") => Ok(Everything(ty, id)),
                ("GET", _) => {
                    Err(FhirError::NotSupported(format!("$everything is defined for Patient, not {ty}")))
                }
                _ => not_allowed(),
            }
        }
        [ty, id, "$summary"] => {
            let (ty, id) = (resource_type(ty)?, resource_id(id)?);
            match (m, ty.as_str()) {
                ("GET", "Patient") => Ok(Summary(id)),
                ("GET", _) => {
                    Err(FhirError::NotSupported(format!("$summary is defined for Patient, not {ty}")))
                }
                _ => not_allowed(),
            }
        }
        [ty, id, "$access-log"] => {
            let (ty, id) = (resource_type(ty)?, resource_id(id)?);
            match (m, ty.as_str()) {
                ("GET", "Patient") => Ok(AccessLog(id)),
                ("GET", _) => {
                    Err(FhirError::NotSupported(format!("$access-log is defined for Patient, not {ty}")))
                }
                _ => not_allowed(),
            }
        }
        [compartment, id, target] if helse_search::search_parameters().is_compartment(compartment) => {
            let (compartment, id) = (resource_type(compartment)?, resource_id(id)?);
            let target = resource_type(target)?;
            if m == "GET" { Ok(CompartmentSearch { compartment, id, target }) } else { not_allowed() }
        }
        [ty, id, "_history", vid] => {
            let (ty, id) = (resource_type(ty)?, resource_id(id)?);
            let vid =
                vid.parse().map_err(|_| FhirError::BadRequest(format!("'{vid}' is not a version id")))?;
            if m == "GET" || m == "HEAD" { Ok(Vread(ty, id, vid)) } else { not_allowed() }
        }
        _ => Err(FhirError::NotFound(format!("the path /{path}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: &str, path: &str, expected: &str) {
        let got = match parse(&method.parse().unwrap(), path, false) {
            Ok(i) => format!("{i:?}"),
            Err(e) => format!("{:?}", e.status_and_code().0.as_u16()),
        };
        let got = got.replace("ResourceType(", "").replace("ResourceId(", "").replace(')', "");
        assert_eq!(got, expected, "{method} {path}");
    }

    #[test]
    fn paths_map_to_interactions() {
        check("GET", "metadata", "Capabilities");
        check("GET", "Patient/1", "Read(\"Patient\", \"1\"");
        check("GET", "Patient/1/_history/3", "Vread(\"Patient\", \"1\", 3");
        check("PUT", "Patient/1", "Update(\"Patient\", \"1\"");
        check("POST", "Patient", "Create(\"Patient\"");
        check("GET", "Patient/_history", "HistoryType(\"Patient\"");
        check("GET", "_history", "HistorySystem");
        check("POST", "Patient/$validate", "Validate(\"Patient\", None");
        check("POST", "Patient/_search", "SearchType(\"Patient\"");
        check("GET", "Patient/1/$everything", "Everything(\"Patient\", \"1\"");
        check(
            "GET",
            "Patient/1/Observation",
            "CompartmentSearch { compartment: \"Patient\", id: \"1\", target: \"Observation\" }",
        );
    }

    #[test]
    fn bad_paths_get_the_right_status() {
        check("GET", "Nonsense/1", "404");
        check("GET", "Patient/bad_id", "400");
        check("POST", "Patient/1", "405");
        check("DELETE", "metadata", "405");
        check("PUT", "Patient", "405");
        check("GET", "Patient/1/_history/x", "400");
        check("GET", "Patient/1/2/3/4/5", "404");
        check("GET", "Observation/1/$everything", "400");
        check("GET", "Patient/1/$access-log", "AccessLog(\"1\"");
        check("GET", "Patient/1/$summary", "Summary(\"1\"");
        check("GET", "Observation/1/$summary", "400");
        check("POST", "Patient/1/$access-log", "405");
        check("GET", "Patient/1/Nonsense", "404");
    }
}
