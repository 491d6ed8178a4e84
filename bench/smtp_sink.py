"""A local SMTP server that accepts every message and counts them (for the digest run).

    python bench/smtp_sink.py PORT COUNT_FILE

The count is rewritten after each message, so a reader always sees the latest total.
"""

import sys
import time
from pathlib import Path

from aiosmtpd.controller import Controller


class Counter:
    def __init__(self, path: Path):
        self.path = path
        self.count = 0
        self.bytes = 0
        self.path.write_text("0 0\n")

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        self.bytes += len(envelope.content or b"")
        self.path.write_text(f"{self.count} {self.bytes}\n")
        return "250 OK"


def main() -> None:
    port, path = int(sys.argv[1]), Path(sys.argv[2])
    controller = Controller(Counter(path), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
