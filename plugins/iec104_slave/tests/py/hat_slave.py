"""hat-gateway 0.6.48's own IEC 104 slave device, for the differential tests.

Usage: hat_slave.py SETUP_JSON, where SETUP_JSON is
`{"conf": <device entry>, "latest": [[tail, payload, source_timestamp], ...]}`; the
latest events answer the device's start-up query. The device runs under the prefix
`gateway/gw/iec104_slave/dev` with a stand-in eventer client that prints every
registered event as `REG <json>`. Prints `READY` once listening; then takes on stdin

    event [TAIL, PAYLOAD, SOURCE_TIMESTAMP]   hands the event to process_event

each acknowledged with `OK <line>`.
"""

import asyncio
import itertools
import json
import sys

import hat.event.common as common
from hat.gateway.devices.iec104 import slave

PREFIX = ('gateway', 'gw', 'iec104_slave', 'dev')
ids = itertools.count(1)


def out(line):
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


def event(tail, payload, source_timestamp):
    return common.Event(
        id=common.EventId(server=1, session=1, instance=next(ids)),
        type=(*PREFIX, *tail.split('/')),
        timestamp=common.now(),
        source_timestamp=(common.timestamp_from_float(source_timestamp)
                          if source_timestamp is not None else None),
        payload=common.EventPayloadJson(payload))


class Client:

    def __init__(self, latest):
        self._latest = latest

    async def query(self, params):
        return common.QueryResult(events=self._latest, more_follows=False)

    async def register(self, events, with_response=False):
        for e in events:
            ts = (common.timestamp_to_float(e.source_timestamp)
                  if e.source_timestamp else None)
            out('REG ' + json.dumps({'tail': '/'.join(e.type[len(PREFIX):]),
                                     'payload': e.payload.data,
                                     'source_timestamp': ts}))


async def main():
    setup = json.loads(sys.argv[1])
    client = Client([event(*e) for e in setup['latest']])
    device = await slave.create(setup['conf'], client, PREFIX)
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
        word, _, rest = line.partition(' ')
        if word == 'event':
            await device.process_event(event(*json.loads(rest)))
        out(f'OK {line}')
    await device.async_close()


if __name__ == '__main__':
    asyncio.run(main())
