//! Reading a `sponsorship` delivery and deciding what it means under the minimum.

use serde::{Deserialize, Serialize};

use crate::github::sponsorship_counts;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Created,
    Cancelled,
    Edited,
    TierChanged,
    PendingCancellation,
    PendingTierChange,
}

impl Action {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "created" => Self::Created,
            "cancelled" => Self::Cancelled,
            "edited" => Self::Edited,
            "tier_changed" => Self::TierChanged,
            "pending_cancellation" => Self::PendingCancellation,
            "pending_tier_change" => Self::PendingTierChange,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Cancelled => "cancelled",
            Self::Edited => "edited",
            Self::TierChanged => "tier_changed",
            Self::PendingCancellation => "pending_cancellation",
            Self::PendingTierChange => "pending_tier_change",
        }
    }

    fn is_pending(self) -> bool {
        matches!(self, Self::PendingCancellation | Self::PendingTierChange)
    }
}

/// `sponsorship.tier` as far as the decision needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tier {
    /// `monthly_price_in_cents` (the one-time amount for one-time tiers).
    pub monthly_cents: Option<u64>,
    pub one_time: bool,
}

impl Tier {
    /// Whole dollars of a monthly tier; `None` for one-time tiers.
    pub fn monthly_usd(&self) -> Option<u64> {
        self.monthly_cents
            .filter(|_| !self.one_time)
            .map(|c| c / 100)
    }
}

/// A `sponsorship` event for `SPONSORABLE` by a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SponsorshipEvent {
    pub action: Action,
    pub sponsor_id: u64,
    pub sponsor_login: String,
    /// The sponsorship's tier (the new one for `tier_changed` and
    /// `pending_tier_change`); `None` when the payload has none.
    pub tier: Option<Tier>,
    /// `effective_date` (unix ms); always set for `pending_*` actions.
    pub effective_at_ms: Option<i64>,
}

/// What a payload is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Event(SponsorshipEvent),
    /// Not for us (another account, no user to sign in, another action): the reason.
    Ignored(&'static str),
}

/// A signed payload that is not a sponsorship event we can read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PayloadError(pub String);

#[derive(Deserialize)]
pub(super) struct RawEvent {
    action: Option<String>,
    sponsorship: Option<RawSponsorship>,
    effective_date: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RawSponsorship {
    sponsor: Option<RawAccount>,
    sponsorable: Option<RawAccount>,
    tier: Option<RawTier>,
}

#[derive(Deserialize)]
pub(super) struct RawAccount {
    login: Option<String>,
    id: Option<u64>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RawTier {
    monthly_price_in_cents: Option<u64>,
    is_one_time: Option<bool>,
}

/// Reads a `sponsorship` payload (JSON) for `sponsorable`.
pub fn parse_event(payload: &[u8], sponsorable: &str) -> Result<Parsed, PayloadError> {
    let raw: RawEvent = serde_json::from_slice(payload)
        .map_err(|e| PayloadError(format!("not a sponsorship event payload: {e}")))?;
    let Some(action) = raw.action.as_deref().and_then(Action::parse) else {
        return Ok(Parsed::Ignored("action not handled"));
    };
    let Some(sponsorship) = raw.sponsorship else {
        return Ok(Parsed::Ignored("no sponsorship in the payload"));
    };
    let Some(target) = sponsorship.sponsorable else {
        return Ok(Parsed::Ignored("sponsorable is null"));
    };
    if !target
        .login
        .as_deref()
        .is_some_and(|l| l.eq_ignore_ascii_case(sponsorable))
    {
        return Ok(Parsed::Ignored("sponsorship of another account"));
    }
    let Some(sponsor) = sponsorship.sponsor else {
        return Ok(Parsed::Ignored("sponsor is null"));
    };
    if sponsor.kind.as_deref().is_some_and(|k| k != "User") {
        return Ok(Parsed::Ignored(
            "sponsor is not a user (organizations cannot sign in)",
        ));
    }
    let Some(sponsor_id) = sponsor.id else {
        return Ok(Parsed::Ignored("sponsor has no id"));
    };
    let effective_at_ms =
        if action.is_pending() {
            let raw_date = raw.effective_date.ok_or_else(|| {
                PayloadError(format!("{} without effective_date", action.as_str()))
            })?;
            Some(parse_date(&raw_date).ok_or_else(|| {
                PayloadError(format!("effective_date {raw_date:?} is not a date"))
            })?)
        } else {
            None
        };
    Ok(Parsed::Event(SponsorshipEvent {
        action,
        sponsor_id,
        sponsor_login: sponsor.login.unwrap_or_default(),
        tier: sponsorship.tier.map(|t| Tier {
            monthly_cents: t.monthly_price_in_cents,
            one_time: t.is_one_time.unwrap_or(false),
        }),
        effective_at_ms,
    }))
}

/// RFC 3339 (`2019-12-30T00:00:00+00:00`), or a bare date (midnight UTC).
pub(super) fn parse_date(s: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    let at = match time::OffsetDateTime::parse(s, &Rfc3339) {
        Ok(at) => at,
        Err(_) => {
            let format =
                time::format_description::parse_borrowed::<2>("[year]-[month]-[day]").ok()?;
            time::Date::parse(s, &format).ok()?.midnight().assume_utc()
        }
    };
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

// ---------------------------------------------------------------------------
// Decision

/// A sponsor status to reach, as stored in the schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub sponsor: bool,
    /// Known monthly tier (whole USD) to record with a promotion.
    pub tier_monthly_usd: Option<u64>,
    /// When the change took (or takes) effect on GitHub, unix ms. A sign-in
    /// after that moment knows better than a scheduled demotion.
    pub effective_at_ms: i64,
    /// What caused it (`cancelled`, `reverify`, …), for logs.
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Ignore(&'static str),
    /// Reach this status at `effective_at_ms` (`None`: now); demotions then
    /// wait `SPONSOR_GRACE_SECS` more.
    Set {
        sponsor: bool,
        tier_monthly_usd: Option<u64>,
        effective_at_ms: Option<i64>,
    },
}

/// What an event means under `SPONSOR_MIN_MONTHLY_USD`.
pub fn decide(event: &SponsorshipEvent, min_monthly_usd: u64) -> Decision {
    match event.action {
        Action::Edited => Decision::Ignore("privacy change: sponsor status unchanged"),
        Action::Cancelled | Action::PendingCancellation => Decision::Set {
            sponsor: false,
            tier_monthly_usd: None,
            effective_at_ms: event.effective_at_ms,
        },
        Action::Created | Action::TierChanged | Action::PendingTierChange => {
            let counts = match event.tier {
                Some(t) => sponsorship_counts(t.one_time, t.monthly_cents, min_monthly_usd),
                None => sponsorship_counts(false, None, min_monthly_usd),
            };
            Decision::Set {
                sponsor: counts,
                tier_monthly_usd: event.tier.and_then(|t| t.monthly_usd()).filter(|_| counts),
                effective_at_ms: event.effective_at_ms,
            }
        }
    }
}

/// What became of an event, a due change or a re-verified user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The status is now what the event says (204).
    Applied,
    /// Takes effect later (a future `effective_date`, or a demotion's grace).
    Scheduled {
        due_ms: i64,
    },
    Ignored(&'static str),
    /// This delivery was applied before; nothing done.
    Duplicate,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(
        action: &str,
        sponsorable: serde_json::Value,
        sponsor: serde_json::Value,
        tier: serde_json::Value,
    ) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "action": action,
            "sponsorship": {"sponsorable": sponsorable, "sponsor": sponsor, "tier": tier},
            "effective_date": "2019-12-30T00:00:00+00:00",
        }))
        .unwrap()
    }

    fn user(login: &str, id: u64) -> serde_json::Value {
        serde_json::json!({"login": login, "id": id, "type": "User"})
    }

    fn tier(cents: u64, one_time: bool) -> serde_json::Value {
        serde_json::json!({"monthly_price_in_cents": cents, "is_one_time": one_time})
    }

    fn event(action: &str, cents: u64, one_time: bool) -> SponsorshipEvent {
        let body = payload(
            action,
            user("ACME-org", 9001),
            user("alice", 1001),
            tier(cents, one_time),
        );
        match parse_event(&body, "acme-org").unwrap() {
            Parsed::Event(e) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parsing_filters_what_is_not_ours() {
        let ours = user("acme-org", 9001);
        let alice = user("alice", 1001);
        let t = tier(1000, false);
        let cases = [
            payload("created", user("octocat", 5), alice.clone(), t.clone()),
            payload("created", serde_json::Value::Null, alice.clone(), t.clone()),
            payload("created", ours.clone(), serde_json::Value::Null, t.clone()),
            payload(
                "created",
                ours.clone(),
                serde_json::json!({"login": "org", "id": 3, "type": "Organization"}),
                t.clone(),
            ),
            payload("renamed", ours.clone(), alice.clone(), t.clone()),
        ];
        for body in cases {
            assert!(matches!(
                parse_event(&body, "acme-org").unwrap(),
                Parsed::Ignored(_)
            ));
        }
        assert!(parse_event(b"[1]", "acme-org").is_err());
        assert!(parse_event(
            b"{\"action\":\"created\",\"sponsorship\":{\"sponsor\":{\"id\":\"x\"}}}",
            "acme-org"
        )
        .is_err());
        let e = event("pending_cancellation", 1000, false);
        assert_eq!(e.effective_at_ms, Some(1_577_664_000_000));
        assert_eq!(e.sponsor_id, 1001);
        assert_eq!(parse_date("2019-12-30"), Some(1_577_664_000_000));
    }

    #[test]
    fn decisions_apply_the_minimum() {
        let set = |sponsor, tier: Option<u64>| Decision::Set {
            sponsor,
            tier_monthly_usd: tier,
            effective_at_ms: None,
        };
        assert_eq!(
            decide(&event("created", 1000, false), 5),
            set(true, Some(10))
        );
        assert_eq!(decide(&event("created", 100, false), 5), set(false, None));
        assert_eq!(decide(&event("created", 5000, true), 5), set(false, None));
        assert_eq!(decide(&event("created", 5000, true), 0), set(true, None));
        assert_eq!(
            decide(&event("tier_changed", 499, false), 5),
            set(false, None)
        );
        assert_eq!(
            decide(&event("tier_changed", 500, false), 5),
            set(true, Some(5))
        );
        assert_eq!(
            decide(&event("cancelled", 1000, false), 0),
            set(false, None)
        );
        assert!(matches!(
            decide(&event("edited", 1000, false), 0),
            Decision::Ignore(_)
        ));
        assert!(matches!(
            decide(&event("pending_tier_change", 100, false), 5),
            Decision::Set {
                sponsor: false,
                effective_at_ms: Some(_),
                ..
            }
        ));
    }
}
