"""A real SMTP server for the end-to-end suite that keeps what it receives.

Usage: python smtp_sink.py MAIL_DIRECTORY

Listens on a free loopback port, prints that port as the first line of
standard output, and writes every delivered message as one file
(`<n>.eml`, the raw message as received) into MAIL_DIRECTORY. Runs until
it is terminated or its standard input closes.
"""

import itertools
import os
import socket
import sys
import threading

from aiosmtpd.controller import Controller


class KeepEveryMessage:
    """aiosmtpd handler: each DATA becomes a file in the mail directory."""

    def __init__(self, directory):
        self.directory = directory
        self.counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        body = envelope.original_content or envelope.content
        if isinstance(body, str):
            body = body.encode("utf-8")
        header = "X-Envelope-To: {}\r\n".format(", ".join(envelope.rcpt_tos))
        tmp = os.path.join(self.directory, ".{}.tmp".format(n))
        with open(tmp, "wb") as f:
            f.write(header.encode("utf-8"))
            f.write(body)
        # rename: a reader never sees a half-written message
        os.replace(tmp, os.path.join(self.directory, "{:06d}.eml".format(n)))
        return "250 Message accepted for delivery"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    if len(sys.argv) != 2:
        print("usage: smtp_sink.py MAIL_DIRECTORY", file=sys.stderr)
        return 2
    directory = sys.argv[1]
    os.makedirs(directory, exist_ok=True)
    port = free_port()
    controller = Controller(
        KeepEveryMessage(directory), hostname="127.0.0.1", port=port
    )
    controller.start()
    print(port, flush=True)
    done = threading.Event()

    def watch_stdin():
        try:
            while sys.stdin.read(4096):
                pass
        finally:
            done.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
