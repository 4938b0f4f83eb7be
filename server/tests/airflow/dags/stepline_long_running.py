"""One task that runs for conf["seconds"] seconds (default 120), logging a line every second:
for cancelling a running run and reading logs incrementally."""

import logging
import time

from airflow.sdk import dag, get_current_context, task

log = logging.getLogger(__name__)


@dag(dag_id="stepline_long_running", schedule=None, catchup=False, tags=["stepline-fixture"])
def stepline_long_running():
    @task
    def wait():
        seconds = int((get_current_context()["dag_run"].conf or {}).get("seconds", 120))
        log.info("running for %d s", seconds)
        for i in range(1, seconds + 1):
            time.sleep(1)
            log.info("tick %d/%d", i, seconds)
        return {"seconds": seconds}

    wait()


stepline_long_running()
