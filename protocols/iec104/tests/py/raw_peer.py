"""A raw-socket IEC 104 peer that prints every frame it gets and does only what it is told.

Usage: raw_peer.py listen [--auto-startdt] [--auto-testfr]   prints "PORT n"
       raw_peer.py connect PORT [--auto-startdt] [--auto-testfr]

Printed: "CONNECTED", one line per frame received ("I <ssn> <rsn> <asdu hex>", "S <rsn>",
"U <function>"), "DISCONNECTED". --auto-startdt answers STARTDT act with con,
--auto-testfr answers TESTFR act with con. Lines on stdin:
  u FUNCTION          send a U frame (STARTDT_ACT, STARTDT_CON, STOPDT_ACT, STOPDT_CON,
                      TESTFR_ACT, TESTFR_CON)
  s RSN               send an S frame
  i SSN RSN HEX       send an I frame
  raw HEX             send raw bytes
  close               close the connection
Every command prints "DONE" once written.
"""

import argparse
import asyncio
import sys

FUNCTIONS = {0x07: 'STARTDT_ACT', 0x0B: 'STARTDT_CON', 0x13: 'STOPDT_ACT',
             0x23: 'STOPDT_CON', 0x43: 'TESTFR_ACT', 0x83: 'TESTFR_CON'}
CODES = {name: code for code, name in FUNCTIONS.items()}


def out(line):
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


def u_frame(name):
    return bytes([0x68, 4, CODES[name], 0, 0, 0])


def i_frame(ssn, rsn, asdu):
    return bytes([0x68, 4 + len(asdu), (ssn << 1) & 0xFF, ssn >> 7,
                  (rsn << 1) & 0xFF, rsn >> 7]) + asdu


class Peer:

    def __init__(self, args):
        self.args = args
        self.writer = None
        self.connected = asyncio.Event()

    async def serve(self, reader, writer):
        self.writer = writer
        out('CONNECTED')
        self.connected.set()
        try:
            while True:
                head = await reader.readexactly(2)
                body = await reader.readexactly(head[1])
                c = body[:4]
                if c[0] & 1 == 0:
                    ssn = (c[1] << 7) | (c[0] >> 1)
                    rsn = (c[3] << 7) | (c[2] >> 1)
                    out(f'I {ssn} {rsn} {body[4:].hex()}')
                elif c[0] & 3 == 1:
                    out(f'S {(c[3] << 7) | (c[2] >> 1)}')
                else:
                    name = FUNCTIONS.get(c[0], hex(c[0]))
                    out(f'U {name}')
                    if name == 'STARTDT_ACT' and self.args.auto_startdt:
                        writer.write(u_frame('STARTDT_CON'))
                    if name == 'TESTFR_ACT' and self.args.auto_testfr:
                        writer.write(u_frame('TESTFR_CON'))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.connected.clear()
            out('DISCONNECTED')
            writer.close()

    async def command(self, line):
        words = line.split()
        if not words:
            return
        await self.connected.wait()
        if words[0] == 'u':
            self.writer.write(u_frame(words[1]))
        elif words[0] == 's':
            rsn = int(words[1])
            self.writer.write(bytes([0x68, 4, 1, 0, (rsn << 1) & 0xFF, rsn >> 7]))
        elif words[0] == 'i':
            self.writer.write(i_frame(int(words[1]), int(words[2]),
                                      bytes.fromhex(words[3])))
        elif words[0] == 'raw':
            self.writer.write(bytes.fromhex(words[1]))
        elif words[0] == 'close':
            self.writer.close()
        await self.writer.drain()
        out('DONE')


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
    parser.add_argument('--auto-startdt', action='store_true')
    parser.add_argument('--auto-testfr', action='store_true')
    args = parser.parse_args()
    peer = Peer(args)
    if args.mode == 'listen':
        server = await asyncio.start_server(peer.serve, '127.0.0.1', 0)
        out(f'PORT {server.sockets[0].getsockname()[1]}')
    else:
        reader, writer = await asyncio.open_connection('127.0.0.1', args.port)
        asyncio.get_running_loop().create_task(peer.serve(reader, writer))
    async for line in stdin_lines():
        await peer.command(line)


if __name__ == '__main__':
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
