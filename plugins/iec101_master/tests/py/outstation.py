"""IEC 60870-5-101 outstations for the iec101_master tests, built on hat-drivers' iec101
and iec60870.link, on one serial port (a pty end).

    outstation.py --port PATH [--link unbalanced|balanced] [--addresses 1,2]
                  [--address-size ONE] [--cause-size TWO] [--asdu-size TWO]
                  [--io-size THREE] [--direction B_TO_A]

Unbalanced: one hat slave connection per address (each opens once our master resets
its link); balanced: one hat balanced connection per address with `--direction`.
Prints, one line each, flushed:
    READY                      once the port is open
    CONNECT <addr>             a connection opened (the master reset the link)
    DISCONNECT <addr>          it closed
    MSG <addr> <json>          per message received, hat's NamedTuple as an object with
                               "_type" (class name) and its fields, enums by member
                               name, bytes as lists, non-finite floats as strings
    OK <command>               once a stdin command is done

Stdin commands, one a line:
    send <addr> <python expr>  a list of hat iec101 messages (names `iec101`, `T` (a
                               CP56 time of 2024-02-29 23:59:58.123 UTC), `T24` (CP24),
                               `IQ`, `MQ`, `PQ`, `CQ` in scope) sent on <addr>'s
                               connection; before the OK one `HAT <json>` line per
                               message: the event hat-gateway 0.6.48's master registers
                               for it once hat's codec carried it ({"type": tail after
                               the prefix, "payload", "source_timestamp": [s, us] or
                               null}, {"skip": true}, or {"error": text})
    hatmsg <json>              prints `HATMSG <json>`: the message hat-gateway's master
                               sends for the event {"type": tail, "payload"}, as an
                               outstation receives it
    reply <mode>               how commands and (counter) interrogations are answered:
                               `positive` (confirmation, then termination), `negative`,
                               `none`; each answer is preceded by its `HAT` line
    garbage <hex>              writes these octets straight onto the line
    mute <addr>                close <addr>'s connection and stop answering for it
    unmute <addr>              answer for <addr> again (a new connection)
EOF on stdin ends the process.
"""

import argparse
import asyncio
import datetime
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
from hat.gateway.devices.iec101 import master as hat_master
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


T = iec101.time_from_datetime(
    datetime.datetime(2024, 2, 29, 23, 59, 58, 123000, tzinfo=datetime.timezone.utc))

SCOPE = {
    'iec101': iec101,
    'T': T,
    'T24': T._replace(size=iec101.TimeSize.THREE, hours=None, day_of_week=None,
                      day_of_month=None, months=None, years=None, summer_time=None),
    'IQ': iec101.IndicationQuality(invalid=False, not_topical=False,
                                   substituted=False, blocked=False),
    'MQ': iec101.MeasurementQuality(invalid=False, not_topical=False,
                                    substituted=False, blocked=False, overflow=False),
    'PQ': iec101.ProtectionQuality(invalid=False, not_topical=False,
                                   substituted=False, blocked=False, time_invalid=False),
    'CQ': iec101.CounterQuality(invalid=False, adjusted=False, overflow=False, sequence=0),
}


class Outstation:

    def __init__(self, args):
        self.args = args
        self.encoder = iec101_encoder.Encoder(
            cause_size=iec101.CauseSize[args.cause_size],
            asdu_address_size=iec101.AsduAddressSize[args.asdu_size],
            io_address_size=iec101.IoAddressSize[args.io_size])
        self.addresses = [int(a) for a in args.addresses.split(',')]
        self.conns = {}
        self.tasks = {}
        self.reply = 'positive'
        self.link = None

    async def start(self):
        kwargs = dict(port=self.args.port,
                      address_size=link.AddressSize[self.args.address_size],
                      silent_interval=0.001,
                      baudrate=self.args.baudrate,
                      bytesize=serial.ByteSize.EIGHTBITS,
                      parity=serial.Parity.NONE,
                      stopbits=serial.StopBits.ONE)
        if self.args.link == 'balanced':
            self.link = await link.create_balanced_link(**kwargs)
        else:
            self.link = await link.create_slave_link(**kwargs)
        for addr in self.addresses:
            self.unmute(addr)
        say('READY')

    def unmute(self, addr):
        if addr not in self.tasks or self.tasks[addr].done():
            self.tasks[addr] = asyncio.ensure_future(self.serve(addr))

    async def mute(self, addr):
        task = self.tasks.pop(addr, None)
        if task:
            task.cancel()
            with_suppress = asyncio.gather(task, return_exceptions=True)
            await with_suppress

    async def open(self, addr):
        if self.args.link == 'balanced':
            return await self.link.open_connection(
                direction=link.Direction[self.args.direction], addr=addr,
                response_timeout=0.5, send_retry_count=2, status_delay=1)
        return await self.link.open_connection(addr=addr, keep_alive_timeout=30)

    async def serve(self, addr):
        while True:
            raw = None
            try:
                raw = await self.open(addr)
                conn = iec101.Connection(
                    conn=raw,
                    cause_size=iec101.CauseSize[self.args.cause_size],
                    asdu_address_size=iec101.AsduAddressSize[self.args.asdu_size],
                    io_address_size=iec101.IoAddressSize[self.args.io_size])
                self.conns[addr] = conn
                say(f'CONNECT {addr}')
                while True:
                    msgs = await conn.receive()
                    for msg in msgs:
                        say(f'MSG {addr} ' + json.dumps(to_json(msg)))
                        await self.answer(addr, conn, msg)
            except ConnectionError:
                pass
            finally:
                if self.conns.pop(addr, None) is not None:
                    say(f'DISCONNECT {addr}')
                if raw is not None:
                    await aio.uncancellable(raw.async_close())

    def hat_events(self, addr, msg):
        received = [m for data in self.encoder.encode([msg])
                    for m in self.encoder.decode(data)]
        out = []
        for m in received:
            if isinstance(m, iec101.ClockSyncMsg):
                out.append({'skip': True})
                continue
            try:
                event = hat_master._msg_to_event(('p',), addr, m)
            except Exception as e:
                out.append({'error': str(e)})
                continue
            ts = event.source_timestamp
            out.append({'type': '/'.join(event.type[1:]),
                        'payload': event.payload.data,
                        'source_timestamp': [ts.s, ts.us] if ts else None})
        return out

    async def answer(self, addr, conn, msg):
        if self.reply == 'none':
            return
        if not isinstance(msg, (iec101.CommandMsg, iec101.InterrogationMsg,
                                iec101.CounterInterrogationMsg)):
            return
        negative = self.reply == 'negative'
        replies = [msg._replace(cause=iec101.CommandResCause.ACTIVATION_CONFIRMATION,
                                is_negative_confirm=negative)]
        if not negative:
            replies.append(msg._replace(cause=iec101.CommandResCause.ACTIVATION_TERMINATION,
                                        is_negative_confirm=False))
        for reply in replies:
            for event in self.hat_events(addr, reply):
                say('HAT ' + json.dumps(event))
            await conn.send([reply])

    def hat_msg(self, spec):
        segments = spec['type'].split('/')
        event = hat.event.common.Event(
            id=hat.event.common.EventId(server=0, session=0, instance=0),
            type=('p', *segments),
            timestamp=hat.event.common.Timestamp(s=0, us=0),
            source_timestamp=None,
            payload=hat.event.common.EventPayloadJson(spec['payload']))
        suffix = segments[3:]
        if suffix[0] == 'command':
            key = hat_common.CommandKey(cmd_type=hat_common.CommandType(suffix[1]),
                                        asdu_address=int(suffix[2]),
                                        io_address=int(suffix[3]))
            return hat_master._command_from_event(key, event)
        if suffix[0] == 'interrogation':
            return hat_master._interrogation_from_event(int(suffix[1]), event)
        return hat_master._counter_interrogation_from_event(int(suffix[1]), event)

    async def command(self, line):
        word, _, rest = line.partition(' ')
        if word == 'send':
            addr, _, expr = rest.partition(' ')
            addr = int(addr)
            msgs = eval(expr, dict(SCOPE))
            # The connection may still be opening.
            while addr not in self.conns:
                await asyncio.sleep(0.01)
            for msg in msgs:
                for event in self.hat_events(addr, msg):
                    say('HAT ' + json.dumps(event))
            await self.conns[addr].send(msgs)
        elif word == 'hatmsg':
            msg = self.hat_msg(json.loads(rest))
            for data in self.encoder.encode([msg]):
                for received in self.encoder.decode(data):
                    say('HATMSG ' + json.dumps(to_json(received)))
        elif word == 'reply':
            self.reply = rest.strip()
        elif word == 'garbage':
            # Under the link layer: the serial endpoint of hat's link endpoint.
            await self.link._endpoint._endpoint.write(bytes.fromhex(rest.strip()))
        elif word == 'mute':
            await self.mute(int(rest))
        elif word == 'unmute':
            self.unmute(int(rest))
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
    parser.add_argument('--direction', default='B_TO_A')
    parser.add_argument('--baudrate', type=int, default=115200)
    args = parser.parse_args()
    outstation = Outstation(args)
    await outstation.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        await outstation.command(line.decode().strip())
    for addr in list(outstation.tasks):
        await outstation.mute(addr)
    await outstation.link.async_close()


if __name__ == '__main__':
    asyncio.run(main())
