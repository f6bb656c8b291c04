"""hat-drivers' IEC 60870-5-2 link layer (hat.drivers.iec60870.link) as the test peer.

Usage: hat_link.py MODE PORT [OPTIONS]
  MODE slave     create_slave_link; opens a connection for every --addr
  MODE master    create_master_link; opens a connection to every --addr
  MODE balanced  create_balanced_link; opens a connection per --addr in --direction

Options: --addr A (repeatable) --address-size 1|2|0 --direction A_TO_B|B_TO_A
         --response-timeout S --retries N --class1 S|none --class2 S|none
         --status-delay S --keep-alive S

Lines on stdin:
  send ADDR HEX [noack]  send user data on the connection to ADDR; prints "SENT ADDR"
                         (master/balanced: once confirmed; slave: once queued)
  class2 ADDR HEX        slave: data returned by the class 2 poll callback (once)
  mute / unmute          slave: stop / resume writing responses (requests still read)
  garbage HEX            write raw octets to the line
  close ADDR             close the connection to ADDR; prints "CLOSED ADDR"
Printed: "READY" (link open), "OPENED ADDR", "RECV ADDR HEX", "CONNCLOSED ADDR",
"ERROR ADDR text".
"""

import argparse
import asyncio
import sys

from hat import aio
from hat.drivers.iec60870 import link


def out(line):
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


def none_or_float(text):
    return None if text == 'none' else float(text)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('mode', choices=['slave', 'master', 'balanced'])
    parser.add_argument('port')
    parser.add_argument('--addr', type=int, action='append', default=[])
    parser.add_argument('--address-size', type=int, default=1)
    parser.add_argument('--direction', default='A_TO_B')
    parser.add_argument('--response-timeout', type=float, default=1)
    parser.add_argument('--retries', type=int, default=2)
    parser.add_argument('--class1', type=none_or_float, default=0.05)
    parser.add_argument('--class2', type=none_or_float, default=None)
    parser.add_argument('--status-delay', type=float, default=5)
    parser.add_argument('--keep-alive', type=float, default=30)
    args = parser.parse_args()

    address_size = link.AddressSize(args.address_size)
    conns = {}
    class2 = {}
    muted = False

    if args.mode == 'slave':
        lnk = await link.create_slave_link(args.port, address_size)
    elif args.mode == 'master':
        lnk = await link.create_master_link(args.port, address_size)
    else:
        lnk = await link.create_balanced_link(args.port, address_size)

    endpoint = lnk._endpoint
    orig_send = endpoint.send

    async def send_unless_muted(msg):
        if not muted:
            await orig_send(msg)

    endpoint.send = send_unless_muted
    out('READY')

    async def poll_class2(conn):
        queue = class2.get(conn.info.address)
        if queue:
            return queue.pop(0)
        return None

    async def receive_loop(addr, conn):
        try:
            while True:
                data = await conn.receive()
                out(f'RECV {addr} {bytes(data).hex()}')
        except ConnectionError:
            pass
        finally:
            out(f'CONNCLOSED {addr}')

    async def open_conn(addr):
        if args.mode == 'slave':
            conn = await lnk.open_connection(
                addr, poll_class2_cb=poll_class2,
                keep_alive_timeout=args.keep_alive)
        elif args.mode == 'master':
            conn = await lnk.open_connection(
                addr, response_timeout=args.response_timeout,
                send_retry_count=args.retries,
                poll_class1_delay=args.class1,
                poll_class2_delay=args.class2)
        else:
            conn = await lnk.open_connection(
                link.Direction[args.direction], addr,
                response_timeout=args.response_timeout,
                send_retry_count=args.retries,
                status_delay=args.status_delay)
        conns[addr] = conn
        out(f'OPENED {addr}')
        await receive_loop(addr, conn)

    group = aio.Group()
    for addr in args.addr:
        group.spawn(open_conn, addr)

    async def send(addr, data, with_ack):
        try:
            await conns[addr].send(data, with_ack=with_ack)
            out(f'SENT {addr}')
        except Exception as e:
            out(f'ERROR {addr} {e!r}')

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        words = line.decode().split()
        if not words:
            continue
        cmd = words[0]
        if cmd == 'send':
            group.spawn(send, int(words[1]), bytes.fromhex(words[2]),
                        'noack' not in words[3:])
        elif cmd == 'class2':
            class2.setdefault(int(words[1]), []).append(
                bytes.fromhex(words[2]))
        elif cmd == 'mute':
            muted = True
            out('MUTED')
        elif cmd == 'unmute':
            muted = False
            out('UNMUTED')
        elif cmd == 'garbage':
            await endpoint._endpoint.write(bytes.fromhex(words[1]))
            out('GARBAGE')
        elif cmd == 'close':
            addr = int(words[1])
            await conns.pop(addr).async_close()
            out(f'CLOSED {addr}')

    await group.async_close()
    await lnk.async_close()


if __name__ == '__main__':
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
