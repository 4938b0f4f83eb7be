#!/usr/bin/env python3
"""A reference in-house workflow engine that Stepline monitors and commands.

It runs workflows made of steps (retried with backoff, parallel branches, a compensation
per step), pushes every change to Stepline's events API, and carries out operators'
commands: pause, resume, cancel (rolling back with the compensations, newest first),
retry (from the start or from a step) and clone. Commands reach it either way Stepline
offers:

- webhook: Stepline POSTs each command here, signed; the signature is checked (HMAC-SHA256
  of "<t>.<body>", t at most 5 minutes off, a signature seen before refused as a replay);
- pull:    the engine long-polls Stepline for its commands and answers each one.

Either way a command is carried out at most once per idempotency key, even when Stepline
delivers it again. Runs, the commands answered and the events not yet pushed are kept in
a state file, so a stopped engine resumes where it was (a step that was running runs
again). Only Python's standard library is used.

    STEPLINE_TOKEN=stp_... STEPLINE_COMMAND_SECRET=... \\
      python3 engine.py --stepline http://127.0.0.1:3000 --source billing \\
        --listen 127.0.0.1:8700 --delivery webhook --state ./billing-state.json

Its own small API on --listen: POST /runs {"workflow_type", "input"} starts a run (201,
{"workflow_id"}); GET /runs/<id> and GET /commands show what it holds; POST
/stepline/commands is the webhook. See README.md beside this file.
"""

import argparse
import hashlib
import hmac
import json
import os
import secrets
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The workflow types this engine runs. A step runs once every step in its `after` has
# completed (steps with the same `after` run side by side, each on its branch), is tried
# up to `attempts` times, and is undone by its `compensation` when the run is cancelled.
# A step that is not `cancellable` refuses a cancel while it runs.
WORKFLOWS = {
    "provision_tenant": {
        "sla_seconds": 300,
        "steps": [
            {"name": "reserve_capacity", "after": [], "compensation": "release_capacity"},
            {"name": "create_database", "after": [1], "branch": "data",
             "compensation": "drop_database"},
            {"name": "create_bucket", "after": [1], "branch": "storage",
             "compensation": "delete_bucket"},
            {"name": "charge_card", "after": [2, 3], "compensation": "refund_card",
             "cancellable": False},
            {"name": "send_welcome", "after": [4]},
        ],
    },
}
ATTEMPTS = 3
FIRST_BACKOFF_SECONDS = 0.2
# How far a webhook signature's time may be from this engine's clock.
SIGNATURE_WINDOW_SECONDS = 300
# The retry policy as Stepline shows it.
RETRY_POLICY = {"max_attempts": ATTEMPTS,
                "delays_seconds": [FIRST_BACKOFF_SECONDS * 2 ** n for n in range(ATTEMPTS - 1)]}
# Events pushed in one request at most (Stepline takes up to 1,000).
BATCH = 200


def now_iso():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def log(message):
    print(f"{now_iso()} engine: {message}", file=sys.stderr, flush=True)


class Refused(Exception):
    """A command this engine will not carry out; its text is shown to the operator."""


class Engine:
    """Every run, the commands answered, and the events waiting to be pushed, under one
    lock; each change is saved to the state file before it is pushed."""

    def __init__(self, source, state_path, step_seconds):
        self.source = source
        self.state_path = state_path
        self.step_seconds = step_seconds
        self.lock = threading.Condition()
        self.runs = {}
        self.answered = {}  # idempotency key -> {"action", "workflow_id", "reply", "deliveries"}
        self.outbox = []  # events not yet pushed, oldest first
        self.stopping = False
        if state_path and os.path.exists(state_path):
            with open(state_path) as file:
                saved = json.load(file)
            self.runs, self.answered, self.outbox = saved["runs"], saved["answered"], saved["outbox"]

    # State and events.

    def save(self):
        if not self.state_path:
            return
        temporary = self.state_path + ".tmp"
        with open(temporary, "w") as file:
            json.dump({"runs": self.runs, "answered": self.answered, "outbox": self.outbox}, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.state_path)

    def emit(self, run, event_type, **fields):
        """Queues one event about `run` (the lock is held) and saves."""
        self.outbox.append({"type": event_type, "workflow_id": run["id"], "at": now_iso(), **fields})
        self.save()
        self.lock.notify_all()

    def set_status(self, run, status, reason=None):
        run["status"] = status
        self.emit(run, "workflow_status_changed", status=status, **({"reason": reason} if reason else {}))

    # Starting runs.

    def start(self, workflow_type, run_input, triggered_by="api", tags=()):
        definition = WORKFLOWS.get(workflow_type)
        if definition is None:
            raise KeyError(workflow_type)
        with self.lock:
            run = {
                "id": f"{self.source}-{secrets.token_hex(6)}",
                "type": workflow_type,
                "input": run_input,
                "status": "RUNNING",
                "pause": False,
                "cancel": None,
                "steps": {
                    str(number): {"state": "pending", "attempts": 0, "failures": 0}
                    for number in range(1, len(definition["steps"]) + 1)
                },
                "completed_order": [],
            }
            self.runs[run["id"]] = run
            self.emit(
                run, "workflow_started", workflow_type=workflow_type, status="RUNNING",
                total_steps=len(definition["steps"]), sla_target_seconds=definition["sla_seconds"],
                triggered_by=triggered_by, tags=list(tags), input=run_input,
                steps=[
                    {"step_number": number, "name": step["name"],
                     **({"branch": step["branch"]} if "branch" in step else {}),
                     "retry_policy": RETRY_POLICY}
                    for number, step in enumerate(definition["steps"], 1)
                ],
            )
        self.drive(run["id"])
        return run["id"]

    def drive(self, run_id):
        threading.Thread(target=self.run_loop, args=(run_id,), daemon=True).start()

    # Running a run: one thread per run decides; one per running step works.

    def run_loop(self, run_id):
        with self.lock:
            run = self.runs[run_id]
            steps = WORKFLOWS[run["type"]]["steps"]
            while not self.stopping:
                states = run["steps"]
                running = [n for n, s in states.items() if s["state"] == "running"]
                if run["cancel"] is not None:
                    if running:
                        self.lock.wait()
                        continue
                    self.roll_back(run)
                    return
                failed = [n for n, s in states.items() if s["state"] == "failed"]
                if failed:
                    if running:
                        self.lock.wait()
                        continue
                    self.set_status(run, "FAILED", f"step {failed[0]} failed")
                    return
                if run["pause"]:
                    if not running and run["status"] != "PAUSED":
                        self.set_status(run, "PAUSED")
                    self.lock.wait()
                    continue
                if run["status"] in ("PAUSED", "PAUSING"):
                    self.set_status(run, "RUNNING")
                if all(s["state"] == "completed" for s in states.values()):
                    self.set_status(run, "COMPLETED")
                    return
                ready = [
                    n for n, s in states.items()
                    if s["state"] == "pending"
                    and all(states[str(d)]["state"] == "completed" for d in steps[int(n) - 1]["after"])
                ]
                for number in ready:
                    states[number]["state"] = "running"
                    self.save()
                    threading.Thread(target=self.run_step, args=(run, int(number)), daemon=True).start()
                self.lock.wait()

    def run_step(self, run, number):
        """Tries step `number` until it completes, fails for good, or the run is cancelled."""
        step = WORKFLOWS[run["type"]]["steps"][number - 1]
        state = run["steps"][str(number)]
        options = run["input"] if isinstance(run["input"], dict) else {}
        seconds = options.get("step_seconds", {}).get(step["name"], self.step_seconds)
        failures_wanted = options.get("fail", {}).get(step["name"], 0)
        backoff = FIRST_BACKOFF_SECONDS
        while True:
            with self.lock:
                if self.stopping:
                    return
                if run["cancel"] is not None:
                    # Cancelled while waiting to try again.
                    state["state"] = "cancelled"
                    self.emit(run, "step_cancelled", step_number=number, reason="the run was cancelled")
                    return
                state["attempts"] += 1
                self.emit(run, "step_started", step_number=number, input={"tenant": run["id"]})
                self.emit(run, "log_lines", step_number=number,
                          lines=[f"{step['name']}: attempt {state['attempts']} of {ATTEMPTS}"])
                cancelled = self.lock.wait_for(
                    lambda: run["cancel"] is not None and step.get("cancellable", True)
                    or self.stopping,
                    timeout=seconds,
                )
                if self.stopping:
                    return
                if cancelled:
                    state["state"] = "cancelled"
                    self.emit(run, "step_cancelled", step_number=number, reason="the run was cancelled")
                    return
                if state["failures"] < failures_wanted:
                    state["failures"] += 1
                    error = f"{step['name']} failed ({state['failures']} of {failures_wanted} failures asked for)"
                    if state["attempts"] % ATTEMPTS == 0:
                        state["state"] = "failed"
                        self.emit(run, "step_failed", step_number=number, error=error)
                        return
                    self.emit(run, "step_attempt_failed", step_number=number, error=error)
                else:
                    state["state"] = "completed"
                    run["completed_order"].append(number)
                    self.emit(run, "step_completed", step_number=number,
                              output={"step": step["name"], "attempts": state["attempts"]})
                    return
            time.sleep(backoff)
            backoff *= 2

    def roll_back(self, run):
        """Undoes each completed step, newest first (the lock is held), then ends the run."""
        steps = WORKFLOWS[run["type"]]["steps"]
        number = len(steps)
        for done in reversed(run["completed_order"]):
            compensation = steps[done - 1].get("compensation")
            if not compensation:
                continue
            number += 1
            self.emit(run, "step_scheduled", step_number=number, name=compensation,
                      kind="compensation", compensates=done)
            self.emit(run, "step_started", step_number=number)
            self.lock.wait(timeout=self.step_seconds / 2)
            self.emit(run, "step_completed", step_number=number, output={"undid": steps[done - 1]["name"]})
        run["completed_order"] = []
        self.set_status(run, "CANCELLED", run["cancel"])

    # Commands.

    def command(self, message):
        """Carries out one command, once per idempotency key; the reply to send back."""
        key = message.get("idempotency_key") or message.get("id")
        with self.lock:
            seen = self.answered.get(key)
            if seen is not None:
                seen["deliveries"] += 1
                self.save()
                return seen["reply"]
            try:
                self.carry_out(message)
                reply = {"accepted": True}
            except Refused as refusal:
                reply = {"accepted": False, "reason": str(refusal)}
            self.answered[key] = {"action": message.get("action"),
                                  "workflow_id": message.get("workflow_id"),
                                  "reply": reply, "deliveries": 1}
            self.save()
            self.lock.notify_all()
        log(f"{message.get('action')} {message.get('workflow_id')}: {reply}")
        return reply

    def carry_out(self, message):
        action, run = message.get("action"), self.runs.get(message.get("workflow_id"))
        if run is None:
            raise Refused(f"this engine has no run {message.get('workflow_id')!r}")
        status = run["status"]
        if action == "pause":
            if status != "RUNNING":
                raise Refused(f"the run is {status}, not running")
            run["pause"] = True
            self.set_status(run, "PAUSING", message.get("reason"))
        elif action == "resume":
            if status not in ("PAUSED", "PAUSING"):
                raise Refused(f"the run is {status}, not paused")
            run["pause"] = False
        elif action == "cancel":
            if status in ("COMPLETED", "FAILED", "CANCELLED", "CANCELLING"):
                raise Refused(f"the run is already {status}")
            steps = WORKFLOWS[run["type"]]["steps"]
            busy = [steps[int(n) - 1]["name"] for n, s in run["steps"].items()
                    if s["state"] == "running" and not steps[int(n) - 1].get("cancellable", True)]
            if busy:
                raise Refused(f"{busy[0]} is under way and cannot be interrupted; cancel once it ends")
            run["cancel"] = message.get("reason") or "cancelled by an operator"
            run["pause"] = False
            self.set_status(run, "CANCELLING", run["cancel"])
        elif action == "retry":
            if status != "FAILED":
                raise Refused(f"only a failed run is retried; this one is {status}")
            self.retry(run, message.get("from_step"))
        elif action == "clone":
            threading.Thread(
                target=self.start,
                args=(run["type"], run["input"], f"clone of {run['id']}", [f"cloned-from:{run['id']}"]),
                daemon=True,
            ).start()
        else:
            raise Refused(f"this engine does not {action}")

    def retry(self, run, from_step):
        """Runs again `from_step` (1 when absent), every step after it, and every step that
        did not complete; earlier attempts stay in the history."""
        steps = WORKFLOWS[run["type"]]["steps"]
        start = from_step or 1
        if not 1 <= start <= len(steps):
            raise Refused(f"there is no step {start}; this workflow has {len(steps)}")
        self.set_status(run, "RUNNING")
        for number in range(1, len(steps) + 1):
            state = run["steps"][str(number)]
            if number >= start or state["state"] != "completed":
                if number in run["completed_order"]:
                    run["completed_order"].remove(number)
                state["state"] = "pending"
                step = steps[number - 1]
                self.emit(run, "step_scheduled", step_number=number, name=step["name"],
                          **({"branch": step["branch"]} if "branch" in step else {}),
                          retry_policy=RETRY_POLICY)
        self.drive(run["id"])

    def resume_after_restart(self):
        """Runs left open by the last stop go on; a step that was running runs again."""
        with self.lock:
            for run in self.runs.values():
                if run["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
                    continue
                for number, state in run["steps"].items():
                    if state["state"] == "running":
                        state["state"] = "pending"
                        self.emit(run, "step_attempt_failed", step_number=int(number),
                                  error="the engine stopped while it ran; it runs again")
                self.drive(run["id"])


class Stepline:
    """Stepline's API as this engine uses it: pushing events, pulling and answering commands."""

    def __init__(self, base_url, source, token):
        self.base = base_url.rstrip("/") + "/api/platform/orchestration"
        self.source = source
        self.token = token

    def call(self, method, path, body=None, timeout=10):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method, headers={
            "authorization": f"Bearer {self.token}", "content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")

    def push_forever(self, engine):
        """Pushes the outbox in order; waits and tries again while Stepline is away. A batch
        Stepline refuses (4xx: its runs already hold it, after a restart) is dropped."""
        backoff = 0.5
        while True:
            with engine.lock:
                engine.lock.wait_for(lambda: engine.outbox or engine.stopping)
                if not engine.outbox and engine.stopping:
                    return
                batch = engine.outbox[:BATCH]
            try:
                self.call("POST", "/events", {"source": self.source, "events": batch})
            except urllib.error.HTTPError as error:
                if error.code >= 500 or error.code in (401, 403, 429):
                    log(f"push answered {error.code}; trying again in {backoff:.1f} s")
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 30)
                    continue
                log(f"push refused ({error.code}): {error.read()[:300]!r}; the batch is dropped")
            except OSError as error:
                log(f"Stepline unreachable ({error}); trying again in {backoff:.1f} s")
                time.sleep(backoff)
                backoff = min(backoff * 2, 30)
                continue
            backoff = 0.5
            with engine.lock:
                del engine.outbox[:len(batch)]
                engine.save()
                engine.lock.notify_all()

    def pull_forever(self, engine):
        """Long-polls for commands and answers each one."""
        backoff = 0.5
        while not engine.stopping:
            try:
                pulled = self.call("GET", f"/sources/{self.source}/commands?wait=20", timeout=40)
                for message in pulled["commands"]:
                    reply = engine.command(message)
                    self.call("POST", f"/sources/{self.source}/commands/{message['id']}", reply)
                backoff = 0.5
            except (OSError, ValueError) as error:
                log(f"pulling commands failed ({error}); trying again in {backoff:.1f} s")
                time.sleep(backoff)
                backoff = min(backoff * 2, 30)


class Signatures:
    """Checks Stepline's `Stepline-Signature: t=<unix seconds>,v1=<hex>` header."""

    def __init__(self, secret):
        self.secret = secret.encode()
        self.seen = {}  # signature -> its time, forgotten once outside the window
        self.lock = threading.Lock()

    def check(self, header, body, now=None):
        """None when the signature is good; otherwise why it is refused."""
        now = time.time() if now is None else now
        fields = dict(part.split("=", 1) for part in (header or "").split(",") if "=" in part)
        try:
            signed_at = int(fields["t"])
            given = fields["v1"]
        except (KeyError, ValueError):
            return "no signature"
        if abs(now - signed_at) > SIGNATURE_WINDOW_SECONDS:
            return "signature too old or from the future"
        expected = hmac.new(self.secret, f"{signed_at}.".encode() + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, given):
            return "bad signature"
        with self.lock:
            self.seen = {sig: at for sig, at in self.seen.items() if now - at <= SIGNATURE_WINDOW_SECONDS}
            if given in self.seen:
                return "signature already used (a replay)"
            self.seen[given] = signed_at
        return None


def serve(engine, signatures, address):
    """The engine's own API and, with `signatures`, Stepline's webhook."""

    class Handler(BaseHTTPRequestHandler):
        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            with engine.lock:
                if self.path == "/health":
                    return self.answer(200, {"ok": True})
                if self.path == "/commands":
                    return self.answer(200, engine.answered)
                if self.path.startswith("/runs/") and self.path[6:] in engine.runs:
                    return self.answer(200, engine.runs[self.path[6:]])
            self.answer(404, {"error": "not found"})

        def do_POST(self):
            try:
                length = int(self.headers.get("content-length") or 0)
            except ValueError:
                return self.answer(400, {"error": "bad content-length"})
            if not 0 <= length <= 1 << 20:
                return self.answer(413, {"error": "too large"})
            body = self.rfile.read(length)
            if self.path == "/stepline/commands" and signatures is not None:
                problem = signatures.check(self.headers.get("stepline-signature"), body)
                if problem:
                    return self.answer(401, {"error": problem})
                try:
                    message = json.loads(body)
                except ValueError:
                    return self.answer(400, {"error": "not JSON"})
                return self.answer(200, engine.command(message))
            if self.path == "/runs":
                try:
                    asked = json.loads(body)
                    run_id = engine.start(asked["workflow_type"], asked.get("input") or {})
                except (ValueError, KeyError, TypeError) as error:
                    return self.answer(400, {"error": f"bad run: {error}"})
                return self.answer(201, {"workflow_id": run_id})
            self.answer(404, {"error": "not found"})

        def log_message(self, *args):
            pass

    host, port = address.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stepline", required=True, help="Stepline's base URL")
    parser.add_argument("--source", required=True, help="the source name declared in Stepline")
    parser.add_argument("--listen", default="127.0.0.1:8700", help="host:port of this engine's API")
    parser.add_argument("--delivery", choices=["webhook", "pull"], default="webhook")
    parser.add_argument("--state", help="file that keeps runs and unpushed events across stops")
    parser.add_argument("--step-seconds", type=float, default=1.0, help="how long a step works")
    args = parser.parse_args()
    token = os.environ.get("STEPLINE_TOKEN")
    if not token:
        sys.exit("STEPLINE_TOKEN must hold a Stepline API token with the ingest:<source> scope")
    secret = os.environ.get("STEPLINE_COMMAND_SECRET")
    if args.delivery == "webhook" and not secret:
        sys.exit("STEPLINE_COMMAND_SECRET must hold the source's signing secret for webhook delivery")

    engine = Engine(args.source, args.state, args.step_seconds)
    stepline = Stepline(args.stepline, args.source, token)
    server = serve(engine, Signatures(secret) if args.delivery == "webhook" else None, args.listen)
    pusher = threading.Thread(target=stepline.push_forever, args=(engine,), daemon=True)
    pusher.start()
    if args.delivery == "pull":
        threading.Thread(target=stepline.pull_forever, args=(engine,), daemon=True).start()
    engine.resume_after_restart()
    log(f"listening on http://{args.listen}, commands by {args.delivery}")
    print(f"ready http://{args.listen}", flush=True)

    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    # Stop: no new work; running steps are left to run again after the restart; what is
    # queued is pushed for up to 5 s, and the rest stays in the state file.
    server.shutdown()
    with engine.lock:
        engine.stopping = True
        engine.lock.notify_all()
    pusher.join(timeout=5)
    with engine.lock:
        engine.save()
    log("stopped")


if __name__ == "__main__":
    main()
