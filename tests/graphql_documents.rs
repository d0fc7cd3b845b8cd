//! The GraphQL documents in `graphql/` against GitHub's public schema
//! (`graphql/schema/github.docs.graphql`, vendored) and against our subset
//! (`graphql/github.schema.graphql`, which `graphql_client` compiles
//! against). graphql_client only checks that fields exist in the schema it
//! is given, so a field invented in both a document and the subset would
//! compile and then fail at GitHub; validating against the full schema (and
//! checking the subset is a verbatim subset) closes that gap.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use apollo_compiler::schema::ExtendedType;
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Schema};

const GRAPHQL_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/graphql");
const SUBSET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/graphql/github.schema.graphql");
const FULL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/graphql/schema/github.docs.graphql"
);

fn load_schema(path: &str) -> Valid<Schema> {
    let sdl = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Schema::parse_and_validate(sdl, path)
        .unwrap_or_else(|e| panic!("{path} is not a valid schema:\n{}", e.errors))
}

fn full_schema() -> &'static Valid<Schema> {
    static FULL_SCHEMA: OnceLock<Valid<Schema>> = OnceLock::new();
    FULL_SCHEMA.get_or_init(|| load_schema(FULL))
}

fn subset_schema() -> &'static Valid<Schema> {
    static SUBSET_SCHEMA: OnceLock<Valid<Schema>> = OnceLock::new();
    SUBSET_SCHEMA.get_or_init(|| load_schema(SUBSET))
}

/// Every `*.graphql` in `graphql/` except the schema subset.
fn documents() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(GRAPHQL_DIR)
        .expect("graphql/ exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "graphql"))
        .filter(|p| p != Path::new(SUBSET))
        .collect();
    docs.sort();
    docs
}

fn validate(schema: &Valid<Schema>, source: &str, path: &Path) -> Result<(), String> {
    ExecutableDocument::parse_and_validate(schema, source, path)
        .map(|_| ())
        .map_err(|e| e.errors.to_string())
}

#[test]
fn finds_the_query_documents() {
    let names: Vec<String> = documents()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"viewer_sponsorship.graphql".to_string())
            && names.contains(&"sponsorable_sponsorships.graphql".to_string()),
        "{names:?}"
    );
}

#[test]
fn documents_are_valid_against_githubs_full_schema() {
    for path in documents() {
        let source = std::fs::read_to_string(&path).unwrap();
        if let Err(errors) = validate(full_schema(), &source, &path) {
            panic!("{} against GitHub's schema:\n{errors}", path.display());
        }
    }
}

#[test]
fn documents_are_valid_against_the_subset() {
    for path in documents() {
        let source = std::fs::read_to_string(&path).unwrap();
        if let Err(errors) = validate(subset_schema(), &source, &path) {
            panic!("{} against the subset:\n{errors}", path.display());
        }
    }
}

#[test]
fn wrong_documents_are_rejected() {
    let wrong = [
        // Unknown field.
        "query Q { viewer { login notAField } }",
        // Trap 9: `Sponsorable` has no `login`.
        "query Q($l: String!) { repositoryOwner(login: $l) { ... on Sponsorable { sponsorshipForViewerAsSponsor { sponsorable { login } } } } }",
        // `sponsorshipsAsSponsor` takes no `includePrivate`.
        "query Q { viewer { sponsorshipsAsSponsor(first: 10, includePrivate: true) { totalCount } } }",
        // Wrong argument type.
        "query Q { repositoryOwner(login: 42) { login } }",
        // Undeclared variable.
        "query Q { repositoryOwner(login: $who) { login } }",
    ];
    for (name, schema) in [("full", full_schema()), ("subset", subset_schema())] {
        for doc in wrong {
            assert!(
                validate(schema, doc, Path::new("wrong.graphql")).is_err(),
                "the {name} schema accepted: {doc}"
            );
        }
        // A correct document passes (the rejections above are not a broken validator).
        validate(
            schema,
            "query Q($l: String!) { viewer { login databaseId } repositoryOwner(login: $l) { __typename login } }",
            Path::new("right.graphql"),
        )
        .unwrap_or_else(|e| panic!("the {name} schema refused a valid document:\n{e}"));
    }
}

/// Each definition of the subset is GitHub's: same kind, and each field
/// (type, arguments, defaults, description), enum value, union member and
/// input field identical to the full schema's.
#[test]
fn subset_is_copied_from_the_full_schema() {
    let full = full_schema();
    let subset = subset_schema();
    let mut problems = Vec::new();
    for (name, ty) in subset.types.iter().filter(|(_, t)| !t.is_built_in()) {
        let Some(full_ty) = full.types.get(name) else {
            problems.push(format!("{name}: not in GitHub's schema"));
            continue;
        };
        match (ty, full_ty) {
            (ExtendedType::Scalar(_), ExtendedType::Scalar(_)) => {}
            (ExtendedType::Object(a), ExtendedType::Object(b)) => {
                compare_fields(name, &a.fields, &b.fields, &mut problems);
                for i in &a.implements_interfaces {
                    if !b.implements_interfaces.contains(i) {
                        problems.push(format!("{name}: GitHub's does not implement {i}"));
                    }
                }
            }
            (ExtendedType::Interface(a), ExtendedType::Interface(b)) => {
                compare_fields(name, &a.fields, &b.fields, &mut problems);
            }
            (ExtendedType::Union(a), ExtendedType::Union(b)) => {
                for m in &a.members {
                    if !b.members.contains(m) {
                        problems.push(format!("{name}: {m} is not a member in GitHub's"));
                    }
                }
            }
            (ExtendedType::Enum(a), ExtendedType::Enum(b)) => {
                for (v, def) in &a.values {
                    match b.values.get(v) {
                        Some(full_def) if full_def.to_string() == def.to_string() => {}
                        _ => problems.push(format!("{name}.{v}: differs from GitHub's")),
                    }
                }
            }
            (ExtendedType::InputObject(a), ExtendedType::InputObject(b)) => {
                for (f, def) in &a.fields {
                    match b.fields.get(f) {
                        Some(full_def) if full_def.to_string() == def.to_string() => {}
                        _ => problems.push(format!("{name}.{f}: differs from GitHub's")),
                    }
                }
            }
            _ => problems.push(format!("{name}: a different kind of type in GitHub's")),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn compare_fields(
    type_name: &str,
    ours: &apollo_compiler::collections::IndexMap<
        apollo_compiler::Name,
        apollo_compiler::schema::Component<apollo_compiler::schema::FieldDefinition>,
    >,
    github: &apollo_compiler::collections::IndexMap<
        apollo_compiler::Name,
        apollo_compiler::schema::Component<apollo_compiler::schema::FieldDefinition>,
    >,
    problems: &mut Vec<String>,
) {
    for (field, def) in ours {
        match github.get(field) {
            None => problems.push(format!("{type_name}.{field}: not in GitHub's schema")),
            Some(full_def) => {
                let (ours, github) = (def.to_string(), full_def.to_string());
                if ours != github {
                    problems.push(format!(
                        "{type_name}.{field}: differs from GitHub's\n  ours:   {ours}\n  GitHub: {github}"
                    ));
                }
            }
        }
    }
}
