//! Free-text search over the runs' trigram index, planned so that what it costs follows
//! how many runs the text picks out, not how many runs are stored.
//!
//! The index keeps the runs newest first (see the migration `search_newest_first`), so a
//! search reads the newest matches it wants and stops. FTS5 answers a phrase by walking
//! every one of its trigrams' lists of runs together, and a trigram that many runs have
//! (the `run-` of ids that all start alike, the `customer-` of every run's tags, the `00`
//! of every zero-padded number) adds a step on its long list for every candidate the rare
//! ones propose: a pasted id among 1,000,000 runs cost ~70 ms that way. So the planner
//! first learns how dense each of the text's trigrams is (the newest [`PROBED`] runs having
//! it, a fraction of a millisecond each, and kept a while: a trigram's density changes
//! slowly), asks the index only for the parts of the text made of the rarest, and checks
//! the whole text on each run it gets back. The answer is the same either way; only its
//! cost differs, so a density a little out of date costs time, never a match.
//!
//! A trigram index can only be asked for pieces of a text, and a piece rare among 10,000
//! runs is in a hundred among 1,000,000 (`04242` of a pasted `bench-wf-00004242`), each of
//! them read and checked. So the runs' words are also kept whole (migration
//! `search_words`): a word of the text that starts after a separator is a whole word of
//! every run containing the text, or the start of one when the text ends inside it, and
//! the words index finds those runs among any number, each checked as before.

use super::{Backend, Dialect, Statement, Store};
use sqlx::{QueryBuilder, SqlitePool};
use std::time::{Duration, Instant};

/// A search looks at most at this many of its newest matches (and says so past them).
pub(super) const SEARCHED_AT_MOST: i64 = 1_000;
/// How many runs having a trigram its density is judged by.
const PROBED: i64 = 64;
/// A trigram more than this many times as dense as the text's rarest is left to the check
/// of the whole text rather than asked of the index: its list would be walked for nothing.
const ASKED_WITHIN: f64 = 8.0;
/// A text whose rarest trigram is at least this dense is asked by that trigram alone (see
/// [`rarest_alone`]).
const ASKED_ALONE_FROM: f64 = 0.25;
/// Texts with fewer trigrams than this are cheap as one phrase whatever they hold.
const PLANNED_FROM: usize = 4;
/// Texts with more distinct trigrams than this are asked as one phrase: probing them all
/// would cost more than the phrase's rare parts save.
const PROBED_AT_MOST: usize = 24;
/// A word shorter than this is not asked of the words index (its trigrams tell little).
const WORD_ASKED_FROM: usize = 3;
/// A word the text ends inside is asked as the start of words only when its rarest trigram
/// is at most this dense: FTS5 gathers every word with that start before reading any.
const STARTS_OF_WORDS_AT_MOST: f64 = 1.0 / 64.0;
/// How long a trigram's density is trusted, and how many are remembered (about 50 bytes
/// each).
const DENSITY_KEPT_FOR: Duration = Duration::from_secs(60);
const DENSITIES_KEPT: usize = 16_384;

/// The densities of the trigrams searched lately: an operator's searches share most of
/// theirs (digits, the words of ids and tags), and probing them costs as much as the search.
#[derive(Debug)]
pub(super) struct Densities {
    known: quick_cache::sync::Cache<[char; 3], (f64, Instant)>,
}

impl Default for Densities {
    fn default() -> Self {
        Self {
            known: quick_cache::sync::Cache::new(DENSITIES_KEPT),
        }
    }
}

/// Which index a search asks.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(super) enum Index {
    /// `workflows_text`: every piece of three characters of the runs' searched fields.
    Trigrams,
    /// `workflows_words`: their whole words.
    Words,
    /// PostgreSQL's trigram index (`pg_trgm`) over `workflows.search_text`, asked with
    /// `LIKE`: it plans the search from its own statistics.
    Substring,
}

/// How an index is asked for the runs whose text contains the search text.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Plan {
    pub index: Index,
    /// The FTS5 query: the whole text as one phrase, the phrases of its rare parts, or one
    /// of its words (perhaps as the start of words); for [`Index::Substring`], the `LIKE`
    /// pattern of the whole text.
    pub matching: String,
    /// When the index was not asked for the whole text: the whole text, lower-case, that
    /// each run it returns must contain in one of its columns.
    pub checked: Option<String>,
}

impl Plan {
    /// Pushes the table a search statement starts with (after its `WITH `): `matches`, the
    /// newest `at_most + 1` runs found (the index keys each run by its rowid negated, so
    /// that its order is newest first) as `run` (their rowid in `workflows`) and the
    /// list's sort keys `created_ms` and `id`. The one past `at_most` tells that there are
    /// more; the statement may as well show it (keeping exactly `at_most` of them in a
    /// table of their own cost more than the search).
    ///
    /// Each run the index gives is read from `workflows` once, here: for its sort keys,
    /// and for the check of the whole text when the index was asked only part of it (with
    /// `LIKE`, which folds ASCII letters as the planner wants, without the copies that
    /// `lower` makes; the index's own copy of the text costs a statement per run to read).
    pub fn push_matches<'a, DB: sqlx::Database>(
        &self,
        builder: &mut QueryBuilder<'a, DB>,
        at_most: i64,
    ) where
        QueryBuilder<'a, DB>: Statement,
    {
        builder.push("matches AS MATERIALIZED (SELECT workflows.rowid AS run, ");
        builder.push("workflows.created_ms AS created_ms, workflows.id AS id FROM ");
        let index = match self.index {
            Index::Trigrams => "workflows_text",
            Index::Words => "workflows_words",
            Index::Substring => {
                builder
                    .push("workflows WHERE search_text LIKE lower(")
                    .bind_text(self.matching.clone())
                    .push(") ESCAPE '\\' ORDER BY workflows.rowid DESC LIMIT ")
                    .bind_int(at_most + 1)
                    .push(")");
                return;
            }
        };
        builder
            .push(index)
            .push(" CROSS JOIN workflows ON workflows.rowid = -")
            .push(index)
            .push(".rowid WHERE ")
            .push(index)
            .push(" MATCH ")
            .bind_text(self.matching.clone());
        if let Some(checked) = &self.checked {
            let pattern = format!("%{}%", like_literal(checked));
            builder.push(" AND (FALSE");
            for column in ["id", "workflow_type", "triggered_by", "tags", "engine_ref"] {
                builder
                    .push(format!(" OR workflows.{column} LIKE "))
                    .bind_text(pattern.clone())
                    .push(" ESCAPE '\\'");
            }
            builder.push(")");
        }
        builder
            .push(" ORDER BY ")
            .push(index)
            .push(".rowid LIMIT ")
            .bind_int(at_most + 1)
            .push(")");
    }
}

/// `text` as a `LIKE` pattern (escaped by `\\`) that matches only itself.
fn like_literal(text: &str) -> String {
    let mut literal = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            literal.push('\\');
        }
        literal.push(c);
    }
    literal
}

impl Store {
    /// Plans the search for `text` from how dense each of its trigrams is.
    pub(super) async fn plan(&self, text: &str) -> Result<Plan, sqlx::Error> {
        let chars = searched(text);
        if self.dialect() == Dialect::Postgres {
            return Ok(Plan {
                index: Index::Substring,
                matching: format!("%{}%", like_literal(&chars.iter().collect::<String>())),
                checked: None,
            });
        }
        let whole = Plan {
            index: Index::Trigrams,
            matching: phrase(&chars),
            checked: None,
        };
        // The check reads columns with SQLite's `lower`, which folds ASCII letters only,
        // while the index folds every letter: a text with other characters is asked whole.
        if chars.len() < PLANNED_FROM + 2 || !chars.iter().all(char::is_ascii) {
            return Ok(whole);
        }
        let lower: Vec<char> = chars.iter().map(char::to_ascii_lowercase).collect();
        let trigrams: Vec<[char; 3]> = lower.windows(3).map(|w| [w[0], w[1], w[2]]).collect();
        let mut distinct = trigrams.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() > PROBED_AT_MOST {
            return Ok(whole);
        }
        let densities = self.densities_of(&distinct).await?;
        let density_of = |trigram: &[char; 3]| {
            distinct
                .binary_search(trigram)
                .map_or(0.0, |at| densities[at])
        };
        if let Some(words) = words_plan(&lower, density_of) {
            return Ok(words);
        }
        if let Some(alone) = rarest_alone(&lower, &distinct, &densities) {
            return Ok(alone);
        }
        let rarest = densities.iter().copied().fold(f64::INFINITY, f64::min);
        Ok(plan_for(&lower, &trigrams, |trigram| {
            density_of(trigram) > rarest * ASKED_WITHIN
        })
        .unwrap_or(whole))
    }

    /// The density of each trigram: remembered, or probed (those not known, in one
    /// statement) and remembered.
    async fn densities_of(&self, trigrams: &[[char; 3]]) -> Result<Vec<f64>, sqlx::Error> {
        let now = Instant::now();
        let mut densities: Vec<Option<f64>> = trigrams
            .iter()
            .map(|trigram| {
                self.densities
                    .known
                    .get(trigram)
                    .filter(|(_, at)| now.duration_since(*at) < DENSITY_KEPT_FOR)
                    .map(|(density, _)| density)
            })
            .collect();
        let unknown: Vec<[char; 3]> = trigrams
            .iter()
            .zip(&densities)
            .filter(|(_, density)| density.is_none())
            .map(|(trigram, _)| *trigram)
            .collect();
        if let (false, Backend::Sqlite(pool)) = (unknown.is_empty(), &self.pool) {
            let mut probed = probe(pool, &unknown).await?.into_iter();
            for (trigram, density) in trigrams.iter().zip(&mut densities) {
                if density.is_none() {
                    let fresh = probed.next().unwrap_or(0.0);
                    self.densities.known.insert(*trigram, (fresh, now));
                    *density = Some(fresh);
                }
            }
        }
        Ok(densities
            .into_iter()
            .map(|density| density.unwrap_or(0.0))
            .collect())
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

/// The plan that asks the words index for one word of `lower` (ASCII, lower-case), when
/// one holds a trigram as rare as the text's rarest: the longest such word that starts
/// after a separator, as a whole word when a separator follows it, else as the start of
/// words (and then only when that is not common). `None` when no word qualifies.
fn words_plan(lower: &[char], density_of: impl Fn(&[char; 3]) -> f64) -> Option<Plan> {
    let rarest_in = |word: &[char]| {
        word.windows(3)
            .map(|w| density_of(&[w[0], w[1], w[2]]))
            .fold(f64::INFINITY, f64::min)
    };
    let rarest = rarest_in(lower);
    let mut best: Option<(&[char], bool)> = None;
    let mut from = 0;
    while from < lower.len() {
        let length = lower[from..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        if length == 0 {
            from += 1;
            continue;
        }
        let word = &lower[from..from + length];
        // A word at the very start may be the end of a longer one in the run.
        let starts_a_word = from > 0;
        let ends_a_word = from + length < lower.len();
        let density = rarest_in(word);
        if starts_a_word
            && length >= WORD_ASKED_FROM
            && density <= rarest
            && (ends_a_word || density <= STARTS_OF_WORDS_AT_MOST)
            && best.is_none_or(|(longest, _)| length > longest.len())
        {
            best = Some((word, ends_a_word));
        }
        from += length;
    }
    let (word, whole) = best?;
    let word: String = word.iter().collect();
    Some(Plan {
        index: Index::Words,
        matching: if whole {
            format!("\"{word}\"")
        } else {
            format!("\"{word}\"*")
        },
        checked: Some(lower.iter().collect()),
    })
}

/// The plan for a text whose every trigram is in most runs (`distinct`, each as dense as
/// `densities` says): the index is asked only for the rarest, and every run it gives is
/// checked for the whole text. Such a text is in most runs or in almost none, and either
/// way the index walks as many runs for the whole phrase as for its rarest trigram; the
/// check of each run's row, read anyway for the list's sort keys, costs less than FTS5's
/// matching of the phrase's positions (at 1,000,000 runs, 1.5 against 2.2 ms for a page
/// of a text in every run). `None` when some trigram is rarer than that.
fn rarest_alone(lower: &[char], distinct: &[[char; 3]], densities: &[f64]) -> Option<Plan> {
    let (rarest, density) = distinct
        .iter()
        .zip(densities)
        .min_by(|(_, a), (_, b)| a.total_cmp(b))?;
    (*density >= ASKED_ALONE_FROM).then(|| Plan {
        index: Index::Trigrams,
        matching: phrase(rarest),
        checked: Some(lower.iter().collect()),
    })
}

/// The plan that leaves the trigrams `left_to_check` says to the check: the phrases of the
/// stretches of `lower` whose trigrams are asked. `None` when every trigram is asked (the
/// whole phrase costs no more).
fn plan_for(
    lower: &[char],
    trigrams: &[[char; 3]],
    left_to_check: impl Fn(&[char; 3]) -> bool,
) -> Option<Plan> {
    let asked: Vec<bool> = trigrams
        .iter()
        .map(|trigram| !left_to_check(trigram))
        .collect();
    if asked.iter().all(|&a| a) || !asked.iter().any(|&a| a) {
        return None;
    }
    let mut parts = Vec::new();
    let mut start = None;
    for (at, &is_asked) in asked.iter().chain([&false]).enumerate() {
        match (is_asked, start) {
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
        index: Index::Trigrams,
        matching: parts.join(" AND "),
        checked: Some(lower.iter().collect()),
    })
}

/// For each trigram, the share of runs having it among the newest [`PROBED`] that do: how
/// many there are over the stretch of runs (by rowid) they span; fewer than [`PROBED`]
/// in all reads as 0. Asked in one statement (a round trip to the database's thread
/// costs more than an index probe).
async fn probe(pool: &SqlitePool, trigrams: &[[char; 3]]) -> Result<Vec<f64>, sqlx::Error> {
    let probe = "SELECT count(*), min(rowid), max(rowid) FROM (SELECT rowid FROM workflows_text
                 WHERE workflows_text MATCH ? ORDER BY rowid LIMIT ?)";
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

    /// What a search found: the rowids of its runs (a JSON array), how many, and whether
    /// there were more.
    struct Found {
        ids: String,
        count: usize,
        more: bool,
    }

    impl Store {
        /// The runs the list's search statement finds for `text`.
        async fn search(&self, text: &str) -> Result<Found, sqlx::Error> {
            let plan = self.plan(text).await?;
            self.ids_matching(&plan, SEARCHED_AT_MOST).await
        }

        /// The newest `at_most` runs that `plan` finds, read by the same tables as the
        /// list's statements.
        async fn ids_matching(&self, plan: &Plan, at_most: i64) -> Result<Found, sqlx::Error> {
            let mut statement = QueryBuilder::new("WITH ");
            plan.push_matches(&mut statement, at_most);
            statement.push(
                " SELECT (SELECT json_group_array(run) FROM
                     (SELECT run FROM matches ORDER BY run DESC LIMIT ",
            );
            statement
                .push_bind(at_most)
                .push(")), (SELECT count(*) FROM matches)");
            let (ids, matched): (String, i64) = statement
                .build_query_as()
                .fetch_one(self.sqlite_pool().expect("a SQLite store"))
                .await?;
            Ok(Found {
                ids,
                count: usize::try_from(matched.min(at_most)).unwrap_or(0),
                more: matched > at_most,
            })
        }
    }

    fn planned(text: &str, dense: &[&str]) -> Option<Plan> {
        let lower: Vec<char> = text.chars().collect();
        let trigrams: Vec<[char; 3]> = lower.windows(3).map(|w| [w[0], w[1], w[2]]).collect();
        plan_for(&lower, &trigrams, |trigram| {
            dense.contains(&trigram.iter().collect::<String>().as_str())
        })
    }

    /// The words plan for `text`, its trigrams in `dense` all as dense as each other and
    /// the others absent from every run.
    fn words_planned(text: &str, dense: &[&str]) -> Option<Plan> {
        let lower: Vec<char> = text.chars().collect();
        words_plan(&lower, |trigram| {
            let trigram: String = trigram.iter().collect();
            if dense.contains(&trigram.as_str()) {
                0.5
            } else {
                0.0
            }
        })
    }

    #[test]
    fn a_pasted_id_asks_for_runs_having_a_word_that_starts_with_its_number() {
        let plan = words_planned("bench-wf-00004242", &["ben", "enc", "nch", "h-w"]).unwrap();
        assert_eq!(plan.index, Index::Words);
        assert_eq!(plan.matching, "\"00004242\"*");
        assert_eq!(plan.checked.as_deref(), Some("bench-wf-00004242"));
    }

    #[test]
    fn a_word_followed_by_a_separator_is_asked_whole() {
        let plan = words_planned("ab:region-eu", &["ab:", "b:r", ":re", "n-e", "-eu"]).unwrap();
        assert_eq!(plan.matching, "\"region\"");
        let plan = words_planned("x-customer-42", &[]).unwrap();
        assert_eq!(plan.matching, "\"customer\"", "the longest word");
    }

    #[test]
    fn a_word_that_may_be_the_end_of_a_longer_one_is_never_asked() {
        // `ustomer` may be the end of `customer`, `04242` of `00004242`.
        assert_eq!(words_planned("ustomer", &[]), None);
        assert_eq!(words_planned("04242", &[]), None);
        let plan = words_planned("ustomer-42:eu7", &[]).unwrap();
        assert_eq!(plan.matching, "\"eu7\"*");
    }

    #[test]
    fn a_common_start_of_words_and_a_word_without_the_rarest_part_are_left_to_trigrams() {
        // Every run has `bench`: FTS5 would gather all its words before reading one.
        assert_eq!(words_planned("wf-bench", &["ben", "enc", "nch"]), None);
        // The rare part `x7q` is in a word that may be longer in the run.
        assert_eq!(words_planned("x7q-0042", &["004", "042"]), None);
        // Whole, a common word is read newest first and stops: it is asked.
        let plan = words_planned(
            "wf-bench-",
            &["ben", "enc", "nch", "wf-", "f-b", "-be", "ch-"],
        );
        assert_eq!(plan.unwrap().matching, "\"bench\"");
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
    fn a_text_in_most_runs_asks_for_its_rarest_trigram_and_checks_the_rest() {
        let lower: Vec<char> = "example.com".chars().collect();
        let distinct = [['a', 'm', 'p'], ['e', 'x', 'a'], ['m', 'p', 'l']];
        let plan = rarest_alone(&lower, &distinct, &[0.9, 0.5, 1.0]).unwrap();
        assert_eq!(plan.index, Index::Trigrams);
        assert_eq!(plan.matching, "\"exa\"");
        assert_eq!(plan.checked.as_deref(), Some("example.com"));
        // One trigram in a tenth of the runs: the rare parts are asked as phrases instead.
        assert_eq!(rarest_alone(&lower, &distinct, &[0.9, 0.1, 1.0]), None);
    }

    #[test]
    fn the_check_of_the_whole_text_takes_like_wildcards_literally() {
        assert_eq!(like_literal("a%b_c\\d"), "a\\%b\\_c\\\\d");
        assert_eq!(like_literal("run-0042"), "run-0042");
    }

    #[test]
    fn quotes_stay_literal_in_every_phrase() {
        let plan = planned("x\"yz-0000", &["-00", "000"]).unwrap();
        assert_eq!(plan.matching, "\"x\"\"yz-0\"");
    }

    /// A density remembered from before the runs changed plans the search differently,
    /// never finds other runs: what had been rare is in most runs now, and what had been
    /// in every run is in a few.
    #[tokio::test]
    async fn a_density_out_of_date_never_changes_what_is_found() {
        let store = store_with_alike_runs(600).await;
        let texts = ["zq-0042", "user007@example", "customer-42\"", "order \"9"];
        for text in texts {
            store.search(text).await.unwrap();
        }
        // Now `zq-` (in no run) is in 2,000, and `user` only in a dozen.
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < 2000)
             INSERT INTO workflows (id, engine, workflow_type, status, sla_status, priority,
                 capabilities, created_ms, updated_ms, completed_steps, total_steps)
             SELECT printf('zq-%04d', i), 'custom:load', 'type_zq', 'RUNNING', 'on_track',
                 'NORMAL', '{}', 10000 + i, 10000 + i, 0, 5
             FROM n",
        )
        .execute(store.sqlite_pool().expect("a SQLite store"))
        .await
        .unwrap();
        sqlx::query("DELETE FROM workflows WHERE triggered_by NOT IN ('user007@example.com')")
            .execute(store.sqlite_pool().expect("a SQLite store"))
            .await
            .unwrap();
        for text in texts {
            let found = store.search(text).await.unwrap();
            let expected: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM workflows
                 WHERE instr(lower(id), $1) OR instr(lower(workflow_type), $1)
                    OR instr(lower(triggered_by), $1) OR instr(lower(tags), $1)
                    OR instr(lower(engine_ref), $1)",
            )
            .bind(text)
            .fetch_one(store.sqlite_pool().expect("a SQLite store"))
            .await
            .unwrap();
            assert_eq!(
                found.count as i64,
                expected.min(SEARCHED_AT_MOST),
                "{text:?}"
            );
        }
    }

    /// Runs shaped as load tools and real engines make them: ids and tags that all start
    /// alike (dense trigrams), numbers that tell them apart (rare ones), a few with text
    /// that is not ASCII or holds a quote.
    async fn store_with_alike_runs(runs: i64) -> Store {
        let store = Store::open("sqlite::memory:").await.unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $1)
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
        .execute(store.sqlite_pool().expect("a SQLite store"))
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
        .fetch_all(store.sqlite_pool().expect("a SQLite store"))
        .await
        .unwrap();
        let mut planned = 0;
        let mut by_words = 0;
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
            let plan = store.plan(&searched).await.unwrap();
            planned += usize::from(plan.checked.is_some());
            by_words += usize::from(plan.index == Index::Words);
            let whole = Plan {
                index: Index::Trigrams,
                matching: phrase(&searched.chars().collect::<Vec<_>>()),
                checked: None,
            };
            let ids = |found: Found| {
                let mut ids: Vec<i64> = serde_json::from_str(&found.ids).unwrap();
                ids.sort();
                ids
            };
            let found = ids(store.ids_matching(&plan, 10_000).await.unwrap());
            let expected = ids(store.ids_matching(&whole, 10_000).await.unwrap());
            assert!(!expected.is_empty(), "{searched:?} is some run's text");
            assert_eq!(found, expected, "{searched:?} planned as {plan:?}");
        }
        // Most stretches hold a dense part (an id's `run-0`, a tag's `customer-`).
        assert!(planned > 100, "only {planned} of 400 searches were planned");
        // Many stretches hold a word that starts after a separator (`n-000123`).
        assert!(
            by_words > 50,
            "only {by_words} of 400 searches asked for words"
        );
    }

    /// What `search` answers, against every run read and checked one by one: the newest
    /// [`SEARCHED_AT_MOST`] matches, whether there were more, whichever way it got them.
    #[tokio::test]
    async fn a_search_finds_the_newest_matches_however_it_reads_them() {
        let store = store_with_alike_runs(3_000).await;
        let texts = [
            "example.com",  // in every run: the newest 1,000, and more
            "EXAMPLE.COM",  // the same, its letters folded by the check
            "Type_0",       // in every run, `_` taken literally
            "run-000",      // dense trigrams, in 1,000 runs: exactly as many as kept
            "Run-0000",     // dense trigrams, in 100 runs: all of them
            "USER007@",     // a rare part, 60 runs
            "customer-1",   // many but not every run
            "région-3",     // not ASCII: asked whole
            "order \"27",   // a quote, a rare part
            "no such text", // nothing
        ];
        for text in texts {
            let found = store.search(text).await.unwrap();
            let checked: (i64, String) = sqlx::query_as(
                "WITH matches AS (SELECT rowid FROM workflows
                     WHERE instr(lower(id), lower($1)) OR instr(lower(workflow_type), lower($1))
                        OR instr(lower(triggered_by), lower($1)) OR instr(lower(tags), lower($1))
                        OR instr(lower(engine_ref), lower($1)))
                 SELECT (SELECT count(*) FROM matches), (SELECT json_group_array(rowid) FROM
                     (SELECT rowid FROM matches ORDER BY rowid DESC LIMIT $2))",
            )
            .bind(text)
            .bind(SEARCHED_AT_MOST)
            .fetch_one(store.sqlite_pool().expect("a SQLite store"))
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
