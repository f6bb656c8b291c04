"""An IEC 60870-5-104 master for the iec104_slave tests, built on hat-drivers' iec104.

Every received message is printed as one line `MSG <json>`; commands come on stdin, one
a line, each acknowledged with `OK <command>` once done:

    connect PORT [W [T2]]      connect to 127.0.0.1:PORT with receive window W and
                               supervisory timeout T2 (a large W and T2 make the master
                               withhold acknowledgements); prints CONNECTED LOCAL_PORT
                               or CONNECT_FAILED
    gi ASDU [CAUSE]            interrogation (cause default ACTIVATION)
    ci ASDU [CAUSE]            counter interrogation
    clock ASDU                 clock synchronisation activation
    command JSON               a command message (see `command_msg`)
    asdu HEX                   any ASDU bytes sent in a well-formed I-frame
    raw HEX                    bytes written straight to the TCP stream
    close                      close the connection
When the connection ends (either side), `CLOSED` is printed.
"""

import asyncio
import datetime
import enum
import json
import logging
import math
import sys

from hat.drivers import iec104
from hat.drivers import net


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


def out(line):
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


def command_msg(spec):
    t = spec['type']
    value = spec['value']
    select = spec.get('select', False)
    qualifier = spec.get('qualifier', 0)
    if t == 'single':
        cmd = iec104.SingleCommand(value=iec104.SingleValue[value],
                                   select=select, qualifier=qualifier)
    elif t == 'double':
        cmd = iec104.DoubleCommand(value=iec104.DoubleValue[value],
                                   select=select, qualifier=qualifier)
    elif t == 'regulating':
        cmd = iec104.RegulatingCommand(value=iec104.RegulatingValue[value],
                                       select=select, qualifier=qualifier)
    elif t == 'normalized':
        cmd = iec104.NormalizedCommand(value=iec104.NormalizedValue(value),
                                       select=select)
    elif t == 'scaled':
        cmd = iec104.ScaledCommand(value=iec104.ScaledValue(value),
                                   select=select)
    elif t == 'floating':
        cmd = iec104.FloatingCommand(value=iec104.FloatingValue(value),
                                     select=select)
    elif t == 'bitstring':
        cmd = iec104.BitstringCommand(value=iec104.BitstringValue(bytes(value)))
    else:
        raise ValueError(t)
    time = None
    if spec.get('time') is not None:
        time = iec104.time_from_datetime(
            datetime.datetime.fromtimestamp(spec['time'], datetime.timezone.utc))
    cause = spec.get('cause', 'ACTIVATION')
    cause = (iec104.CommandReqCause[cause] if isinstance(cause, str)
             else cause)
    return iec104.CommandMsg(is_test=spec.get('is_test', False),
                             originator_address=0,
                             asdu_address=spec['asdu_address'],
                             io_address=spec['io_address'],
                             command=cmd,
                             is_negative_confirm=False,
                             time=time,
                             cause=cause)


class Master:

    def __init__(self):
        self.conn = None
        self.raw = None
        self.receiver = None

    async def connect(self, port, w, t2):
        try:
            self.conn = await iec104.connect(
                net.TcpAddress('127.0.0.1', port),
                receive_window_size=w, supervisory_timeout=t2,
                response_timeout=10)
        except Exception:
            out('CONNECT_FAILED')
            return
        out(f'CONNECTED {self.conn.info.local_addr.port}')
        self.receiver = asyncio.ensure_future(self.receive(self.conn))

    async def receive(self, conn):
        try:
            while True:
                msgs = await conn.receive()
                for msg in msgs:
                    out('MSG ' + json.dumps(to_json(msg)))
        except Exception as e:
            sys.stderr.write(f'master: connection ended: {e!r}\n')
        out('CLOSED')

    async def command(self, line):
        word, _, rest = line.partition(' ')
        args = rest.split()
        if word == 'connect':
            w = int(args[1]) if len(args) > 1 else 1
            t2 = float(args[2]) if len(args) > 2 else 0.05
            await self.connect(int(args[0]), w, t2)
        elif word in ('gi', 'ci'):
            cause = args[1] if len(args) > 1 else 'ACTIVATION'
            cause = (iec104.CommandReqCause[cause] if not cause.isdigit()
                     else int(cause))
            if word == 'gi':
                msg = iec104.InterrogationMsg(
                    is_test=False, originator_address=0,
                    asdu_address=int(args[0]), request=20,
                    is_negative_confirm=False, cause=cause)
            else:
                msg = iec104.CounterInterrogationMsg(
                    is_test=False, originator_address=0,
                    asdu_address=int(args[0]), request=5,
                    freeze=iec104.FreezeCode.READ,
                    is_negative_confirm=False, cause=cause)
            await self.conn.send([msg])
        elif word == 'clock':
            now = iec104.time_from_datetime(
                datetime.datetime.now(datetime.timezone.utc))
            msg = iec104.ClockSyncMsg(
                is_test=False, originator_address=0,
                asdu_address=int(args[0]), time=now,
                is_negative_confirm=False,
                cause=iec104.ClockSyncReqCause.ACTIVATION)
            await self.conn.send([msg])
        elif word == 'command':
            await self.conn.send([command_msg(json.loads(rest))])
        elif word == 'asdu':
            # Any ASDU bytes in a well-formed I-frame (hat's APCI connection).
            await self.conn._conn.send(bytes.fromhex(rest))
            await self.conn.drain()
        elif word == 'raw':
            await self.conn.drain()
            # The transport under hat's APCI connection (private, test only).
            transport = self.conn._conn._transport
            await transport._conn.write(bytes.fromhex(rest))
        elif word == 'close':
            await self.conn.async_close()
            if self.receiver:
                await self.receiver
                self.receiver = None
        else:
            raise ValueError(word)


async def main():
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    master = Master()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                 sys.stdin)
    out('READY')
    while True:
        line = await reader.readline()
        if not line:
            break
        line = line.decode().strip()
        if not line:
            continue
        try:
            await master.command(line)
        except Exception as e:
            out(f'ERROR {line}: {e!r}')
            continue
        out(f'OK {line}')


if __name__ == '__main__':
    asyncio.run(main())
