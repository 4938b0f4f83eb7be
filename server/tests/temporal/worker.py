"""Temporal fixture worker for Stepline's real-Temporal tests.

Runs real workflows against a dev server started by `scripts/temporal.sh start`, so the
adapter can be tested on genuine histories. Every duration comes from the workflow input
(milliseconds), with small defaults, so tests stay fast and deterministic.

Usage: worker.py [--address HOST:PORT] [--namespace NS] [--task-queue Q] [--ready-file PATH]
Environment fallbacks: STEPLINE_TEMPORAL_GRPC, STEPLINE_TEMPORAL_NAMESPACE,
STEPLINE_TEMPORAL_TASK_QUEUE, STEPLINE_TEMPORAL_WORKER_READY.

Workflow input is one JSON object (the first element of the HTTP API's `input` list); it
arrives here as a dict. Every key except FixableWF's marker_path is optional (without it,
FixableWF fails its workflow task on a KeyError after step 1 and stays RUNNING: "stuck").

| workflow        | input keys (defaults)                              | outcome                    |
|-----------------|----------------------------------------------------|----------------------------|
| SequentialWF    | steps (3), step_ms (200)                           | completed                  |
| ParallelWF      | branch_ms ([300, 500, 400]), step_ms (200)         | completed, branches overlap|
| RetryWF         | fail_attempts (2), step_ms (200)                   | completed on attempt N+1   |
| PermanentFailWF | step_ms (200), detail_len (0: error text added)    | failed after 2 attempts    |
| FixableWF       | marker_path (required), step_ms (200)              | failed until marker exists |
| SagaWF          | steps (3), step_ms (200), fail_at (null), hold_ms (0) | failed / canceled after compensation |
| LongRunningWF   | steps (3), step_ms (30000), delay_ms (0: a timer first) | completed (slowly)    |
| ChildParentWF   | steps (2), step_ms (200)                           | completed, with a child    |
| LocalActivityWF | step_ms (100)                                      | completed: an activity, then a local one |
| StubbornWF      | step_ms (20000)                                    | canceled while its step ignores the cancel |
| RawResultWF     | step_ms (100)                                      | completed: a None (binary/null) and a bytes (binary/plain) result |
"""

import argparse
import asyncio
import logging
import os
import signal
import sys
from datetime import timedelta
from typing import Any, Optional

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception
from temporalio.workflow import ActivityCancellationType
from temporalio.worker import Worker

log = logging.getLogger("stepline-fixtures")

# ---------------------------------------------------------------------------------------
# Activities. Each takes one dict (shown as `input: [{...}]` in history) and sleeps with
# asyncio, so many can run at once on one worker.
# ---------------------------------------------------------------------------------------


def _secs(ms: Any) -> float:
    return max(0, int(ms)) / 1000.0


@activity.defn
async def do_step(args: dict) -> str:
    await asyncio.sleep(_secs(args.get("ms", 200)))
    return f"{args.get('name', 'step')} done"


@activity.defn
async def flaky_step(args: dict) -> str:
    attempt = activity.info().attempt
    if attempt <= int(args.get("fail_attempts", 2)):
        await asyncio.sleep(_secs(args.get("ms", 200)) / 2)
        raise ApplicationError(f"flaky upstream: attempt {attempt}", type="FlakyUpstream")
    await asyncio.sleep(_secs(args.get("ms", 200)))
    return f"{args.get('name', 'flaky')} done on attempt {attempt}"


@activity.defn
async def always_fail(args: dict) -> str:
    attempt = activity.info().attempt
    await asyncio.sleep(_secs(args.get("ms", 200)) / 2)
    detail = "d" * int(args.get("detail_len", 0))
    raise ApplicationError(
        f"{args.get('name', 'step')}: upstream rejected the request (attempt {attempt}){detail}",
        type="UpstreamRejected",
    )


@activity.defn
async def check_marker(args: dict) -> str:
    await asyncio.sleep(_secs(args.get("ms", 200)))
    path = args["marker_path"]
    if not os.path.exists(path):
        raise ApplicationError(
            f"marker file missing: {path}", type="MarkerMissing", non_retryable=True
        )
    return f"marker found: {path}"


async def _sleep_heartbeating(seconds: float) -> None:
    """Sleeps in short slices, heartbeating, so cancel and pause requests reach the
    activity (as asyncio.CancelledError) within about one heartbeat throttle interval."""
    remaining = seconds
    while remaining > 0:
        activity.heartbeat(round(remaining, 3))
        slice_ = min(0.25, remaining)
        await asyncio.sleep(slice_)
        remaining -= slice_


@activity.defn
async def saga_step(args: dict) -> str:
    await _sleep_heartbeating(_secs(args.get("ms", 200)))
    if args.get("fail"):
        raise ApplicationError(
            f"{args['name']}: booking rejected", type="BookingRejected", non_retryable=True
        )
    return f"{args['name']} booked"


@activity.defn
async def compensate_step(args: dict) -> str:
    await asyncio.sleep(_secs(args.get("ms", 200)))
    return f"{args['name']} compensated"


@activity.defn
async def long_step(args: dict) -> str:
    await _sleep_heartbeating(_secs(args.get("ms", 30000)))
    return f"{args.get('name', 'long')} done"


@activity.defn
async def stubborn_step(args: dict) -> str:
    # No heartbeats: a cancel request never reaches this activity, which runs on.
    await asyncio.sleep(_secs(args.get("ms", 20000)))
    return f"{args.get('name', 'stubborn')} done"


@activity.defn
async def no_result(args: dict) -> None:
    # None is written as a binary/null payload (metadata, no data).
    await asyncio.sleep(_secs(args.get("ms", 100)))


@activity.defn
async def raw_bytes(args: dict) -> bytes:
    # Bytes are written as a binary/plain payload.
    await asyncio.sleep(_secs(args.get("ms", 100)))
    return bytes([0, 1, 2])


# ---------------------------------------------------------------------------------------
# Workflows.
# ---------------------------------------------------------------------------------------

NO_RETRY = RetryPolicy(maximum_attempts=1)
# Heartbeat timeout of heartbeating activities; the SDK sends heartbeats at most every
# 0.8 x this, which bounds how long a cancel takes to reach a running activity.
HEARTBEAT = timedelta(seconds=2)
# Cancelling a running step waits until the worker reports it cancelled, so history shows
# ACTIVITY_TASK_CANCELED (the step's real end) before compensations or the workflow's end.
WAIT_CANCEL = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED


def _timeout(ms: Any, slack_s: float = 30.0) -> timedelta:
    return timedelta(seconds=_secs(ms) + slack_s)


@workflow.defn
class SequentialWF:
    @workflow.run
    async def run(self, params: Optional[dict] = None) -> str:
        p = params or {}
        steps, ms = int(p.get("steps", 3)), int(p.get("step_ms", 200))
        for i in range(1, steps + 1):
            await workflow.execute_activity(
                do_step,
                {"name": f"step-{i}", "step": i, "ms": ms},
                start_to_close_timeout=_timeout(ms),
            )
        return f"{steps} steps done"


@workflow.defn
class ParallelWF:
    @workflow.run
    async def run(self, params: Optional[dict] = None) -> str:
        p = params or {}
        ms = int(p.get("step_ms", 200))
        branch_ms = [int(b) for b in p.get("branch_ms", [300, 500, 400])]
        await workflow.execute_activity(
            do_step, {"name": "prepare", "step": 1, "ms": ms}, start_to_close_timeout=_timeout(ms)
        )
        # All branches are scheduled by the same workflow task, so they run concurrently.
        await asyncio.gather(
            *(
                workflow.execute_activity(
                    do_step,
                    {"name": f"branch-{i}", "step": 1 + i, "ms": b},
                    start_to_close_timeout=_timeout(b),
                )
                for i, b in enumerate(branch_ms, start=1)
            )
        )
        await workflow.execute_activity(
            do_step,
            {"name": "join", "step": len(branch_ms) + 2, "ms": ms},
            start_to_close_timeout=_timeout(ms),
        )
        return f"{len(branch_ms)} branches joined"


async def _prepare_then(ms: int, step_fn: Any, args: dict, retry_policy: RetryPolicy) -> str:
    """A `prepare` step, then `step_fn` under `retry_policy`: the retry fixtures' shape."""
    await workflow.execute_activity(
        do_step, {"name": "prepare", "step": 1, "ms": ms}, start_to_close_timeout=_timeout(ms)
    )
    return await workflow.execute_activity(
        step_fn,
        {"step": 2, "ms": ms, **args},
        start_to_close_timeout=_timeout(ms),
        retry_policy=retry_policy,
    )


@workflow.defn
class RetryWF:
    @workflow.run
    async def run(self, params: Optional[dict] = None) -> str:
        p = params or {}
        return await _prepare_then(
            int(p.get("step_ms", 200)),
            flaky_step,
            {"name": "charge-card", "fail_attempts": int(p.get("fail_attempts", 2))},
            RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_attempts=5),
        )


@workflow.defn
class PermanentFailWF:
    @workflow.run
    async def run(self, params: Optional[dict] = None) -> str:
        p = params or {}
        return await _prepare_then(
            int(p.get("step_ms", 200)),
            always_fail,
            {"name": "ship-order", "detail_len": int(p.get("detail_len", 0))},
            RetryPolicy(initial_interval=timedelta(milliseconds=500), backoff_coefficient=2.0, maximum_attempts=2),
        )


@workflow.defn
class FixableWF:
    @workflow.run
    async def run(self, params: Optional[dict] = None) -> str:
        p = params or {}
        ms = int(p.get("step_ms", 200))
        await workflow.execute_activity(
            do_step, {"name": "step-1", "step": 1, "ms": ms}, start_to_close_timeout=_timeout(ms)
        )
        await workflow.execute_activity(
            check_marker,
            {"name": "step-2", "step": 2, "ms": ms, "marker_path": p["marker_path"]},
            start_to_close_timeout=_timeout(ms),
        )
        await workflow.execute_activity(
            do_step, {"name": "step-3", "step": 3, "ms": ms}, start_to_close_timeout=_timeout(ms)
        )
        return "fixed and done"


@workflow.defn
class SagaWF:
    """Books steps 1..N (`saga_step`), then holds for hold_ms (a durable timer). If step
    `fail_at` fails (non-retryable), or the workflow is cancelled (during a step or the
    hold), the completed steps are compensated in reverse order (`compensate_step`), then
    the error is re-raised: the workflow ends FAILED, or CANCELED after a cancel.

    A step running when the cancel arrives is cancelled through its heartbeat (within
    about 2 s), ends ACTIVITY_TASK_CANCELED and is not compensated. If it completes
    before the cancel reaches it, the SDK hands back its result and the cancel is spent:
    the saga then carries on, so cancel during the hold (or well before a step ends)
    for deterministic tests."""

    @workflow.run
    async def run(self, params: Optional[dict] = None) -> str:
        p = params or {}
        steps, ms = int(p.get("steps", 3)), int(p.get("step_ms", 200))
        fail_at = p.get("fail_at")
        hold_ms = int(p.get("hold_ms", 0))
        done: list = []
        try:
            for i in range(1, steps + 1):
                name = f"book-{i}"
                await workflow.execute_activity(
                    saga_step,
                    {"name": name, "step": i, "ms": ms, "fail": fail_at is not None and int(fail_at) == i},
                    start_to_close_timeout=_timeout(ms),
                    heartbeat_timeout=HEARTBEAT,
                    cancellation_type=WAIT_CANCEL,
                    retry_policy=NO_RETRY,
                )
                done.append((i, name))
            if hold_ms > 0:
                await asyncio.sleep(hold_ms / 1000.0)
            return f"{steps} steps booked"
        except (ActivityError, asyncio.CancelledError) as err:
            why = "cancel" if is_cancelled_exception(err) else "failure"
            workflow.logger.info("saga compensating %d step(s) after %s", len(done), why)
            # Shielded so a (further) cancel request cannot interrupt the compensations.
            await asyncio.shield(asyncio.ensure_future(self._compensate(done, ms)))
            raise

    async def _compensate(self, done: list, ms: int) -> None:
        for i, name in reversed(done):
            await workflow.execute_activity(
                compensate_step,
                {"name": name, "step": i, "ms": ms},
                start_to_close_timeout=_timeout(ms),
            )


@workflow.defn
class LongRunningWF:
    @workflow.run
    async def run(self, params: Optional[dict] = None) -> str:
        p = params or {}
        steps, ms = int(p.get("steps", 3)), int(p.get("step_ms", 30000))
        # Temporal caps an activity's schedule-to-close timeout at the run timeout, counted
        # from when the activity is scheduled: a timer first lets the run's own timeout
        # fire before its running step's.
        delay_ms = int(p.get("delay_ms", 0))
        if delay_ms > 0:
            await workflow.sleep(_secs(delay_ms))
        for i in range(1, steps + 1):
            await workflow.execute_activity(
                long_step,
                {"name": f"long-{i}", "step": i, "ms": ms},
                start_to_close_timeout=_timeout(ms, 60.0),
                heartbeat_timeout=HEARTBEAT,
                cancellation_type=WAIT_CANCEL,
            )
        return f"{steps} long steps done"


@workflow.defn
class ChildParentWF:
    @workflow.run
    async def run(self, params: Optional[dict] = None) -> str:
        p = params or {}
        ms = int(p.get("step_ms", 200))
        await workflow.execute_activity(
            do_step, {"name": "before-child", "step": 1, "ms": ms}, start_to_close_timeout=_timeout(ms)
        )
        await workflow.execute_child_workflow(
            SequentialWF.run,
            {"steps": int(p.get("steps", 2)), "step_ms": ms},
            id=f"{workflow.info().workflow_id}-child",
        )
        await workflow.execute_activity(
            do_step, {"name": "after-child", "step": 3, "ms": ms}, start_to_close_timeout=_timeout(ms)
        )
        return "parent done"


@workflow.defn
class LocalActivityWF:
    @workflow.run
    async def run(self, params: Optional[dict] = None) -> str:
        p = params or {}
        ms = int(p.get("step_ms", 100))
        await workflow.execute_activity(
            do_step, {"name": "remote", "step": 1, "ms": ms}, start_to_close_timeout=_timeout(ms)
        )
        await workflow.execute_local_activity(
            do_step, {"name": "local", "step": 2, "ms": ms}, start_to_close_timeout=_timeout(ms)
        )
        return "local done"


@workflow.defn
class StubbornWF:
    """One step that never heartbeats, awaited with the default TRY_CANCEL: a cancel
    request ends the workflow CANCELED at once, while history never records the step's
    end (its activity runs on in the worker and its late result is refused)."""

    @workflow.run
    async def run(self, params: Optional[dict] = None) -> str:
        p = params or {}
        ms = int(p.get("step_ms", 20000))
        await workflow.execute_activity(
            stubborn_step,
            {"name": "stubborn", "step": 1, "ms": ms},
            start_to_close_timeout=_timeout(ms),
            retry_policy=NO_RETRY,
        )
        return "stubborn done"


@workflow.defn
class RawResultWF:
    @workflow.run
    async def run(self, params: Optional[dict] = None) -> None:
        p = params or {}
        ms = int(p.get("step_ms", 100))
        await workflow.execute_activity(
            no_result, {"name": "nothing", "step": 1, "ms": ms}, start_to_close_timeout=_timeout(ms)
        )
        await workflow.execute_activity(
            raw_bytes, {"name": "bytes", "step": 2, "ms": ms}, start_to_close_timeout=_timeout(ms)
        )


WORKFLOWS = [SequentialWF, ParallelWF, RetryWF, PermanentFailWF, FixableWF, SagaWF, LongRunningWF, ChildParentWF, LocalActivityWF, StubbornWF, RawResultWF]
ACTIVITIES = [do_step, flaky_step, always_fail, check_marker, saga_step, compensate_step, long_step, stubborn_step, no_result, raw_bytes]


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--address", default=os.environ.get("STEPLINE_TEMPORAL_GRPC", "127.0.0.1:7233"))
    ap.add_argument("--namespace", default=os.environ.get("STEPLINE_TEMPORAL_NAMESPACE", "default"))
    ap.add_argument("--task-queue", default=os.environ.get("STEPLINE_TEMPORAL_TASK_QUEUE", "stepline-fixtures"))
    ap.add_argument("--ready-file", default=os.environ.get("STEPLINE_TEMPORAL_WORKER_READY"))
    a = ap.parse_args()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The SDK logs every activity failure with a stack trace; retries are expected here.
    logging.getLogger("temporalio.activity").setLevel(logging.ERROR)
    logging.getLogger("temporalio.worker._activity").setLevel(logging.ERROR)

    client = await Client.connect(a.address, namespace=a.namespace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async with Worker(client, task_queue=a.task_queue, workflows=WORKFLOWS, activities=ACTIVITIES):
        log.info("polling %s (namespace %s, task queue %s)", a.address, a.namespace, a.task_queue)
        if a.ready_file:
            with open(a.ready_file, "w") as f:
                f.write(f"{os.getpid()}\n")
        await stop.wait()
        log.info("shutting down")


if __name__ == "__main__":
    asyncio.run(main())
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # The worker has shut down cleanly; skip interpreter finalization, during which the
    # SDK's native runtime sometimes aborts ("PyGILState_Release ... finalizing").
    os._exit(0)
