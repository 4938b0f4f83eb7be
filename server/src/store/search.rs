//! Free-text search over the runs' trigram index, planned so that what it costs follows
//! how many runs the text picks out, not how many runs are stored.
//!
//! FTS5 answers a phrase by walking every one of its trigrams' lists of runs together. A
//! trigram that nearly every run has (the `run-` of ids that all start alike, the
//! `customer-` of every run's tags) adds a step on its long list for every candidate the
//! rare ones propose: a pasted id among 1,000,000 runs cost ~70 ms that way. So the
//! planner first asks the index how dense each of the text's trigrams is (the first
//! [`PROBED`] runs having it, a fraction of a millisecond each), asks the index only for the
//! parts of the text made of the others, and checks the whole text on each run it gets
//! back. The answer is the same either way; only its cost differs.

use super::{Store, StoreError};
use sqlx::SqlitePool;

/// A search looks at most at this many of its newest matches (and says so past them).
const SEARCHED_AT_MOST: i64 = 1_000;
/// How many runs having a trigram its density is judged by.
const PROBED: i64 = 64;
/// A trigram at least this dense (runs having it, over the runs in the stretch they span)
/// is left to the check of the whole text rather than asked of the index.
const DENSE: f64 = 0.25;
/// Texts with fewer trigrams than this are cheap as one phrase whatever they hold.
const PLANNED_FROM: usize = 4;
/// Texts with more distinct trigrams than this are asked as one phrase: probing them all
/// would cost more than the phrase's rare parts save.
const PROBED_AT_MOST: usize = 24;

/// How the index is asked for the runs whose text contains the search text.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Plan {
    /// The FTS5 query: the whole text as one phrase, or the phrases of its rare parts.
    pub matching: String,
    /// When only parts were asked of the index: the whole text, lower-case, that each
    /// run it returns must contain in one of its columns.
    pub checked: Option<String>,
    /// Every trigram of the text is dense: the text may well be in most runs, and its
    /// first few matches tell whether to ask for the newest at once.
    pub all_dense: bool,
}

impl Plan {
    /// The `WHERE` clause over `workflows_text` this plan reads: `?1` binds the FTS5
    /// query, `?2` the checked text (unused when there is none).
    pub fn condition(&self) -> &'static str {
        match self.checked {
            None => "workflows_text MATCH ?1",
            Some(_) => {
                "workflows_text MATCH ?1 AND (instr(lower(id), ?2) OR instr(lower(workflow_type), ?2)
                 OR instr(lower(triggered_by), ?2) OR instr(lower(tags), ?2)
                 OR instr(lower(engine_ref), ?2))"
            }
        }
    }
}

/// What a search found: the rowids of its matches (as a JSON array, which the list's
/// queries read with `json_each`), how many, and whether there were more.
pub(super) struct Found {
    pub ids: String,
    pub count: usize,
    pub more: bool,
}

/// Which end of the index's order (the order runs were first stored) matches are read from.
#[derive(Clone, Copy)]
enum End {
    Oldest,
    Newest,
}

impl Store {
    /// The runs whose searched text contains `text`: all of them, or past
    /// [`SEARCHED_AT_MOST`] the newest that many. Most searches match fewer, and the
    /// index finds those fastest in its own order (walking it backwards costs about
    /// twice as much), so the newest are asked for only when there are more, or when a
    /// text made only of dense trigrams shows in its first matches that there will be.
    pub(super) async fn search(&self, text: &str) -> Result<Found, StoreError> {
        let plan = plan(&self.pool, text).await?;
        let newest_at_once = if plan.all_dense {
            let first = self.ids_matching(&plan, End::Oldest, PROBED).await?;
            if !first.found.more {
                return Ok(first.found);
            }
            first.foretells_more_than(SEARCHED_AT_MOST)
        } else {
            false
        };
        if !newest_at_once {
            let found = self
                .ids_matching(&plan, End::Oldest, SEARCHED_AT_MOST)
                .await?
                .found;
            if !found.more {
                return Ok(found);
            }
        }
        Ok(self
            .ids_matching(&plan, End::Newest, SEARCHED_AT_MOST)
            .await?
            .found)
    }

    /// Up to `limit` runs that `plan` finds, read from one end of the index, in one row:
    /// a row handed from the database's thread costs more than reading it.
    async fn ids_matching(
        &self,
        plan: &Plan,
        from: End,
        limit: i64,
    ) -> Result<Matches, sqlx::Error> {
        let order = match from {
            End::Oldest => "ASC",
            End::Newest => "DESC",
        };
        let sql = format!(
            "WITH matches AS MATERIALIZED (
                 SELECT rowid FROM workflows_text WHERE {} ORDER BY rowid {order} LIMIT ?3 + 1)
             SELECT (SELECT json_group_array(rowid)
                     FROM (SELECT rowid FROM matches ORDER BY rowid {order} LIMIT ?3)),
                 count(*), min(rowid), max(rowid), (SELECT max(rowid) FROM workflows)
             FROM matches",
            plan.condition()
        );
        let (ids, matched, first, last, stored): (
            String,
            i64,
            Option<i64>,
            Option<i64>,
            Option<i64>,
        ) = sqlx::query_as(&sql)
            .bind(&plan.matching)
            .bind(&plan.checked)
            .bind(limit)
            .fetch_one(&self.pool)
            .await?;
        Ok(Matches {
            found: Found {
                ids,
                count: usize::try_from(matched.min(limit)).unwrap_or(0),
                more: matched > limit,
            },
            span: first.zip(last),
            stored: stored.unwrap_or(0),
        })
    }
}

/// Matches read from one end of the index, with the stretch of rowids they span and the
/// highest rowid stored.
struct Matches {
    found: Found,
    span: Option<(i64, i64)>,
    stored: i64,
}

impl Matches {
    /// Whether, at the density of these matches, the rest of the runs hold more than
    /// `many`.
    fn foretells_more_than(&self, many: i64) -> bool {
        let Some((first, last)) = self.span else {
            return false;
        };
        let density = self.found.count as f64 / (last - first + 1) as f64;
        density * (self.stored - first + 1) as f64 > many as f64
    }
}

/// The text as the index holds it: a control character is read as a space, as the
/// projector stored it in one-line text (a NUL would also end the phrase early).
fn searched(text: &str) -> Vec<char> {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `chars` as one phrase of the trigram index: any run whose searched fields contain it
/// (case aside), every character taken literally.
fn phrase(chars: &[char]) -> String {
    let literal: String = chars.iter().collect::<String>().replace('"', "\"\"");
    format!("\"{literal}\"")
}

/// Plans the search for `text`, asking the index how dense each of its trigrams is.
pub(super) async fn plan(pool: &SqlitePool, text: &str) -> Result<Plan, sqlx::Error> {
    let chars = searched(text);
    let whole = Plan {
        matching: phrase(&chars),
        checked: None,
        all_dense: false,
    };
    // The check reads columns with SQLite's `lower`, which folds ASCII letters only,
    // while the index folds every letter: a text with other characters is asked whole.
    if chars.len() < PLANNED_FROM + 2 || !chars.iter().all(char::is_ascii) {
        return Ok(whole);
    }
    let lower: Vec<char> = chars.iter().map(char::to_ascii_lowercase).collect();
    let trigrams: Vec<&[char]> = lower.windows(3).collect();
    let mut distinct = trigrams.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() > PROBED_AT_MOST {
        return Ok(whole);
    }
    let densities = densities(pool, &distinct).await?;
    let dense: Vec<&[char]> = distinct
        .iter()
        .zip(densities)
        .filter(|(_, density)| *density >= DENSE)
        .map(|(trigram, _)| *trigram)
        .collect();
    if dense.len() == distinct.len() {
        return Ok(Plan {
            all_dense: true,
            ..whole
        });
    }
    Ok(plan_for(&lower, &trigrams, |trigram| dense.contains(&trigram)).unwrap_or(whole))
}

/// The plan that leaves the `dense` trigrams to the check: the phrases of the stretches
/// of `lower` whose trigrams are all rare. `None` when no trigram is dense, or all are
/// (then the whole phrase costs no more: its runs are many and come early).
fn plan_for(lower: &[char], trigrams: &[&[char]], dense: impl Fn(&[char]) -> bool) -> Option<Plan> {
    let rare: Vec<bool> = trigrams.iter().map(|trigram| !dense(trigram)).collect();
    if rare.iter().all(|&r| r) || !rare.iter().any(|&r| r) {
        return None;
    }
    let mut parts = Vec::new();
    let mut start = None;
    for (at, &is_rare) in rare.iter().chain([&false]).enumerate() {
        match (is_rare, start) {
            (true, None) => start = Some(at),
            (false, Some(from)) => {
                // Trigrams `from..at` cover the characters `from..at + 2`.
                parts.push(phrase(&lower[from..at + 2]));
                start = None;
            }
            _ => {}
        }
    }
    Some(Plan {
        matching: parts.join(" AND "),
        checked: Some(lower.iter().collect()),
        all_dense: false,
    })
}

/// For each trigram, the share of runs having it among the first [`PROBED`] that do: how
/// many there are over the stretch of runs (by rowid) they span; fewer than [`PROBED`]
/// in all reads as rare. Asked in one statement (a round trip to the database's thread
/// costs more than an index probe).
async fn densities(pool: &SqlitePool, trigrams: &[&[char]]) -> Result<Vec<f64>, sqlx::Error> {
    let probe = "SELECT count(*), min(rowid), max(rowid) FROM (SELECT rowid FROM workflows_text
                 WHERE workflows_text MATCH ? LIMIT ?)";
    let sql = vec![probe; trigrams.len()].join(" UNION ALL ");
    let mut query = sqlx::query_as::<_, (i64, Option<i64>, Option<i64>)>(&sql);
    for trigram in trigrams {
        query = query.bind(phrase(trigram)).bind(PROBED);
    }
    let spans = query.fetch_all(pool).await?;
    Ok(spans
        .into_iter()
        .map(|span| match span {
            (PROBED, Some(first), Some(last)) => PROBED as f64 / (last - first + 1) as f64,
            _ => 0.0,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn planned(text: &str, dense: &[&str]) -> Option<Plan> {
        let lower: Vec<char> = text.chars().collect();
        let trigrams: Vec<&[char]> = lower.windows(3).collect();
        plan_for(&lower, &trigrams, |trigram| {
            dense.contains(&trigram.iter().collect::<String>().as_str())
        })
    }

    #[test]
    fn the_dense_prefix_of_an_id_is_left_to_the_check() {
        let plan = planned("run-0042", &["run", "un-", "n-0", "-00"]).unwrap();
        assert_eq!(plan.matching, "\"0042\"");
        assert_eq!(plan.checked.as_deref(), Some("run-0042"));
    }

    #[test]
    fn rare_stretches_apart_are_each_asked_as_a_phrase() {
        let plan = planned("ab-cd-ef", &["-cd", "cd-"]).unwrap();
        assert_eq!(plan.matching, "\"ab-c\" AND \"d-ef\"");
    }

    #[test]
    fn a_text_all_rare_or_all_dense_is_asked_whole() {
        assert_eq!(planned("abcdef", &[]), None);
        assert_eq!(planned("abcd", &["abc", "bcd"]), None);
    }

    #[test]
    fn quotes_stay_literal_in_every_phrase() {
        let plan = planned("x\"yz-0000", &["-00", "000"]).unwrap();
        assert_eq!(plan.matching, "\"x\"\"yz-0\"");
    }

    /// Runs shaped as load tools and real engines make them: ids and tags that all start
    /// alike (dense trigrams), numbers that tell them apart (rare ones), a few with text
    /// that is not ASCII or holds a quote.
    async fn store_with_alike_runs(runs: i64) -> Store {
        let store = Store::open("sqlite::memory:").await.unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1)
             INSERT INTO workflows (id, engine, workflow_type, status, sla_status, priority,
                 capabilities, created_ms, updated_ms, completed_steps, total_steps,
                 triggered_by, tags, engine_ref)
             SELECT printf('Run-%06d', i), 'custom:load', printf('type_%02d', i % 10),
                 'RUNNING', 'on_track', 'NORMAL', '{}', i, i, 0, 5,
                 printf('user%03d@example.com', i % 50),
                 printf('[\"customer-%d\",\"région-%d\"]', i % 700, i % 7),
                 CASE WHEN i % 9 = 0 THEN printf('order \"%d\" · %x', i, i * 40503) END
             FROM n",
        )
        .bind(runs)
        .execute(store.pool())
        .await
        .unwrap();
        store
    }

    #[tokio::test]
    async fn a_planned_search_finds_exactly_what_the_whole_phrase_finds() {
        let store = store_with_alike_runs(3_000).await;
        let mut rng = fastrand::Rng::with_seed(20_261_206);
        let texts: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM workflows UNION ALL SELECT triggered_by FROM workflows
             UNION ALL SELECT tags FROM workflows UNION ALL SELECT engine_ref FROM workflows
             WHERE engine_ref IS NOT NULL",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        let mut planned = 0;
        for _ in 0..400 {
            // A stretch of some run's field, its case changed at random: what is pasted.
            let text: Vec<char> = texts[rng.usize(..texts.len())].chars().collect();
            let from = rng.usize(..text.len() - 3);
            let to = rng.usize(from + 3..=text.len().min(from + 20));
            let searched: String = text[from..to]
                .iter()
                .map(|c| {
                    if rng.bool() {
                        c.to_ascii_uppercase()
                    } else {
                        *c
                    }
                })
                .collect();
            let plan = plan(store.pool(), &searched).await.unwrap();
            planned += usize::from(plan.checked.is_some());
            let whole = Plan {
                matching: phrase(&searched.chars().collect::<Vec<_>>()),
                checked: None,
                all_dense: false,
            };
            let ids = |matches: Matches| {
                let mut ids: Vec<i64> = serde_json::from_str(&matches.found.ids).unwrap();
                ids.sort();
                ids
            };
            let found = ids(store
                .ids_matching(&plan, End::Oldest, 10_000)
                .await
                .unwrap());
            let expected = ids(store
                .ids_matching(&whole, End::Oldest, 10_000)
                .await
                .unwrap());
            assert!(!expected.is_empty(), "{searched:?} is some run's text");
            assert_eq!(found, expected, "{searched:?} planned as {plan:?}");
        }
        // Most stretches hold a dense part (an id's `run-0`, a tag's `customer-`).
        assert!(planned > 100, "only {planned} of 400 searches were planned");
    }

    /// What `search` answers, against every run read and checked one by one: the newest
    /// [`SEARCHED_AT_MOST`] matches, whether there were more, whichever way it got them.
    #[tokio::test]
    async fn a_search_finds_the_newest_matches_however_it_reads_them() {
        let store = store_with_alike_runs(3_000).await;
        let texts = [
            "example.com",  // in every run: dense, the newest asked at once
            "run-000",      // dense trigrams, in 1,000 runs: exactly as many as kept
            "Run-0000",     // dense trigrams, in 100 runs: all of them, oldest first
            "USER007@",     // a rare part: asked oldest first, 60 runs
            "customer-1",   // many but not every run
            "région-3",     // not ASCII: asked whole
            "order \"27",   // a quote, a rare part
            "no such text", // nothing
        ];
        for text in texts {
            let found = store.search(text).await.unwrap();
            let checked: (i64, String) = sqlx::query_as(
                "WITH matches AS (SELECT rowid FROM workflows
                     WHERE instr(lower(id), lower(?1)) OR instr(lower(workflow_type), lower(?1))
                        OR instr(lower(triggered_by), lower(?1)) OR instr(lower(tags), lower(?1))
                        OR instr(lower(engine_ref), lower(?1)))
                 SELECT (SELECT count(*) FROM matches), (SELECT json_group_array(rowid) FROM
                     (SELECT rowid FROM matches ORDER BY rowid DESC LIMIT ?2))",
            )
            .bind(text)
            .bind(SEARCHED_AT_MOST)
            .fetch_one(store.pool())
            .await
            .unwrap();
            let (matching, newest) = checked;
            let mut ids: Vec<i64> = serde_json::from_str(&found.ids).unwrap();
            let mut expected: Vec<i64> = serde_json::from_str(&newest).unwrap();
            ids.sort();
            expected.sort();
            assert_eq!(ids, expected, "{text:?}");
            assert_eq!(found.count, expected.len(), "{text:?}");
            assert_eq!(found.more, matching > SEARCHED_AT_MOST, "{text:?}");
        }
    }
}
