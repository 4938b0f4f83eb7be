"""start -> a TaskGroup `prepare` of 2 tasks (prepare.extract -> prepare.validate) -> end."""

import logging

from airflow.sdk import dag, task, task_group

log = logging.getLogger(__name__)


@dag(dag_id="stepline_task_group", schedule=None, catchup=False, tags=["stepline-fixture"])
def stepline_task_group():
    @task
    def start():
        log.info("starting")

    @task_group(group_id="prepare")
    def prepare():
        @task
        def extract():
            log.info("extracting")
            return {"rows": 2}

        @task
        def validate(data: dict):
            log.info("validating %d rows", data["rows"])
            return {"valid": True}

        # Returns nothing, so the call below yields the group itself: start >> (its first
        # task) and (its last task) >> end.
        validate(extract())

    @task
    def end():
        log.info("done")

    start() >> prepare() >> end()


stepline_task_group()
