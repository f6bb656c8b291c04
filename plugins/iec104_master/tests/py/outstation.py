"""An IEC 60870-5-104 outstation for the iec104_master tests, built on hat-drivers' iec104.

Listens on 127.0.0.1 (port 0 = any free one, or --port N) and prints, one line each,
flushed:
    PORT <n>                  once listening (again after `start`)
    CONNECT / DISCONNECT      per master connection
    MSG <json>                per message received, hat's NamedTuple as an object with
                              "_type" (class name) and its fields, enums by member
                              name, bytes as lists, non-finite floats as strings
    OK <command>              once a stdin command is done

Stdin commands, one a line:
    send <python expression>  a list of hat iec104 messages (names `iec104`, `T`
                              (a CP56 time of 2024-02-29 23:59:58.123 UTC), `IQ`, `MQ`,
                              `PQ`, `CQ` (all-false qualities) in scope), sent to every
                              connection; before the OK, one `HAT <json>` line per
                              message: the event hat-gateway 0.6.48's master makes of it
                              once hat's codec carried it
                              ({"type": tail after the prefix, "payload", "source_timestamp":
                              [s, us] or null}, {"skip": true} for what it skips, or
                              {"error": text})
    hatmsg <json>             prints `HATMSG <json>`: the message hat-gateway's master
                              makes of the event, as an outstation receives it (through
                              hat's codec), for the event {"type": tail, "payload",
                              "source_timestamp": [s, us] or null}
    asdu <hex>                raw ASDU octets sent in an I-frame to every connection
    reply <mode>              how commands and (counter) interrogations are answered:
                              `positive` (default: activation confirmation, then
                              termination), `negative` (negative confirmation only),
                              `none`; each answer is preceded by its `HAT` line
    drop                      close every connection
    stop                      stop listening and close every connection
    start                     listen again on the same port
EOF on stdin ends the process.
"""

import argparse
import asyncio
import datetime
import enum
import json
import math
import sys

from hat.drivers import iec104
from hat.drivers import net
from hat.drivers.iec104 import encoder as iec104_encoder
from hat.gateway.devices.iec104 import master as hat_master
import hat.event.common


HAT_ENCODER = iec104_encoder.Encoder()


def hat_events(msg):
    """What hat-gateway's master registers for `msg` once hat's own codec carried it."""
    received = [m for data in HAT_ENCODER.encode([msg]) for m in HAT_ENCODER.decode(data)]
    return [hat_event(m) for m in received]


def hat_event(msg):
    if isinstance(msg, iec104.ClockSyncMsg):
        return {'skip': True}
    try:
        event = hat_master._msg_to_event(('p',), msg)
    except Exception as e:
        return {'error': str(e)}
    ts = event.source_timestamp
    return {'type': '/'.join(event.type[1:]),
            'payload': event.payload.data,
            'source_timestamp': [ts.s, ts.us] if ts else None}


def hat_msg(spec):
    ts = spec['source_timestamp']
    event = hat.event.common.Event(
        id=hat.event.common.EventId(server=0, session=0, instance=0),
        type=('p', *spec['type'].split('/')),
        timestamp=hat.event.common.Timestamp(s=0, us=0),
        source_timestamp=hat.event.common.Timestamp(s=ts[0], us=ts[1]) if ts else None,
        payload=hat.event.common.EventPayloadJson(spec['payload']))
    return hat_master._msg_from_event(('p',), event)


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


def say(line):
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


SCOPE = {
    'iec104': iec104,
    'T': iec104.time_from_datetime(
        datetime.datetime(2024, 2, 29, 23, 59, 58, 123000, tzinfo=datetime.timezone.utc)),
    'IQ': iec104.IndicationQuality(invalid=False, not_topical=False,
                                   substituted=False, blocked=False),
    'MQ': iec104.MeasurementQuality(invalid=False, not_topical=False,
                                    substituted=False, blocked=False, overflow=False),
    'PQ': iec104.ProtectionQuality(invalid=False, not_topical=False,
                                   substituted=False, blocked=False, time_invalid=False),
    'CQ': iec104.CounterQuality(invalid=False, adjusted=False, overflow=False, sequence=0),
}


class Outstation:

    def __init__(self, port):
        self.port = port
        self.server = None
        self.conns = set()
        self.reply = 'positive'

    async def start(self):
        self.server = await iec104.listen(self.on_connection,
                                          net.TcpAddress('127.0.0.1', self.port))
        self.port = self.server.info.addresses[0].port
        say(f'PORT {self.port}')

    async def stop(self):
        if self.server:
            await self.server.async_close()
            self.server = None
        await self.drop()

    async def drop(self):
        for conn in list(self.conns):
            await conn.async_close()

    async def on_connection(self, conn):
        self.conns.add(conn)
        say('CONNECT')
        try:
            while True:
                msgs = await conn.receive()
                for msg in msgs:
                    say('MSG ' + json.dumps(to_json(msg)))
                    await self.answer(conn, msg)
        except ConnectionError:
            pass
        finally:
            self.conns.discard(conn)
            say('DISCONNECT')
            conn.close()

    async def answer(self, conn, msg):
        if self.reply == 'none':
            return
        if not isinstance(msg, (iec104.CommandMsg, iec104.InterrogationMsg,
                                iec104.CounterInterrogationMsg)):
            return
        negative = self.reply == 'negative'
        confirm = msg._replace(cause=iec104.CommandResCause.ACTIVATION_CONFIRMATION,
                               is_negative_confirm=negative)
        replies = [confirm]
        if not negative:
            replies.append(msg._replace(cause=iec104.CommandResCause.ACTIVATION_TERMINATION,
                                        is_negative_confirm=False))
        for reply in replies:
            for event in hat_events(reply):
                say('HAT ' + json.dumps(event))
            await conn.send([reply])

    async def command(self, line):
        word, _, rest = line.partition(' ')
        if word == 'send':
            msgs = eval(rest, dict(SCOPE))
            for msg in msgs:
                for event in hat_events(msg):
                    say('HAT ' + json.dumps(event))
            for conn in list(self.conns):
                await conn.send(msgs)
                await conn.drain()
        elif word == 'asdu':
            data = bytes.fromhex(rest.strip())
            for conn in list(self.conns):
                # The APCI connection under hat's iec104.Connection sends opaque ASDUs.
                await conn._conn.send(data)
                await conn.drain()
        elif word == 'hatmsg':
            # As an outstation receives it: through hat's codec.
            msg = hat_msg(json.loads(rest))
            for data in HAT_ENCODER.encode([msg]):
                for received in HAT_ENCODER.decode(data):
                    say('HATMSG ' + json.dumps(to_json(received)))
        elif word == 'reply':
            self.reply = rest.strip()
        elif word == 'drop':
            await self.drop()
        elif word == 'stop':
            await self.stop()
        elif word == 'start':
            await self.start()
        else:
            raise ValueError(f'unknown command {line}')
        say('OK ' + line)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--port', type=int, default=0)
    args = parser.parse_args()
    outstation = Outstation(args.port)
    await outstation.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        await outstation.command(line.decode().strip())
    await outstation.stop()


if __name__ == '__main__':
    asyncio.run(main())
