//! Reading a running try's log on, against what a real Airflow 3.3.2 answered while
//! `stepline_long_running` ran (`samples/`).

use super::*;
use crate::engines::airflow::client::LogPage;
use crate::engines::airflow::sample;

fn running_try() -> LiveLog {
    let instance: TaskInstance = serde_json::from_value(
        sample::<serde_json::Value>("stepline_long_running.running.task_instances")
            ["task_instances"][0]
            .clone(),
    )
    .unwrap();
    LiveLog {
        instance,
        try_number: 1,
        step_number: 1,
        token: None,
        pushed: 0,
        error: None,
        read_at: None,
    }
}

/// Reads `page` on into `live`, answering the lines pushed.
fn read(live: &mut LiveLog, page: &LogPage) -> Vec<String> {
    let mut lines = Vec::new();
    live.read_on(
        &page.content,
        page.continuation_token.clone(),
        Utc::now(),
        &mut |_, change| match change {
            Change::LogLines {
                step_number,
                lines: new,
            } => {
                assert_eq!(step_number, 1);
                lines.extend(new);
            }
            other => panic!("only log lines are pushed, not {other:?}"),
        },
    );
    lines
}

#[test]
fn a_try_that_ended_between_the_poll_and_its_log_read_has_each_line_pushed_once() {
    let pages: Vec<LogPage> = [
        "stepline_long_running.running.log.wait.1",
        "stepline_long_running.running.log.wait.1.continued",
        // The try ended before this read: Airflow gives the rest and no token.
        "stepline_long_running.finished.log.wait.1.continued",
    ]
    .into_iter()
    .map(sample)
    .collect();
    let mut live = running_try();
    let mut pushed = Vec::new();
    for page in &pages {
        pushed.extend(read(&mut live, page));
    }
    assert!(
        live.token.is_none(),
        "no token once the log ended: the last one given would read the end again"
    );
    assert_eq!(live.pushed, pushed.len());
    for tick in 1..=20 {
        let line = format!("INFO tick {tick}/20");
        assert_eq!(
            pushed.iter().filter(|l| **l == line).count(),
            1,
            "{line} in {pushed:#?}"
        );
    }
    assert!(
        pushed.contains(&"INFO Pushing xcom".to_owned()),
        "{pushed:#?}"
    );

    // Read again from the start, as the ended try's read does without a token: only
    // what came after is pushed.
    let mut whole = LogPage::default();
    for page in &pages {
        whole.content.extend(page.content.iter().cloned());
    }
    whole.content.push(serde_json::json!({
        "timestamp": "2026-12-06T21:38:22.8Z", "event": "a late line", "level": "info"
    }));
    assert_eq!(read(&mut live, &whole), vec!["INFO a late line".to_owned()]);
}

#[test]
fn a_running_tries_log_read_from_the_start_again_skips_what_was_pushed() {
    let first: LogPage = sample("stepline_long_running.running.log.wait.1");
    let mut live = running_try();
    let pushed = read(&mut live, &first);
    assert!(pushed.contains(&"INFO tick 4/20".to_owned()), "{pushed:#?}");
    // Airflow restarted: its tokens are refused, and the log is read from the start.
    live.token_refused();
    let mut again = first.clone();
    let next: LogPage = sample("stepline_long_running.running.log.wait.1.continued");
    again.content.extend(next.content);
    assert_eq!(
        read(&mut live, &again),
        vec!["INFO tick 5/20".to_owned(), "INFO tick 6/20".to_owned()]
    );
}
