"""A real SMTP server on loopback that keeps every message it receives.

Usage: smtp_sink.py OUTPUT_DIR [PORT]

Listens on 127.0.0.1 (on PORT, or a free port when PORT is 0 or absent) and
writes each delivered message, as received (headers and body), to
OUTPUT_DIR/<n>.eml, numbered from 1 in order of delivery; the file appears
complete (written under another name, then renamed). A line
"X-Envelope-To: <rcpt>" per envelope recipient is put before the message.
When it is ready, prints the port on stdout (one line) and serves until its
standard input closes or it is terminated.
"""

import os
import socket
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    """Writes each message to a numbered file."""

    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        lines = [f"X-Envelope-To: {rcpt}\r\n".encode() for rcpt in envelope.rcpt_tos]
        data = b"".join(lines) + envelope.original_content
        tmp = os.path.join(self.out_dir, f".{n}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.out_dir, f"{n}.eml"))
        return "250 Message accepted for delivery"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    if port == 0:
        port = free_port()
    controller = Controller(Sink(out_dir), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        print(port, flush=True)
        # Serve until the parent closes our stdin (or kills us).
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
