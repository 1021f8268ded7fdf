//! The CapabilityStatement, generated from the definitions and the interactions the router
//! implements, so it cannot drift from what the server does.

use helse_fhir_r4::definitions;
use serde_json::{Value, json};

use crate::interaction::InteractionKind;
use helse_search::{ParamType, search_parameters};

/// Bulk Data `$export` at system (`""`), Patient or Group level.
fn export(level: &str) -> Value {
    let definition = match level {
        "" => "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
        "Patient" => "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
        _ => "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
    };
    json!({"name": "export", "definition": definition})
}

/// `secured`: whether access tokens are required (SMART on FHIR), which the statement says.
pub fn capability_statement(base_url: Option<&str>, secured: bool) -> Value {
    let interactions: Vec<Value> =
        InteractionKind::RESOURCE_LEVEL.iter().map(|k| json!({"code": k.code()})).collect();
    let everything = json!({"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"});
    let resources: Vec<Value> = definitions()
        .resource_types()
        .iter()
        .map(|ty| {
            // Every official parameter the engine indexes (all but the one `special`).
            let mut search_params: Vec<(String, ParamType)> = search_parameters()
                .for_type(ty)
                .filter(|p| p.ty != ParamType::Special)
                .map(|p| (p.code.clone(), p.ty))
                .collect();
            search_params.sort_by(|a, b| a.0.cmp(&b.0));
            let search_params: Vec<Value> = search_params
                .iter()
                .map(|(code, t)| json!({"name": code, "type": format!("{t:?}").to_lowercase()}))
                .collect();
            let mut operations = vec![json!({"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"})];
            if *ty == "Patient" {
                operations.push(everything.clone());
                operations.push(json!({"name": "summary", "definition": "http://hl7.org/fhir/uv/ips/OperationDefinition/summary"}));
                // Ours: who accessed the patient's record (the access log).
                operations.push(json!({"name": "access-log", "definition": "https://fhir.helse.example/OperationDefinition/Patient-access-log"}));
            }
            if matches!(*ty, "Patient" | "Group") {
                operations.push(export(ty));
            }
            json!({
                "type": ty,
                "profile": format!("http://hl7.org/fhir/StructureDefinition/{ty}"),
                "interaction": interactions,
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalRead": "full-support",
                "conditionalUpdate": true,
                "conditionalDelete": "single",
                "searchParam": search_params,
                "operation": operations,
            })
        })
        .collect();
    let compartments: Vec<String> = ["patient", "encounter", "relatedPerson", "practitioner", "device"]
        .iter()
        .map(|c| format!("http://hl7.org/fhir/CompartmentDefinition/{c}"))
        .collect();
    let mut rest = json!({
        "mode": "server",
        "resource": resources,
        // `POST /` takes both kinds of Bundle (routes/bundle.rs).
        "interaction": [
            {"code": InteractionKind::HistorySystem.code()},
            {"code": InteractionKind::Batch.code()},
            {"code": "transaction"},
        ],
        "compartment": compartments,
        "operation": [export("")],
    });
    if secured {
        let mut security = json!({
            "service": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                "code": "SMART-on-FHIR",
            }]}],
            "description": "SMART on FHIR: OAuth 2.0 bearer tokens with SMART v2 scopes; see .well-known/smart-configuration",
        });
        if let Some(url) = base_url {
            let token = crate::routes::oauth::token_url(url);
            security["extension"] = json!([{
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [
                    {"url": "token", "valueUri": token},
                    {"url": "authorize", "valueUri": format!("{}/auth/authorize", crate::access::origin(url))},
                ],
            }]);
        }
        rest["security"] = security;
    }
    let mut cs = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": helse_fhir_r4::Instant::now().to_string(),
        "kind": "instance",
        "software": {"name": "Helse", "version": env!("CARGO_PKG_VERSION")},
        "fhirVersion": definitions().fhir_version,
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [rest],
    });
    if let Some(url) = base_url {
        cs["implementation"] = json!({"description": "Helse", "url": url});
    }
    cs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_resource_type_and_is_valid() {
        let cs = capability_statement(Some("http://localhost/fhir"), true);
        assert_eq!(cs["rest"][0]["security"]["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
        assert_eq!(
            cs["rest"][0]["security"]["extension"][0]["extension"][0]["valueUri"],
            "http://localhost/auth/token"
        );
        assert_eq!(cs["rest"][0]["resource"].as_array().unwrap().len(), definitions().resource_types().len());
        assert_eq!(cs["fhirVersion"], "4.0.1");
        let issues = helse_fhir_r4::validate_resource(&cs, None);
        assert!(issues.is_empty(), "{issues:?}");
    }
}
