"""A task that fails on its first try (no retries, so the run fails) and succeeds once
it is cleared and runs again: retry from a failed step, followed to success."""

import logging

from airflow.sdk import dag, get_current_context, task

log = logging.getLogger(__name__)


@dag(dag_id="stepline_fixed_by_retry", schedule=None, catchup=False, tags=["stepline-fixture"])
def stepline_fixed_by_retry():
    @task
    def prepare():
        return {"rows": 3}

    @task(retries=0)
    def load(prepared: dict):
        try_number = get_current_context()["ti"].try_number
        if try_number == 1:
            raise RuntimeError("warehouse locked (first try)")
        log.info("loaded %d rows on try %d", prepared["rows"], try_number)
        return {"loaded": prepared["rows"]}

    load(prepare())


stepline_fixed_by_retry()
