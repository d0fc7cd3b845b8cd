//! Per-field rules: the field exists, its arguments are known and complete,
//! leaves have no selections and objects have some, and sponsorship details
//! need `read:user`.

use graphql_parser::query::Field;
use serde_json::json;

use super::exec::locations;
use super::schema::{self, Kind};
use super::validate::{error, Validator};
use crate::state::has_scope;

/// Sponsorship fields that need `read:user` (or `user`).
const DETAIL_FIELDS: &[&str] = &[
    "createdAt",
    "isOneTimePayment",
    "privacyLevel",
    "tier",
    "tierSelectedAt",
];

impl<'a> Validator<'a, '_> {
    pub(super) fn field(
        &mut self,
        ty: &'static str,
        field: &'a Field<'a, &'a str>,
        path: &mut Vec<String>,
    ) {
        let key = field.alias.unwrap_or(field.name);
        path.push(key.to_string());
        for (_, value) in &field.arguments {
            self.variables_in(value, field.position, path);
        }
        self.directives(&field.directives, path);
        if field.name == "__typename" {
            path.pop();
            return;
        }
        let def = match schema::field(ty, field.name) {
            Some(def) => def,
            None if schema::kind(ty) == Some(Kind::Union) => {
                let message =
                    format!("Selections can't be made directly on unions (see selections on {ty})");
                let extra = json!({"nodeName": ty});
                self.errors.push(error(
                    path,
                    "selectionMismatch",
                    extra,
                    field.position,
                    message,
                ));
                path.pop();
                return;
            }
            None => {
                let message = format!("Field '{}' doesn't exist on type '{ty}'", field.name);
                let extra = json!({"typeName": ty, "fieldName": field.name});
                self.errors.push(error(
                    path,
                    "undefinedField",
                    extra,
                    field.position,
                    message,
                ));
                path.pop();
                return;
            }
        };
        for (name, _) in &field.arguments {
            if !def.args.iter().any(|a| a.name == *name) {
                let message = format!("Field '{}' doesn't accept argument '{name}'", field.name);
                let extra = json!({"name": field.name, "typeName": "Field", "argumentName": name});
                self.errors.push(error(
                    path,
                    "argumentNotAccepted",
                    extra,
                    field.position,
                    message,
                ));
            }
        }
        let missing: Vec<&str> = def
            .args
            .iter()
            .filter(|a| a.required && !field.arguments.iter().any(|(n, _)| *n == a.name))
            .map(|a| a.name)
            .collect();
        if !missing.is_empty() {
            let list = missing.join(", ");
            let message = format!(
                "Field '{}' is missing required arguments: {list}",
                field.name
            );
            let extra = json!({"className": "Field", "name": field.name, "arguments": list});
            self.errors.push(error(
                path,
                "missingRequiredArguments",
                extra,
                field.position,
                message,
            ));
        }
        if ty == "Sponsorship"
            && DETAIL_FIELDS.contains(&field.name)
            && !has_scope(self.scopes, "read:user")
        {
            let granted = self
                .scopes
                .iter()
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(", ");
            self.scope_errors.push(json!({
                "type": "INSUFFICIENT_SCOPES",
                "locations": locations(field.position),
                "message": format!(
                    "Your token has not been granted the required scopes to execute this query. The '{}' field requires one of the following scopes: ['read:user'], but your token has only been granted the: [{granted}] scopes. Please modify your token's scopes at: https://github.com/settings/tokens.",
                    field.name
                ),
            }));
        }
        let leaf = schema::kind(def.ty).is_some_and(Kind::is_leaf);
        let has_selections = !field.selection_set.items.is_empty();
        if leaf && has_selections {
            let message = format!(
                "Selections can't be made on scalars (field '{}' returns {} but has selections [...])",
                field.name, def.ty
            );
            let extra = json!({"nodeName": format!("field '{}'", field.name), "typeName": def.ty});
            self.errors.push(error(
                path,
                "selectionMismatch",
                extra,
                field.position,
                message,
            ));
        } else if !leaf && !has_selections {
            let message = format!(
                "Field must have selections (field '{}' returns {} but has no selections. Did you mean '{} {{ ... }}'?)",
                field.name, def.ty, field.name
            );
            let extra = json!({"nodeName": format!("field '{}'", field.name), "typeName": def.ty});
            self.errors.push(error(
                path,
                "selectionMismatch",
                extra,
                field.position,
                message,
            ));
        } else if !leaf {
            self.selection_set(def.ty, &field.selection_set, path);
        }
        path.pop();
    }
}
