"""IEC 60870-5-103 protection devices for the iec103_master tests, built on hat-drivers'
unbalanced slave link (hat.drivers.iec60870.link) and hat's own 103 encoder
(hat.drivers.iec60870.encodings.iec103); hat has no 103 slave driver, so this is one.

    slave.py --port PATH [--addresses 1,2] [--baudrate 115200]

One hat slave connection per address on one serial port (a pty end). Prints, one line
each, flushed:
    READY                      once the port is open
    CONNECT <addr>             a connection opened (the master reset the link)
    DISCONNECT <addr>          it closed
    ASDU <addr> <json>         per ASDU received, decoded by hat (named tuples as
                               objects with "_class", enums by member name)
    HAT <json>                 an event hat-gateway 0.6.48's iec103 master registers for
                               an ASDU this script sends ({"type": tail after the
                               prefix, "payload", "source_timestamp": [s, us] or null});
                               printed before the ASDU is queued
    OK <command>               once a stdin command is done

Stdin commands, one a line:
    send <addr> <python expr>  a list of hat iec103 ASDUs (names `c` (hat's iec103
                               encoding module), `T4` (the current time as a CP32 time),
                               `io(ft, inf)` in scope), queued as class 1 data
    gi <addr> <python expr>    the ASDUs sent (with cause GENERAL_INTERROGATION) before
                               the termination when <addr> is interrogated
    raw <addr> <hex>           these octets queued as one ASDU (for malformed input)
    reply <mode>               how general commands are answered: `positive`,
                               `negative`, `none`
    mute <addr>                close <addr>'s connection and stop answering for it
    unmute <addr>              answer for <addr> again (a new connection)
EOF on stdin ends the process.
"""

import argparse
import asyncio
import datetime
import enum
import json
import sys

from hat import aio
from hat.drivers import iec103
from hat.drivers import serial
from hat.drivers.iec60870 import link
from hat.drivers.iec60870.encodings import iec103 as c
from hat.drivers.iec60870.encodings.iec103 import encoder as iec103_encoder
from hat.gateway.devices.iec103 import master as hat_master


def say(line):
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


def to_json(x):
    if isinstance(x, enum.Enum):
        return x.name
    if isinstance(x, (bytes, bytearray, memoryview)):
        return list(bytes(x))
    if isinstance(x, tuple) and hasattr(x, '_asdict'):
        out = {'_class': type(x).__name__}
        for k, v in x._asdict().items():
            out[k] = to_json(v)
        return out
    if isinstance(x, (list, tuple)):
        return [to_json(i) for i in x]
    return x


def io(function_type, information_number):
    return c.IoAddress(function_type=function_type,
                       information_number=information_number)


def t4():
    t = c.time_from_datetime(datetime.datetime.now())
    return t._replace(size=c.TimeSize.FOUR, day_of_week=None,
                      day_of_month=None, months=None, years=None)


def try_cause(cause, enum_cls):
    value = cause.value if isinstance(cause, enum.Enum) else cause
    try:
        return enum_cls(value)
    except ValueError:
        return value


def hat_data(asdu):
    """hat's MasterConnection: the Data its data_cb gets for an ASDU."""
    cause = try_cause(asdu.cause, iec103.DataCause)
    for i in asdu.ios:
        if asdu.type in (c.AsduType.MEASURANDS_1, c.AsduType.MEASURANDS_2):
            values = {}
            for n, element in enumerate(i.elements):
                values[iec103.MeasurandType((asdu.type.value, n))] = element.value
            yield iec103.Data(asdu.address, i.address, cause,
                              iec103.MeasurandValues(values))
        elif asdu.type == c.AsduType.TIME_TAGGED_MESSAGE:
            if asdu.cause in (c.Cause.GENERAL_COMMAND,
                              c.Cause.GENERAL_COMMAND_NACK):
                continue
            for element in i.elements:
                yield iec103.Data(asdu.address, i.address, cause,
                                  element.value)
        elif asdu.type in (c.AsduType.TIME_TAGGED_MESSAGE_WITH_RELATIVE_TIME,
                           c.AsduType.TIME_TAGGED_MEASURANDS_WITH_RELATIVE_TIME):  # NOQA
            for element in i.elements:
                yield iec103.Data(asdu.address, i.address, cause,
                                  element.value)


class Slave:

    def __init__(self, args):
        self.args = args
        self.encoder = iec103_encoder.Encoder()
        self.addresses = [int(a) for a in args.addresses.split(',')]
        self.conns = {}
        self.tasks = {}
        self.reply = 'positive'
        self.gi = {}
        self.link = None

    async def start(self):
        self.link = await link.create_slave_link(
            port=self.args.port,
            address_size=link.AddressSize.ONE,
            silent_interval=0.001,
            baudrate=self.args.baudrate,
            bytesize=serial.ByteSize.EIGHTBITS,
            parity=serial.Parity.NONE,
            stopbits=serial.StopBits.ONE)
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
            await asyncio.gather(task, return_exceptions=True)

    async def serve(self, addr):
        while True:
            conn = None
            try:
                conn = await self.link.open_connection(addr=addr,
                                                       keep_alive_timeout=30)
                self.conns[addr] = conn
                say(f'CONNECT {addr}')
                while True:
                    data = await conn.receive()
                    asdu, _ = self.encoder.decode_asdu(data)
                    say(f'ASDU {addr} ' + json.dumps(to_json(asdu)))
                    await self.answer(addr, conn, asdu)
            except ConnectionError:
                pass
            finally:
                if self.conns.pop(addr, None) is not None:
                    say(f'DISCONNECT {addr}')
                if conn is not None:
                    await aio.uncancellable(conn.async_close())

    async def send(self, addr, asdus):
        for asdu in asdus:
            encoded = self.encoder.encode_asdu(asdu)
            # What hat's master receives: the ASDU after hat's encoding.
            received, _ = self.encoder.decode_asdu(encoded)
            for data in hat_data(received):
                try:
                    events = list(hat_master._events_from_data(data, addr,
                                                               ('p',)))
                except Exception as e:
                    say('HAT ' + json.dumps({'error': str(e)}))
                    continue
                for event in events:
                    ts = event.source_timestamp
                    say('HAT ' + json.dumps({
                        'type': '/'.join(event.type[1:]),
                        'payload': event.payload.data,
                        'source_timestamp': [ts.s, ts.us] if ts else None}))
            await self.conns[addr].send(encoded)

    async def answer(self, addr, conn, asdu):
        if asdu.type == c.AsduType.GENERAL_COMMAND:
            if self.reply == 'none':
                return
            element = asdu.ios[0].elements[0]
            cause = (c.Cause.GENERAL_COMMAND if self.reply == 'positive'
                     else c.Cause.GENERAL_COMMAND_NACK)
            await self.send(addr, [c.ASDU(
                type=c.AsduType.TIME_TAGGED_MESSAGE, cause=cause,
                address=asdu.address,
                ios=[c.IO(address=asdu.ios[0].address,
                          elements=[c.IoElement_TIME_TAGGED_MESSAGE(
                              c.DoubleWithTimeValue(
                                  value=element.value, time=t4(),
                                  supplementary=element.return_identifier))])])])
        elif asdu.type == c.AsduType.GENERAL_INTERROGATION:
            scan = asdu.ios[0].elements[0].scan_number
            await self.send(addr, [i._replace(address=asdu.address)
                                   for i in self.gi.get(addr, [])])
            await self.send(addr, [c.ASDU(
                type=c.AsduType.GENERAL_INTERROGATION_TERMINATION,
                cause=c.Cause.TERMINATION_OF_GENERAL_INTERROGATION,
                address=asdu.address,
                ios=[c.IO(address=asdu.ios[0].address,
                          elements=[c.IoElement_GENERAL_INTERROGATION_TERMINATION(  # NOQA
                              scan)])])])

    async def command(self, line):
        word, _, rest = line.partition(' ')
        scope = {'c': c, 'T4': t4(), 'io': io}
        if word == 'send':
            addr, _, expr = rest.partition(' ')
            await self.send(int(addr), eval(expr, scope))
        elif word == 'gi':
            addr, _, expr = rest.partition(' ')
            self.gi[int(addr)] = eval(expr, scope)
        elif word == 'raw':
            addr, _, data = rest.partition(' ')
            await self.conns[int(addr)].send(bytes.fromhex(data))
        elif word == 'reply':
            self.reply = rest.strip()
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
    parser.add_argument('--addresses', default='1')
    parser.add_argument('--baudrate', type=int, default=115200)
    args = parser.parse_args()
    slave = Slave(args)
    await slave.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        await slave.command(line.decode().strip())
    for addr in list(slave.tasks):
        await slave.mute(addr)
    await slave.link.async_close()


if __name__ == '__main__':
    asyncio.run(main())
