"""A task that always fails (retries=1, 1 s apart); an on-failure cleanup task
(trigger_rule one_failed) runs, the normal downstream ends upstream_failed, the run fails."""

import logging
from datetime import timedelta

from airflow.sdk import dag, task

log = logging.getLogger(__name__)


@dag(dag_id="stepline_permanent_failure", schedule=None, catchup=False, tags=["stepline-fixture"])
def stepline_permanent_failure():
    @task
    def reserve_stock():
        log.info("reserved 2 items")
        return {"reservation": "R-1"}

    @task(retries=1, retry_delay=timedelta(seconds=1))
    def charge_card():
        log.info("charging card")
        raise ValueError("card declined: insufficient funds")

    @task(trigger_rule="one_failed")
    def compensate_release():
        log.info("releasing reservation R-1")

    @task
    def ship_order():
        log.info("shipping")

    charge = charge_card()
    reserve_stock() >> charge
    charge >> compensate_release()
    charge >> ship_order()


stepline_permanent_failure()
