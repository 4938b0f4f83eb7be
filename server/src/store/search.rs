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

use sqlx::SqlitePool;

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
            };
            let mut found = store.ids_matching(&plan, "", 10_000).await.unwrap();
            let mut expected = store.ids_matching(&whole, "", 10_000).await.unwrap();
            found.sort();
            expected.sort();
            assert!(!expected.is_empty(), "{searched:?} is some run's text");
            assert_eq!(found, expected, "{searched:?} planned as {plan:?}");
        }
        // Most stretches hold a dense part (an id's `run-0`, a tag's `customer-`).
        assert!(planned > 100, "only {planned} of 400 searches were planned");
    }
}
