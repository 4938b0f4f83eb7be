"""Dynamic task mapping over 5 items (map index 2 sleeps 2 s), then a reduce task."""

import logging
import time

from airflow.sdk import dag, task

log = logging.getLogger(__name__)


@dag(dag_id="stepline_mapped", schedule=None, catchup=False, tags=["stepline-fixture"])
def stepline_mapped():
    @task
    def list_items():
        return [1, 2, 3, 4, 5]

    @task
    def square(item: int):
        if item == 3:
            log.info("item %d is slow", item)
            time.sleep(2)
        log.info("squaring %d", item)
        return item * item

    @task
    def total(squares):
        result = sum(squares)
        log.info("sum of squares %d", result)
        return result

    total(square.expand(item=list_items()))


stepline_mapped()
