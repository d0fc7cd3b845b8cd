//! Executes a validated operation: collects fields (aliases, fragments,
//! `@skip`/`@include`), coerces arguments, and builds an ordered result.

use std::collections::HashMap;

use graphql_parser::query::{Directive, Field, FragmentDefinition, Selection, SelectionSet, Value};
use graphql_parser::Pos;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{json, Value as Json};

use super::resolve::{Obj, Resolved, World};
use super::schema::{self, applies};

pub(crate) type Fragments<'a> = HashMap<&'a str, &'a FragmentDefinition<'a, &'a str>>;

/// A result value that keeps the query's field order when serialised.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Out {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<Out>),
    Obj(Vec<(String, Out)>),
}

impl Serialize for Out {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Out::Null => s.serialize_unit(),
            Out::Bool(b) => s.serialize_bool(*b),
            Out::Int(i) => s.serialize_i64(*i),
            Out::Str(v) => s.serialize_str(v),
            Out::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Out::Obj(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// `[{"line":..,"column":..}]`
pub(crate) fn locations(pos: Pos) -> Json {
    json!([{"line": pos.line, "column": pos.column}])
}

/// A GraphQL input value as JSON, variables looked up in `vars`.
pub(crate) fn to_json<'a>(v: &Value<'a, &'a str>, vars: &serde_json::Map<String, Json>) -> Json {
    match v {
        Value::Variable(name) => vars.get(*name).cloned().unwrap_or(Json::Null),
        Value::Int(n) => n.as_i64().map(Json::from).unwrap_or(Json::Null),
        Value::Float(x) => json!(x),
        Value::String(s) => Json::String(s.clone()),
        Value::Boolean(b) => Json::Bool(*b),
        Value::Null => Json::Null,
        Value::Enum(e) => Json::String(e.to_string()),
        Value::List(items) => Json::Array(items.iter().map(|i| to_json(i, vars)).collect()),
        Value::Object(map) => Json::Object(
            map.iter()
                .map(|(k, v)| (k.to_string(), to_json(v, vars)))
                .collect(),
        ),
    }
}

/// Coerced field arguments.
pub(crate) struct Args(pub HashMap<String, Json>);

impl Args {
    pub fn int(&self, name: &str) -> Option<i64> {
        self.0.get(name).and_then(Json::as_i64)
    }
    pub fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Json::as_str)
    }
    pub fn bool_or(&self, name: &str, default: bool) -> bool {
        self.0.get(name).and_then(Json::as_bool).unwrap_or(default)
    }
    pub fn strings(&self, name: &str) -> Option<Vec<String>> {
        let items = self.0.get(name)?.as_array()?;
        Some(
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        )
    }
    pub fn get(&self, name: &str) -> Option<&Json> {
        self.0.get(name)
    }
}

/// Execution context of one request.
pub(crate) struct Exec<'a> {
    pub fragments: &'a Fragments<'a>,
    pub vars: &'a serde_json::Map<String, Json>,
    pub world: World<'a>,
    pub errors: Vec<Json>,
    /// A failure that makes the whole answer `data: null`.
    pub fatal: bool,
}

type Grouped<'a> = Vec<(&'a str, Vec<&'a Field<'a, &'a str>>)>;

impl<'a> Exec<'a> {
    /// A literal or variable argument value as JSON.
    pub fn value(&self, v: &Value<'a, &'a str>) -> Json {
        to_json(v, self.vars)
    }

    fn included(&self, directives: &[Directive<'a, &'a str>]) -> bool {
        directives.iter().all(|d| {
            let cond = d
                .arguments
                .iter()
                .find(|(n, _)| *n == "if")
                .map(|(_, v)| self.value(v).as_bool().unwrap_or(false));
            match (d.name, cond) {
                ("skip", Some(c)) => !c,
                ("include", Some(c)) => c,
                _ => true,
            }
        })
    }

    fn collect(&self, ty: &str, set: &'a SelectionSet<'a, &'a str>, out: &mut Grouped<'a>) {
        for item in &set.items {
            match item {
                Selection::Field(f) if self.included(&f.directives) => {
                    let key = f.alias.unwrap_or(f.name);
                    match out.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, group)) => group.push(f),
                        None => out.push((key, vec![f])),
                    }
                }
                Selection::InlineFragment(frag) if self.included(&frag.directives) => {
                    let cond = frag.type_condition.as_ref().map(|c| match c {
                        graphql_parser::query::TypeCondition::On(t) => *t,
                    });
                    if cond.is_none_or(|c| applies(ty, c)) {
                        self.collect(ty, &frag.selection_set, out);
                    }
                }
                Selection::FragmentSpread(spread) if self.included(&spread.directives) => {
                    if let Some(def) = self.fragments.get(spread.fragment_name) {
                        let graphql_parser::query::TypeCondition::On(cond) = def.type_condition;
                        if applies(ty, cond) {
                            self.collect(ty, &def.selection_set, out);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Coerces the arguments of `field` on concrete type `ty`.
    fn args(&mut self, ty: &str, field: &Field<'a, &'a str>, path: &[Json]) -> Option<Args> {
        let def = schema::field(ty, field.name)?;
        let mut args = HashMap::new();
        for (name, value) in &field.arguments {
            let v = self.value(value);
            let Some(spec) = def.args.iter().find(|a| a.name == *name) else {
                continue;
            };
            let ok = match spec.ty.trim_end_matches('!') {
                _ if v.is_null() => !spec.required,
                "Int" => v.is_i64(),
                "String" => v.is_string(),
                "Boolean" => v.is_boolean(),
                "[String!]" => {
                    v.as_array().is_some_and(|a| a.iter().all(Json::is_string)) || v.is_string()
                }
                _ => v.is_object(),
            };
            if !ok {
                self.fatal(json!({
                    "path": path,
                    "extensions": {"code": "argumentLiteralsIncompatible", "typeName": "Field", "argumentName": name},
                    "locations": locations(field.position),
                    "message": format!(
                        "Argument '{name}' on Field '{}' has an invalid value ({v}). Expected type '{}'.",
                        field.name, spec.ty
                    ),
                }));
                return None;
            }
            let v = match (spec.ty, v) {
                ("[String!]", Json::String(s)) => json!([s]),
                (_, v) => v,
            };
            if !v.is_null() {
                args.insert(name.to_string(), v);
            }
        }
        Some(Args(args))
    }

    /// Records an error that nulls the whole `data`.
    pub fn fatal(&mut self, error: Json) {
        self.fatal = true;
        self.errors.push(error);
    }

    /// Resolves `sets` (the merged selections of one response key) on `obj`.
    pub fn select(
        &mut self,
        obj: &Obj,
        sets: &[&'a SelectionSet<'a, &'a str>],
        path: &mut Vec<Json>,
    ) -> Out {
        let ty = obj.type_name(&self.world);
        let mut grouped: Grouped<'a> = Vec::new();
        for set in sets {
            self.collect(ty, set, &mut grouped);
        }
        let mut fields = Vec::with_capacity(grouped.len());
        for (key, group) in grouped {
            let field = group[0];
            path.push(Json::String(key.to_string()));
            let value = if field.name == "__typename" {
                Out::Str(ty.to_string())
            } else if let Some(args) = self.args(ty, field, path) {
                let sub: Vec<_> = group.iter().map(|f| &f.selection_set).collect();
                match obj.resolve(self, field, &args, path) {
                    Resolved::Null => Out::Null,
                    Resolved::Leaf(v) => v,
                    Resolved::Obj(o) => self.select(&o, &sub, path),
                    Resolved::List(items) => {
                        let mut list = Vec::with_capacity(items.len());
                        for (i, o) in items.iter().enumerate() {
                            path.push(Json::from(i));
                            list.push(self.select(o, &sub, path));
                            path.pop();
                        }
                        Out::List(list)
                    }
                }
            } else {
                Out::Null
            };
            path.pop();
            fields.push((key.to_string(), value));
        }
        Out::Obj(fields)
    }
}
