//! Static checks before execution, with GitHub's (graphql-ruby's) messages:
//! unknown fields/arguments/types/fragments, selections on leaves and
//! unions, variables, and the `read:user` scope on sponsorship details.

use std::collections::HashSet;

use graphql_parser::query::{Directive, Selection, SelectionSet, TypeCondition, Value};
use serde_json::{json, Value as Json};

use super::exec::{locations, Fragments};
use super::schema::{self, possible_types};

pub(crate) struct Validator<'a, 'f> {
    pub fragments: &'f Fragments<'a>,
    /// `query` or `query Name`, the first element of error paths.
    pub label: String,
    /// `Name` or `anonymous query`, used in variable messages.
    pub op_name: String,
    pub declared: HashSet<&'a str>,
    pub scopes: &'f [String],
    pub errors: Vec<Json>,
    pub scope_errors: Vec<Json>,
    used_vars: HashSet<&'a str>,
    used_fragments: HashSet<&'a str>,
    stack: Vec<&'a str>,
}

pub(super) fn error(
    path: &[String],
    code: &str,
    extra: Json,
    pos: graphql_parser::Pos,
    message: String,
) -> Json {
    let mut extensions = json!({"code": code});
    if let (Some(ext), Json::Object(more)) = (extensions.as_object_mut(), extra) {
        ext.extend(more);
    }
    json!({"path": path, "extensions": extensions, "locations": locations(pos), "message": message})
}

impl<'a, 'f> Validator<'a, 'f> {
    pub fn new(
        fragments: &'f Fragments<'a>,
        label: String,
        op_name: String,
        declared: HashSet<&'a str>,
        scopes: &'f [String],
    ) -> Self {
        Validator {
            fragments,
            label,
            op_name,
            declared,
            scopes,
            errors: Vec::new(),
            scope_errors: Vec::new(),
            used_vars: HashSet::new(),
            used_fragments: HashSet::new(),
            stack: Vec::new(),
        }
    }

    /// Validates the operation's root selection set, then unused variables
    /// and fragments.
    pub fn run(&mut self, root: &'a SelectionSet<'a, &'a str>, pos: graphql_parser::Pos) {
        let mut path = vec![self.label.clone()];
        self.selection_set("Query", root, &mut path);
        let mut unused: Vec<&&str> = self.declared.difference(&self.used_vars).collect();
        unused.sort();
        for name in unused {
            let message = format!(
                "Variable ${name} is declared by {} but not used",
                self.op_name
            );
            let extra = json!({"variableName": name});
            self.errors
                .push(error(&path, "variableNotUsed", extra, pos, message));
        }
        let mut defined: Vec<_> = self.fragments.iter().collect();
        defined.sort_by_key(|(name, _)| **name);
        for (name, def) in defined {
            if !self.used_fragments.contains(name) {
                let message = format!("Fragment {name} was defined, but not used");
                let extra = json!({"fragmentName": name});
                let path = [format!("fragment {name}")];
                let e = error(&path, "useAndDefineFragment", extra, def.position, message);
                self.errors.push(e);
            }
        }
    }

    pub(super) fn selection_set(
        &mut self,
        ty: &'static str,
        set: &'a SelectionSet<'a, &'a str>,
        path: &mut Vec<String>,
    ) {
        for item in &set.items {
            match item {
                Selection::Field(field) => self.field(ty, field, path),
                Selection::InlineFragment(frag) => {
                    self.directives(&frag.directives, path);
                    let cond = frag.type_condition.as_ref().map(|TypeCondition::On(t)| *t);
                    let label = cond.map_or("...".to_string(), |c| format!("... on {c}"));
                    path.push(label);
                    if let Some(inner) = self.condition(ty, cond.unwrap_or(ty), frag.position, path)
                    {
                        self.selection_set(inner, &frag.selection_set, path);
                    }
                    path.pop();
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.fragment_name;
                    self.directives(&spread.directives, path);
                    self.used_fragments.insert(name);
                    path.push(format!("... {name}"));
                    match self.fragments.get(name).copied() {
                        None => {
                            let message = format!("Fragment {name} was used, but not defined");
                            let extra = json!({"fragmentName": name});
                            let e = error(
                                path,
                                "useAndDefineFragment",
                                extra,
                                spread.position,
                                message,
                            );
                            self.errors.push(e);
                        }
                        Some(_) if self.stack.contains(&name) => {
                            let message = format!("Fragment {name} contains an infinite loop");
                            let extra = json!({"fragmentName": name});
                            let e = error(path, "infiniteLoop", extra, spread.position, message);
                            self.errors.push(e);
                        }
                        Some(def) => {
                            let TypeCondition::On(cond) = def.type_condition;
                            if let Some(inner) = self.condition(ty, cond, spread.position, path) {
                                self.stack.push(name);
                                self.selection_set(inner, &def.selection_set, path);
                                self.stack.pop();
                            }
                        }
                    }
                    path.pop();
                }
            }
        }
    }

    /// Checks a fragment's type condition inside `parent`; returns the type
    /// to validate the fragment's selections against.
    fn condition(
        &mut self,
        parent: &str,
        cond: &str,
        pos: graphql_parser::Pos,
        path: &[String],
    ) -> Option<&'static str> {
        let Some((name, kind)) = schema::lookup(cond) else {
            let message = format!("No such type {cond}, so it can't be a fragment condition");
            self.errors.push(error(
                path,
                "undefinedType",
                json!({"typeName": cond}),
                pos,
                message,
            ));
            return None;
        };
        if kind.is_leaf() {
            let message =
                format!("Invalid fragment on type {cond} (must be Union, Interface or Object)");
            let extra = json!({"typeName": cond});
            self.errors.push(error(
                path,
                "fragmentOnNonCompositeType",
                extra,
                pos,
                message,
            ));
            return None;
        }
        let overlap = possible_types(cond)
            .iter()
            .any(|t| possible_types(parent).contains(t));
        if !overlap {
            let message = format!("Fragment on {cond} can't be spread inside {parent}");
            let extra = json!({"typeName": cond, "parentType": parent});
            self.errors
                .push(error(path, "cannotSpreadFragment", extra, pos, message));
            return None;
        }
        Some(name)
    }

    /// Only `@include(if:)` and `@skip(if:)` exist in queries.
    pub(super) fn directives(&mut self, directives: &'a [Directive<'a, &'a str>], path: &[String]) {
        for d in directives {
            for (_, value) in &d.arguments {
                self.variables_in(value, d.position, path);
            }
            let known = matches!(d.name, "include" | "skip");
            let has_if = d.arguments.iter().any(|(n, _)| *n == "if");
            if !known {
                let message = format!("Directive @{} is not defined", d.name);
                let extra = json!({"directiveName": d.name});
                self.errors.push(error(
                    path,
                    "undefinedDirective",
                    extra,
                    d.position,
                    message,
                ));
            } else if !has_if {
                let message = format!("Directive '{}' is missing required arguments: if", d.name);
                let extra = json!({"className": "Directive", "name": d.name, "arguments": "if"});
                self.errors.push(error(
                    path,
                    "missingRequiredArguments",
                    extra,
                    d.position,
                    message,
                ));
            }
        }
    }

    pub(super) fn variables_in(
        &mut self,
        value: &'a Value<'a, &'a str>,
        pos: graphql_parser::Pos,
        path: &[String],
    ) {
        match value {
            Value::Variable(name) => {
                self.used_vars.insert(name);
                if !self.declared.contains(name) {
                    let message = format!(
                        "Variable ${name} is used by {} but not declared",
                        self.op_name
                    );
                    let extra = json!({"variableName": name});
                    self.errors
                        .push(error(path, "variableNotDefined", extra, pos, message));
                }
            }
            Value::List(items) => items.iter().for_each(|v| self.variables_in(v, pos, path)),
            Value::Object(map) => map.values().for_each(|v| self.variables_in(v, pos, path)),
            _ => {}
        }
    }
}
