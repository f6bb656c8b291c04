"""hat-drivers' IEC 104 APCI (hat.drivers.iec60870.apci) as the test peer.

Usage: hat_peer.py listen [OPTIONS]       prints "PORT n", then serves one connection at a time
       hat_peer.py connect PORT [OPTIONS] connects (STARTDT act/con) and prints "CONNECTED"

Options: --k K --w W --t1 S --t2 S --t3 S.

ASDUs are 4-byte little-endian counters. Every received ASDU must be the next counter of
this connection (from 0); otherwise "BAD ORDER expected X got Y" is printed. Lines on stdin:
  send N [wait]   send counters from the connection's next one on (wait: wait_ack on the last);
                  prints "SENT total" when done
  expect N        prints "GOT N" once N ASDUs are received in order
  enabled         prints "ENABLED true|false"
  close           closes the connection; prints "CLOSED"
Events printed: "CONNECTED", "ENABLED true|false" (on change), "DISCONNECTED".
"""

import argparse
import asyncio
import struct
import sys

from hat import aio
from hat.drivers import net
from hat.drivers.iec60870 import apci


def out(line):
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


class Peer:

    def __init__(self):
        self.conn = None
        self.received = 0
        self.sent = 0
        self.expect = None
        self.connected = asyncio.Event()

    async def attach(self, conn):
        self.conn = conn
        self.received = 0
        self.sent = 0
        conn.register_enabled_cb(
            lambda enabled: out(f'ENABLED {str(enabled).lower()}'))
        out('CONNECTED')
        self.connected.set()
        try:
            while True:
                data = await conn.receive()
                (value,) = struct.unpack('<I', bytes(data))
                if value != self.received:
                    out(f'BAD ORDER expected {self.received} got {value}')
                self.received += 1
                if self.expect is not None and self.received >= self.expect:
                    out(f'GOT {self.expect}')
                    self.expect = None
        except ConnectionError:
            pass
        finally:
            out('DISCONNECTED')
            self.connected.clear()

    async def command(self, line):
        words = line.split()
        if not words:
            return
        await self.connected.wait()
        if words[0] == 'send':
            count = int(words[1])
            wait = len(words) > 2 and words[2] == 'wait'
            for i in range(count):
                data = struct.pack('<I', self.sent)
                self.sent += 1
                await self.conn.send(data, wait_ack=(wait and i == count - 1))
            await self.conn.drain()
            out(f'SENT {self.sent}')
        elif words[0] == 'expect':
            count = int(words[1])
            if self.received >= count:
                out(f'GOT {count}')
            else:
                self.expect = count
        elif words[0] == 'enabled':
            out(f'ENABLED {str(self.conn.is_enabled).lower()}')
        elif words[0] == 'close':
            await self.conn.async_close()
            out('CLOSED')


async def stdin_lines():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        yield line.decode()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('mode', choices=['listen', 'connect'])
    parser.add_argument('port', nargs='?', type=int, default=0)
    parser.add_argument('--k', type=int, default=12)
    parser.add_argument('--w', type=int, default=8)
    parser.add_argument('--t1', type=float, default=15)
    parser.add_argument('--t2', type=float, default=10)
    parser.add_argument('--t3', type=float, default=20)
    args = parser.parse_args()
    params = dict(response_timeout=args.t1, supervisory_timeout=args.t2,
                  test_timeout=args.t3, send_window_size=args.k,
                  receive_window_size=args.w)
    peer = Peer()
    group = aio.Group()

    if args.mode == 'listen':
        server = await apci.listen(
            lambda conn: group.spawn(peer.attach, conn),
            net.TcpAddress('127.0.0.1', 0), **params)
        out(f'PORT {server.info.addresses[0].port}')
    else:
        conn = await apci.connect(net.TcpAddress('127.0.0.1', args.port),
                                  **params)
        group.spawn(peer.attach, conn)

    async for line in stdin_lines():
        await peer.command(line)


if __name__ == '__main__':
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
