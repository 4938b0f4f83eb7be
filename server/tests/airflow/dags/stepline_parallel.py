"""start -> three tasks that each sleep ~3 s in parallel (they overlap) -> join."""

import logging
import time

from airflow.sdk import dag, task

log = logging.getLogger(__name__)


@dag(dag_id="stepline_parallel", schedule=None, catchup=False, tags=["stepline-fixture"])
def stepline_parallel():
    @task
    def start():
        log.info("fanning out")

    def branch(name: str):
        @task(task_id=name)
        def work():
            log.info("%s: working for 3 s", name)
            time.sleep(3)
            log.info("%s: done", name)
            return name

        return work()

    @task(trigger_rule="all_success")
    def join(a, b, c):
        log.info("joined %s, %s, %s", a, b, c)
        return [a, b, c]

    s = start()
    a, b, c = branch("branch_a"), branch("branch_b"), branch("branch_c")
    s >> [a, b, c]
    join(a, b, c)


stepline_parallel()
