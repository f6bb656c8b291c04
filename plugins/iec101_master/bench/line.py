"""A serial line at a real baud rate between two pty ends: relays octets both ways,
each direction paced to `baudrate / bits` octets per second (a pty pair alone passes
data as fast as the processes write it).

    line.py --a PATH --b PATH [--baudrate 115200] [--bits 10]

Prints `READY` once both ends are open.
"""

import argparse
import asyncio
import os
import sys
import termios
import tty

CHUNK = 16


def open_raw(path):
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd, termios.TCSANOW)
    return fd


async def pump(src, dst, rate):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    def on_read():
        try:
            data = os.read(src, 4096)
        except BlockingIOError:
            return
        if data:
            queue.put_nowait(data)

    loop.add_reader(src, on_read)
    next_at = loop.time()
    while True:
        data = await queue.get()
        for i in range(0, len(data), CHUNK):
            chunk = data[i:i + CHUNK]
            now = loop.time()
            if next_at > now:
                await asyncio.sleep(next_at - now)
                now = loop.time()
            view = memoryview(chunk)
            while view:
                try:
                    written = os.write(dst, view)
                except BlockingIOError:
                    await asyncio.sleep(0.0005)
                    continue
                view = view[written:]
            next_at = max(next_at, now) + len(chunk) / rate


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--a', required=True)
    parser.add_argument('--b', required=True)
    parser.add_argument('--baudrate', type=int, default=115200)
    parser.add_argument('--bits', type=int, default=10)
    args = parser.parse_args()
    a = open_raw(args.a)
    b = open_raw(args.b)
    rate = args.baudrate / args.bits
    sys.stdout.write('READY\n')
    sys.stdout.flush()
    await asyncio.gather(pump(a, b, rate), pump(b, a, rate))


if __name__ == '__main__':
    asyncio.run(main())
