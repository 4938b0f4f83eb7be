"""A deferrable sensor that waits 5 s in the triggerer (the task goes through the `deferred`
state, then resumes on a worker), then a task."""

import logging

from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync
from airflow.sdk import dag, task

log = logging.getLogger(__name__)


@dag(dag_id="stepline_deferred", schedule=None, catchup=False, tags=["stepline-fixture"])
def stepline_deferred():
    # Rendered when the task starts: always in the future, so the sensor always defers.
    wait = DateTimeSensorAsync(
        task_id="wait_5s",
        target_time="{{ (ti.start_date + macros.timedelta(seconds=5)).isoformat() }}",
    )

    @task
    def after_wait():
        log.info("waited")
        return {"waited": True}

    wait >> after_wait()


stepline_deferred()
