#!/usr/bin/env python3
"""A TCP delay line on loopback, for the latency scenario of bench/run.

    delayproxy.py --target 127.0.0.1:PORT [--listen-port 0] [--delay-ms 25]

Listens on 127.0.0.1 (the port is printed on stdout, one line, once it
listens) and forwards every connection to the target.  Every chunk read
from either side is written to the other side `delay` later, so a round
trip costs 2 x delay (25 ms each way: 50 ms RTT).  Connection set-up pays
one round trip too: the upstream connection is opened, and the client's
first bytes are forwarded, only after 2 x delay (as a SYN / SYN-ACK would
on a real network).  Ordering is kept (one FIFO per direction); bandwidth
is not limited.  A half-close is forwarded (after the delay) as a
half-close.  Only loopback targets are accepted.

Standard library only (asyncio).  Stops on SIGTERM / SIGINT, or by itself
after --lifetime seconds (default 6 hours), so a forgotten proxy cannot
linger.
"""

import argparse
import asyncio
import collections
import signal
import socket
import sys

READ_SIZE = 256 * 1024
QUEUE_CAP = 32 * 1024 * 1024    # bytes in flight per direction before reads pause


class DelayLine:
    """One direction: reader -> (delay) -> writer, FIFO."""

    def __init__(self, loop, reader, writer, delay):
        self.loop = loop
        self.reader = reader
        self.writer = writer
        self.delay = delay
        self.queue = collections.deque()
        self.queued = 0
        self.wakeup = asyncio.Event()
        self.space = asyncio.Event()
        self.space.set()

    async def read_side(self):
        while True:
            await self.space.wait()
            try:
                data = await self.reader.read(READ_SIZE)
            except (ConnectionError, OSError):
                data = b""
            self.queue.append((self.loop.time() + self.delay, data))
            self.queued += len(data)
            if self.queued > QUEUE_CAP:
                self.space.clear()
            self.wakeup.set()
            if not data:
                return

    async def write_side(self):
        while True:
            while not self.queue:
                self.wakeup.clear()
                await self.wakeup.wait()
            due, data = self.queue[0]
            wait = due - self.loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self.queue.popleft()
            self.queued -= len(data)
            if self.queued <= QUEUE_CAP:
                self.space.set()
            try:
                if not data:
                    if self.writer.can_write_eof():
                        self.writer.write_eof()
                    return
                self.writer.write(data)
                await self.writer.drain()
            except (ConnectionError, OSError):
                return

    async def run(self):
        await asyncio.gather(self.read_side(), self.write_side())


async def handle(client_reader, client_writer, target, delay):
    loop = asyncio.get_running_loop()
    up_writer = None
    try:
        await asyncio.sleep(2 * delay)          # the TCP handshake's round trip
        up_reader, up_writer = await asyncio.open_connection(*target)
        for w in (client_writer, up_writer):
            sock = w.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        a = DelayLine(loop, client_reader, up_writer, delay)
        b = DelayLine(loop, up_reader, client_writer, delay)
        await asyncio.gather(a.run(), b.run())
    except (ConnectionError, OSError, asyncio.CancelledError):
        pass
    finally:
        for w in (client_writer, up_writer):
            if w is not None:
                try:
                    w.close()
                except (ConnectionError, OSError, RuntimeError):
                    pass


async def main_async(args):
    host, port = args.target.rsplit(":", 1)
    if not host.startswith("127.") and host not in ("localhost", "::1"):
        raise SystemExit("delayproxy: only loopback targets are allowed")
    target = (host, int(port))
    delay = args.delay_ms / 1000.0
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, target, delay), "127.0.0.1", args.listen_port)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    loop.call_later(args.lifetime, stop.set)
    async with server:
        await stop.wait()


def main(argv=None):
    ap = argparse.ArgumentParser(description="TCP delay proxy on 127.0.0.1")
    ap.add_argument("--target", required=True, help="HOST:PORT (loopback only)")
    ap.add_argument("--listen-port", type=int, default=0)
    ap.add_argument("--delay-ms", type=float, default=25.0, help="one-way delay")
    ap.add_argument("--lifetime", type=float, default=6 * 3600)
    args = ap.parse_args(argv)
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
