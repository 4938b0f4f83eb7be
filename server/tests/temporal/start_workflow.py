"""Start one fixture workflow through the Temporal SDK, for manual checks.

Usage: start_workflow.py TYPE [JSON_INPUT] [--id ID] [--wait]
  e.g. start_workflow.py SagaWF '{"fail_at": 2}' --id saga-1 --wait
Reads STEPLINE_TEMPORAL_GRPC / _NAMESPACE / _TASK_QUEUE (as written by
`scripts/temporal.sh start` to STATE_DIR/env), or the matching flags.
"""

import argparse
import asyncio
import json
import os
import sys
import uuid

from temporalio.client import Client, WorkflowFailureError


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("type", help="workflow type, e.g. SequentialWF")
    ap.add_argument("input", nargs="?", default="{}", help="JSON object passed as the only argument")
    ap.add_argument("--id", help="workflow id (default: TYPE-<random>)")
    ap.add_argument("--wait", action="store_true", help="wait for the result and print it")
    ap.add_argument("--address", default=os.environ.get("STEPLINE_TEMPORAL_GRPC", "127.0.0.1:7233"))
    ap.add_argument("--namespace", default=os.environ.get("STEPLINE_TEMPORAL_NAMESPACE", "default"))
    ap.add_argument("--task-queue", default=os.environ.get("STEPLINE_TEMPORAL_TASK_QUEUE", "stepline-fixtures"))
    a = ap.parse_args()

    client = await Client.connect(a.address, namespace=a.namespace)
    wf_id = a.id or f"{a.type}-{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow(a.type, json.loads(a.input), id=wf_id, task_queue=a.task_queue)
    print(f"started {a.type} id={handle.id} run_id={handle.result_run_id}")
    if a.wait:
        try:
            print("result:", json.dumps(await handle.result()))
        except WorkflowFailureError as e:
            cause = e.cause
            while getattr(cause, "cause", None) is not None:
                cause = cause.cause
            print(f"failed: {e.cause} ({cause})")
            return 1
    return 0


if __name__ == "__main__":
    code = asyncio.run(main())
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: the SDK's native runtime once segfaulted while exiting.
    os._exit(code)
