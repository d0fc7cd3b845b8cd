//! Connection paging: `first`/`last` (1..=100, one of them required),
//! `after`/`before` with opaque cursors (base64 of an offset).

use base64::Engine;
use graphql_parser::query::Field;
use serde_json::{json, Value as Json};

use super::exec::{locations, Args};
use super::resolve::Sp;

/// One page of a connection.
#[derive(Clone, Debug)]
pub(crate) struct Page {
    /// All matching items, not only this page.
    pub total: usize,
    /// (cursor, item) of this page.
    pub items: Vec<(String, Sp)>,
    pub has_next: bool,
    pub has_previous: bool,
    /// Sum of recurring (not one-time) amounts over all matching items.
    pub recurring_cents: u64,
}

const PREFIX: &str = "cursor:v2:";

pub(crate) fn encode_cursor(offset: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{PREFIX}{offset}"))
}

pub(crate) fn decode_cursor(cursor: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix(PREFIX)?
        .parse()
        .ok()
}

pub(crate) fn paginate<'a>(
    items: Vec<Sp>,
    field: &Field<'a, &'a str>,
    args: &Args,
    path: &[Json],
) -> Result<Page, Json> {
    let name = field.name;
    let error = |kind: &str, message: String| {
        json!({
            "type": kind,
            "path": path,
            "locations": locations(field.position),
            "message": message,
        })
    };
    let (first, last) = (args.int("first"), args.int("last"));
    if first.is_none() && last.is_none() {
        return Err(error(
            "MISSING_PAGINATION_BOUNDARIES",
            format!("You must provide a `first` or `last` value to properly paginate the `{name}` connection."),
        ));
    }
    for (arg, value) in [("first", first), ("last", last)] {
        match value {
            Some(n) if n > 100 => {
                return Err(error(
                    "EXCESSIVE_PAGINATION",
                    format!("Requesting {n} records on the `{name}` connection exceeds the `{arg}` limit of 100 records."),
                ))
            }
            Some(n) if n < 1 => {
                return Err(error(
                    "INVALID_PAGINATION",
                    format!("`{arg}` on the `{name}` connection must be between 1 and 100, got {n}."),
                ))
            }
            _ => {}
        }
    }
    let bound = |arg: &str| -> Result<Option<usize>, Json> {
        match args.str(arg) {
            None => Ok(None),
            Some(c) => decode_cursor(c).map(Some).ok_or_else(|| {
                error(
                    "INVALID_CURSOR_ARGUMENTS",
                    format!("`{c}` does not appear to be a valid cursor."),
                )
            }),
        }
    };
    let after = bound("after")?;
    let before = bound("before")?;

    let total = items.len();
    let mut lo = after.map_or(0, |a| a.saturating_add(1)).min(total);
    let mut hi = before.unwrap_or(total).min(total).max(lo);
    if let Some(n) = first {
        hi = hi.min(lo + n as usize);
    }
    if let Some(n) = last {
        lo = lo.max(hi.saturating_sub(n as usize));
    }
    let recurring_cents = items
        .iter()
        .filter(|sp| !sp.s.is_one_time)
        .map(|sp| u64::from(sp.s.monthly_price_in_cents))
        .sum();
    let page_items = items
        .into_iter()
        .enumerate()
        .skip(lo)
        .take(hi - lo)
        .map(|(offset, sp)| (encode_cursor(offset), sp))
        .collect();
    Ok(Page {
        total,
        items: page_items,
        has_next: hi < total,
        has_previous: lo > 0,
        recurring_cents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(decode_cursor(&encode_cursor(120)), Some(120));
        assert_eq!(decode_cursor("not-a-cursor"), None);
        assert_eq!(decode_cursor("Zm9vOjE="), None);
    }
}
