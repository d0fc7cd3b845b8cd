//! Variable values: request values or defaults, checked against the
//! declared types (graphql-ruby's messages).

use graphql_parser::query::{Type, VariableDefinition};
use serde_json::{json, Map, Value as Json};

use super::exec::{locations, to_json};

fn type_string<'a>(ty: &Type<'a, &'a str>) -> String {
    match ty {
        Type::NamedType(name) => name.to_string(),
        Type::ListType(inner) => format!("[{}]", type_string(inner)),
        Type::NonNullType(inner) => format!("{}!", type_string(inner)),
    }
}

/// Checks a variable value against its declared type.
fn check<'a>(ty: &Type<'a, &'a str>, v: &Json) -> Result<(), String> {
    match ty {
        Type::NonNullType(_) if v.is_null() => Err("Expected value to not be null".into()),
        Type::NonNullType(inner) => check(inner, v),
        _ if v.is_null() => Ok(()),
        Type::ListType(inner) => match v.as_array() {
            Some(items) => items.iter().try_for_each(|item| check(inner, item)),
            None => check(inner, v),
        },
        Type::NamedType(name) => {
            let ok = match *name {
                "String" | "DateTime" | "URI" | "HTML" => v.is_string(),
                "ID" => v.is_string() || v.is_i64(),
                "Int" => v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
                "Float" => v.is_number(),
                "Boolean" => v.is_boolean(),
                "SponsorshipPrivacy" => matches!(v.as_str(), Some("PUBLIC" | "PRIVATE")),
                _ => v.is_object(),
            };
            if ok {
                Ok(())
            } else {
                Err(format!("Could not coerce value {v} to {name}"))
            }
        }
    }
}

/// Request values (or defaults) for every declared variable, type-checked.
pub(super) fn coerce_variables<'a>(
    defs: &[VariableDefinition<'a, &'a str>],
    provided: &Map<String, Json>,
) -> Result<Map<String, Json>, Vec<Json>> {
    let mut vars = Map::new();
    let mut errors = Vec::new();
    let empty = Map::new();
    for def in defs {
        let value = match (provided.get(def.name), &def.default_value) {
            (Some(v), _) => v.clone(),
            (None, Some(default)) => to_json(default, &empty),
            (None, None) => Json::Null,
        };
        let base = inner_name(&def.var_type);
        let known = matches!(
            base,
            "String"
                | "ID"
                | "Int"
                | "Float"
                | "Boolean"
                | "DateTime"
                | "URI"
                | "HTML"
                | "SponsorshipPrivacy"
                | "SponsorshipOrder"
        );
        if !known {
            errors.push(json!({
                "extensions": {"code": "variableRequiresValidType", "typeName": base, "variableName": def.name},
                "locations": locations(def.position),
                "message": format!("{base} isn't a defined input type (on ${})", def.name),
            }));
            continue;
        }
        if let Err(explanation) = check(&def.var_type, &value) {
            errors.push(json!({
                "extensions": {"value": value, "problems": [{"path": [], "explanation": explanation}]},
                "locations": locations(def.position),
                "message": format!(
                    "Variable ${} of type {} was provided invalid value",
                    def.name,
                    type_string(&def.var_type)
                ),
            }));
            continue;
        }
        vars.insert(def.name.to_string(), value);
    }
    if errors.is_empty() {
        Ok(vars)
    } else {
        Err(errors)
    }
}

fn inner_name<'a>(ty: &Type<'a, &'a str>) -> &'a str {
    match ty {
        Type::NamedType(name) => name,
        Type::ListType(inner) | Type::NonNullType(inner) => inner_name(inner),
    }
}
