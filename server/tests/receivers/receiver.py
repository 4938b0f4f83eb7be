"""A real alert receiver for Stepline's delivery tests, run as its own process.

    receiver.py webhook PORT OUT   HTTP server: each POST's headers and JSON body
    receiver.py smtp PORT OUT      SMTP server (aiosmtpd): each message's envelope and text

Each message received is appended to OUT as one JSON line, then answered (200, or SMTP
250), so a message in OUT was taken. Prints "listening" once it accepts connections.
Listens on 127.0.0.1 only.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


def record(out, entry):
    with LOCK, open(out, "a", encoding="utf-8") as sink:
        sink.write(json.dumps(entry) + "\n")


def webhook(port, out):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length).decode("utf-8")
            record(out, {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                         "body": body})
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("listening", flush=True)
    server.serve_forever()


def smtp(port, out):
    import asyncio
    from email import message_from_bytes
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            message = message_from_bytes(envelope.content)
            record(out, {"from": envelope.mail_from, "to": envelope.rcpt_tos,
                         "subject": message.get("subject"),
                         "text": message.get_payload(decode=True).decode("utf-8")})
            return "250 Message accepted for delivery"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    print("listening", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    kind, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    {"webhook": webhook, "smtp": smtp}[kind](port, out)
