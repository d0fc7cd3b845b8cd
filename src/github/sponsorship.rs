//! Sponsorship checks over GraphQL (docs/contract.md, sponsorship).
//!
//! A user is a sponsor when they currently sponsor the sponsorable (a user or
//! an organization) with a monthly amount of at least the minimum; one-time
//! payments, and sponsorships whose amount is unknown (`tier: null`), count
//! only when the minimum is 0. Amounts are compared in integer cents. "Not a
//! sponsor" is only ever the result of a clean, complete answer: anything
//! doubtful is an error.

use std::collections::BTreeSet;

use graphql_client::GraphQLQuery;
use serde::Serialize;

use super::{AccessToken, GithubClient, GithubError};

/// GraphQL scalar `DateTime` (ISO-8601), kept as text.
type DateTime = String;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "graphql/github.schema.graphql",
    query_path = "graphql/viewer_sponsorship.graphql",
    response_derives = "Debug"
)]
pub struct ViewerSponsorship;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "graphql/github.schema.graphql",
    query_path = "graphql/sponsorable_sponsorships.graphql",
    response_derives = "Debug"
)]
pub struct SponsorableSponsorships;

/// Most pages of 100 sponsorships read by [`GithubClient::sponsors_of`].
const MAX_PAGES: usize = 1000;

/// The viewer's sponsorship of the sponsorable, as far as it matters here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SponsorStatus {
    /// Counts as a sponsor under the configured minimum.
    pub sponsor: bool,
    /// Whole dollars of a current monthly (recurring) sponsorship, rounded
    /// down; `None` without one, for one-time payments and when GitHub does
    /// not say the amount.
    pub tier_monthly_usd: Option<u64>,
    /// The current sponsorship is a one-time payment.
    pub one_time: bool,
}

/// The counting rule, shared by both checks: `monthly_cents` is
/// `tier.monthlyPriceInCents` (`None` when `tier` is null).
pub fn sponsorship_counts(
    one_time: bool,
    monthly_cents: Option<u64>,
    min_monthly_usd: u64,
) -> bool {
    if min_monthly_usd == 0 {
        return true;
    }
    match monthly_cents {
        Some(cents) if !one_time => cents >= min_monthly_usd.saturating_mul(100),
        _ => false,
    }
}

fn cents(value: i64) -> Result<u64, GithubError> {
    u64::try_from(value)
        .map_err(|_| GithubError::Decode(format!("negative monthlyPriceInCents {value}")))
}

impl GithubClient {
    /// Does the token's owner currently sponsor `sponsorable` with at least
    /// `min_monthly_usd` a month?
    pub async fn viewer_sponsorship(
        &self,
        token: &AccessToken,
        sponsorable: &str,
        min_monthly_usd: u64,
    ) -> Result<SponsorStatus, GithubError> {
        use viewer_sponsorship::ViewerSponsorshipRepositoryOwnerOn as On;

        let data = self
            .graphql::<ViewerSponsorship>(
                token,
                viewer_sponsorship::Variables {
                    sponsorable: sponsorable.to_owned(),
                },
            )
            .await?;

        let Some(owner) = data.repository_owner else {
            tracing::warn!(
                sponsorable,
                "GitHub has no account {sponsorable:?} (SPONSORABLE): nobody counts as a sponsor"
            );
            return Ok(SponsorStatus::default());
        };
        let sponsorship = match owner.on {
            On::User(u) => u.sponsorship_for_viewer_as_sponsor,
            On::Organization(o) => o.sponsorship_for_viewer_as_sponsor,
        };
        let Some(s) = sponsorship.filter(|s| s.is_active) else {
            return Ok(SponsorStatus::default());
        };

        let one_time = s.is_one_time_payment || s.tier.as_ref().is_some_and(|t| t.is_one_time);
        let monthly_cents = s
            .tier
            .as_ref()
            .map(|t| cents(t.monthly_price_in_cents))
            .transpose()?;
        Ok(SponsorStatus {
            sponsor: sponsorship_counts(one_time, monthly_cents, min_monthly_usd),
            tier_monthly_usd: monthly_cents.filter(|_| !one_time).map(|c| c / 100),
            one_time,
        })
    }

    /// GitHub user ids of everyone who currently sponsors `sponsorable` in a
    /// way that counts (private sponsorships included; organizations as
    /// sponsors are left out), read with a token of the sponsorable's
    /// maintainer. All pages or an error: never a partial list.
    pub async fn sponsors_of(
        &self,
        maintainer_token: &AccessToken,
        sponsorable: &str,
        min_monthly_usd: u64,
    ) -> Result<Vec<i64>, GithubError> {
        use sponsorable_sponsorships::MaintainerSponsorshipPageNodesSponsorEntity as Entity;
        use sponsorable_sponsorships::SponsorableSponsorshipsRepositoryOwnerOn as On;

        let mut ids = BTreeSet::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let data = self
                .graphql::<SponsorableSponsorships>(
                    maintainer_token,
                    sponsorable_sponsorships::Variables {
                        sponsorable: sponsorable.to_owned(),
                        after: after.clone(),
                    },
                )
                .await?;
            let owner = data
                .repository_owner
                .ok_or_else(|| GithubError::SponsorableNotFound(sponsorable.to_owned()))?;
            let page = match owner.on {
                On::User(u) => u.sponsorships_as_maintainer,
                On::Organization(o) => o.sponsorships_as_maintainer,
            };

            for node in page.nodes.ok_or_else(|| {
                GithubError::Decode("sponsorshipsAsMaintainer.nodes is null".into())
            })? {
                let node = node.ok_or_else(|| {
                    GithubError::Decode("null entry in sponsorshipsAsMaintainer.nodes".into())
                })?;
                if !node.is_active {
                    continue;
                }
                let one_time =
                    node.is_one_time_payment || node.tier.as_ref().is_some_and(|t| t.is_one_time);
                let monthly_cents = node
                    .tier
                    .as_ref()
                    .map(|t| cents(t.monthly_price_in_cents))
                    .transpose()?;
                if !sponsorship_counts(one_time, monthly_cents, min_monthly_usd) {
                    continue;
                }
                match node.sponsor_entity {
                    Some(Entity::User(user)) => {
                        let id = user.database_id.ok_or_else(|| {
                            GithubError::Decode(format!("sponsor {} has no databaseId", user.login))
                        })?;
                        ids.insert(id);
                    }
                    Some(Entity::Organization(_)) => {}
                    None => tracing::warn!(
                        sponsorable,
                        "a sponsorship of {sponsorable} hides its sponsor from this token; skipped"
                    ),
                }
            }

            if !page.page_info.has_next_page {
                return Ok(ids.into_iter().collect());
            }
            match page.page_info.end_cursor {
                Some(cursor) if after.as_deref() != Some(cursor.as_str()) => after = Some(cursor),
                _ => {
                    return Err(GithubError::Decode(
                        "hasNextPage without a new endCursor".into(),
                    ))
                }
            }
        }
        Err(GithubError::Decode(format!(
            "more than {MAX_PAGES} pages of sponsorships"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_rule() {
        // min 0: any current sponsorship counts, one-time and unknown amount too.
        assert!(sponsorship_counts(false, Some(100), 0));
        assert!(sponsorship_counts(true, Some(5000), 0));
        assert!(sponsorship_counts(false, None, 0));
        // min 5: monthly >= $5.00, compared in cents.
        assert!(sponsorship_counts(false, Some(500), 5));
        assert!(sponsorship_counts(false, Some(2500), 5));
        assert!(!sponsorship_counts(false, Some(499), 5));
        assert!(!sponsorship_counts(false, Some(100), 5));
        assert!(!sponsorship_counts(true, Some(5000), 5));
        assert!(!sponsorship_counts(false, None, 5));
    }
}
