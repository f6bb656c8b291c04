"""A hat-drivers IEC 60870-5-101 master for the iec101_slave tests: hat's unbalanced
master link (or a balanced link) on one serial port (a pty end), one connection per
address, and hat-gateway 0.6.48's slave functions as reference.

    master.py --port PATH [--link unbalanced|balanced] [--addresses 1]
              [--address-size ONE] [--cause-size TWO] [--asdu-size TWO]
              [--io-size THREE] [--direction A_TO_B]

Prints, one line each, flushed:
    READY                      once the port is open
    CONNECT <addr>             the connection is open (the link was reset)
    DISCONNECT <addr>          it closed
    MSG <addr> <json>          per message received (hat's NamedTuple as an object
                               with "_type", enums by member name, bytes as lists,
                               non-finite floats as strings)
    OK <command>               once a stdin command is done

Stdin commands:
    send <addr> <python expr>  a list of hat iec101 messages (`iec101`, `IQ`, `MQ`
                               in scope) sent on <addr>'s connection (once it is open)
    hatdata <json>             prints `HATDATA <json>`: the message hat's slave sends
                               for the event {"type": "system/data/...", "payload",
                               "source_timestamp": [s, us] or null}, through hat's
                               codec
EOF on stdin ends the process.
"""

import argparse
import asyncio
import enum
import json
import math
import sys

from hat import aio
from hat.drivers import iec101
from hat.drivers import serial
from hat.drivers.iec60870 import link
from hat.drivers.iec101 import encoder as iec101_encoder
from hat.gateway.devices.iec101 import common as hat_common
from hat.gateway.devices.iec101 import slave as hat_slave
import hat.event.common


def say(line):
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


def to_json(x):
    if isinstance(x, enum.Enum):
        return x.name
    if isinstance(x, (bytes, bytearray, memoryview)):
        return list(bytes(x))
    if isinstance(x, float):
        return x if math.isfinite(x) else str(x)
    if isinstance(x, tuple) and hasattr(x, '_asdict'):
        out = {'_type': type(x).__name__}
        for k, v in x._asdict().items():
            out[k] = to_json(v)
        return out
    if isinstance(x, (list, tuple)):
        return [to_json(i) for i in x]
    return x


SCOPE = {
    'iec101': iec101,
    'IQ': iec101.IndicationQuality(invalid=False, not_topical=False,
                                   substituted=False, blocked=False),
    'MQ': iec101.MeasurementQuality(invalid=False, not_topical=False,
                                    substituted=False, blocked=False, overflow=False),
}


class Master:

    def __init__(self, args):
        self.args = args
        self.encoder = iec101_encoder.Encoder(
            cause_size=iec101.CauseSize[args.cause_size],
            asdu_address_size=iec101.AsduAddressSize[args.asdu_size],
            io_address_size=iec101.IoAddressSize[args.io_size])
        self.conns = {}
        self.tasks = []

    async def start(self):
        kwargs = dict(port=self.args.port,
                      address_size=link.AddressSize[self.args.address_size],
                      silent_interval=0.001,
                      baudrate=115200,
                      bytesize=serial.ByteSize.EIGHTBITS,
                      parity=serial.Parity.NONE,
                      stopbits=serial.StopBits.ONE)
        if self.args.link == 'balanced':
            self.link = await link.create_balanced_link(**kwargs)
        else:
            self.link = await link.create_master_link(**kwargs)
        for addr in [int(a) for a in self.args.addresses.split(',')]:
            self.tasks.append(asyncio.ensure_future(self.serve(addr)))
        say('READY')

    async def open(self, addr):
        if self.args.link == 'balanced':
            return await self.link.open_connection(
                direction=link.Direction[self.args.direction], addr=addr,
                response_timeout=0.5, send_retry_count=2, status_delay=1)
        return await self.link.open_connection(
            addr=addr, response_timeout=0.5, send_retry_count=2,
            poll_class1_delay=0.05, poll_class2_delay=0.05)

    async def serve(self, addr):
        raw = await self.open(addr)
        try:
            conn = iec101.Connection(
                conn=raw,
                cause_size=iec101.CauseSize[self.args.cause_size],
                asdu_address_size=iec101.AsduAddressSize[self.args.asdu_size],
                io_address_size=iec101.IoAddressSize[self.args.io_size])
            self.conns[addr] = conn
            say(f'CONNECT {addr}')
            while True:
                for msg in await conn.receive():
                    say(f'MSG {addr} ' + json.dumps(to_json(msg)))
        except ConnectionError:
            pass
        finally:
            self.conns.pop(addr, None)
            say(f'DISCONNECT {addr}')
            await aio.uncancellable(raw.async_close())

    def hat_data(self, spec):
        segments = spec['type'].split('/')
        key = hat_common.DataKey(data_type=hat_common.DataType(segments[2]),
                                 asdu_address=int(segments[3]),
                                 io_address=int(segments[4]))
        ts = spec['source_timestamp']
        event = hat.event.common.Event(
            id=hat.event.common.EventId(server=0, session=0, instance=0),
            type=('p', *segments),
            timestamp=hat.event.common.Timestamp(s=0, us=0),
            source_timestamp=hat.event.common.Timestamp(s=ts[0], us=ts[1]) if ts else None,
            payload=hat.event.common.EventPayloadJson(spec['payload']))
        return hat_slave.data_msg_from_event(key, event)

    async def command(self, line):
        word, _, rest = line.partition(' ')
        if word == 'send':
            addr, _, expr = rest.partition(' ')
            # The connection may still be opening (the slave answered the reset).
            while int(addr) not in self.conns:
                await asyncio.sleep(0.01)
            await self.conns[int(addr)].send(eval(expr, dict(SCOPE)))
        elif word == 'hatdata':
            msg = self.hat_data(json.loads(rest))
            for data in self.encoder.encode([msg]):
                for received in self.encoder.decode(data):
                    say('HATDATA ' + json.dumps(to_json(received)))
        else:
            raise ValueError(f'unknown command {line}')
        say('OK ' + line)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--port', required=True)
    parser.add_argument('--link', default='unbalanced')
    parser.add_argument('--addresses', default='1')
    parser.add_argument('--address-size', default='ONE')
    parser.add_argument('--cause-size', default='TWO')
    parser.add_argument('--asdu-size', default='TWO')
    parser.add_argument('--io-size', default='THREE')
    parser.add_argument('--direction', default='A_TO_B')
    args = parser.parse_args()
    master = Master(args)
    await master.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        await master.command(line.decode().strip())
    for task in master.tasks:
        task.cancel()
    await asyncio.gather(*master.tasks, return_exceptions=True)
    await master.link.async_close()


if __name__ == '__main__':
    asyncio.run(main())
