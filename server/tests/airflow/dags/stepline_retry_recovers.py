"""A task that fails on its first 2 tries and succeeds on the 3rd (retries=2, 2 s apart),
then a downstream task."""

import logging
from datetime import timedelta

from airflow.sdk import dag, get_current_context, task

log = logging.getLogger(__name__)


@dag(dag_id="stepline_retry_recovers", schedule=None, catchup=False, tags=["stepline-fixture"])
def stepline_retry_recovers():
    @task(retries=2, retry_delay=timedelta(seconds=2))
    def flaky_fetch():
        try_number = get_current_context()["ti"].try_number
        log.info("try %d", try_number)
        if try_number < 3:
            raise RuntimeError(f"upstream not ready (try {try_number})")
        log.info("fetched on try %d", try_number)
        return {"try": try_number}

    @task
    def publish(result: dict):
        log.info("publishing result of try %d", result["try"])

    publish(flaky_fetch())


stepline_retry_recovers()
