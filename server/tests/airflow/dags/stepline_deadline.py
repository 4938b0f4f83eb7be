"""A DAG with a deadline alert: each run is due 10 minutes after it was queued (Stepline
shows the deadline as the run's SLA). The alert's callback never runs in the tests."""

from datetime import timedelta

from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference, dag, task


async def deadline_missed(**kwargs):
    """What Airflow calls (in the triggerer) once a run misses its deadline."""


@dag(
    dag_id="stepline_deadline",
    schedule=None,
    catchup=False,
    tags=["stepline-fixture"],
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=10),
        callback=AsyncCallback(deadline_missed),
        name="ten minutes from queued",
    ),
)
def stepline_deadline():
    @task
    def work():
        return "done"

    work()


stepline_deadline()
