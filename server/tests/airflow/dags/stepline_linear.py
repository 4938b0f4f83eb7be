"""Three tasks in a chain; each logs a line or two and returns a small dict (its XCom)."""

import logging

from airflow.sdk import dag, task

log = logging.getLogger(__name__)


@dag(dag_id="stepline_linear", schedule=None, catchup=False, tags=["stepline-fixture"])
def stepline_linear():
    @task
    def extract():
        log.info("extracting 3 orders")
        return {"orders": [101, 102, 103]}

    @task
    def transform(data: dict):
        log.info("transforming %d orders", len(data["orders"]))
        total = sum(data["orders"])
        log.info("total %d", total)
        return {"count": len(data["orders"]), "total": total}

    @task
    def load(summary: dict):
        log.info("loading summary %s", summary)
        return {"loaded": True, "rows": summary["count"]}

    load(transform(extract()))


stepline_linear()
