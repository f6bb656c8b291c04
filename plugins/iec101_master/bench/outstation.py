"""The benchmark's IEC 60870-5-101 outstation: hat-drivers' unbalanced slave link on
one serial port (a pty end), link address 1, keeping its class 1 queue full of
spontaneous short floats (M_ME_NC_1 without time, ASDU address 1, IOAs 1..POINTS),
48 to a full ASDU as a sequence (SQ=1; hat's own encoder puts one point in each ASDU,
which no RTU does on a slow line). Prints `READY` once the port is open and
`CONNECT` when the master reset the link; `FRAME <bytes> <points>` once: the octets one
ASDU takes on the line (request, response frame) and the points in it.

    outstation.py --port PATH [--baudrate 115200] [--points 1000]
"""

import argparse
import asyncio
import struct
import sys

from hat.drivers import serial
from hat.drivers.iec60870 import link

# Cause of transmission 2 octets, common address 2, IOA 3: the largest ASDU of 252
# octets holds 48 short floats with their quality descriptors.
PER_ASDU = 48


def say(line):
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


def asdu(first_io, count, value):
    """M_ME_NC_1, SQ=1, spontaneous, common address 1."""
    head = bytes([13, 0x80 | count, 3, 0]) + struct.pack('<H', 1)
    ioa = struct.pack('<I', first_io)[:3]
    element = struct.pack('<f', value) + b'\x00'
    return head + ioa + element * count


def asdus(points, value):
    return [asdu(first, min(PER_ASDU, points - first + 1), value)
            for first in range(1, points + 1, PER_ASDU)]


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--port', required=True)
    parser.add_argument('--baudrate', type=int, default=115200)
    parser.add_argument('--points', type=int, default=1000)
    args = parser.parse_args()
    slave_link = await link.create_slave_link(
        port=args.port, address_size=link.AddressSize.ONE, silent_interval=0.001,
        baudrate=args.baudrate, bytesize=serial.ByteSize.EIGHTBITS,
        parity=serial.Parity.NONE, stopbits=serial.StopBits.ONE)
    say('READY')
    # A class 1 request is a fixed frame (5 octets); the response a variable frame of
    # 4 + control + address + ASDU + checksum + stop octets.
    frame = 5 + 4 + 1 + 1 + len(asdu(1, PER_ASDU, 0.0)) + 2
    say(f'FRAME {frame} {PER_ASDU}')
    while True:
        raw = await slave_link.open_connection(addr=1, keep_alive_timeout=30)
        say('CONNECT')
        try:
            value = 0.0
            while True:
                value += 1.0
                for data in asdus(args.points, value):
                    await raw.send(data)
        except ConnectionError:
            pass
        finally:
            await raw.async_close()


if __name__ == '__main__':
    asyncio.run(main())
