"""hat-gateway 0.6.48's own iec103 master device (hat.gateway.devices.iec103.master) on a
serial port, with a stand-in event client, as the reference the device tests compare
with.

    hat_master.py --conf JSON [--enabled 1,2]

The start-up query is answered with `system/remote_device/<a>/enable` true for every
address of --enabled. Prints, one line each, flushed:
    EVENT <json>               per registered event: {"type": tail after the prefix,
                               "payload", "source_timestamp": [s, us] or null}
    OK <command>               once a stdin command is done

Stdin commands, one a line:
    event <tail> <json>        process_event of a `system/...` event with that payload
    close                      close the device (its last events are printed first)
EOF on stdin closes the device and ends the process.
"""

import argparse
import asyncio
import json
import sys

import hat.event.common
from hat.gateway.devices.iec103 import master as hat_master

PREFIX = ('p',)


def say(line):
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


def event(tail, payload):
    return hat.event.common.Event(
        id=hat.event.common.EventId(server=0, session=0, instance=0),
        type=(*PREFIX, *tail.split('/')),
        timestamp=hat.event.common.now(),
        source_timestamp=None,
        payload=hat.event.common.EventPayloadJson(payload))


class Client:

    def __init__(self, enabled):
        self.enabled = enabled

    async def query(self, params):
        events = [event(f'system/remote_device/{a}/enable', True)
                  for a in self.enabled]
        events = [e for e in events if e.type in params.event_types]
        return hat.event.common.QueryResult(events=events, more_follows=False)

    async def register(self, events, with_response=False):
        for e in events:
            ts = e.source_timestamp
            say('EVENT ' + json.dumps({
                'type': '/'.join(e.type[len(PREFIX):]),
                'payload': e.payload.data if e.payload else None,
                'source_timestamp': [ts.s, ts.us] if ts else None}))


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--conf', required=True)
    parser.add_argument('--enabled', default='')
    args = parser.parse_args()
    enabled = [int(a) for a in args.enabled.split(',') if a]
    device = await hat_master.create(json.loads(args.conf), Client(enabled),
                                     PREFIX)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().strip()
        if not line or line == 'close':
            break
        word, _, rest = line.partition(' ')
        if word == 'event':
            tail, _, payload = rest.partition(' ')
            await device.process_event(event(tail, json.loads(payload)))
        say('OK ' + line)
    await device.async_close()
    say('OK close')


if __name__ == '__main__':
    asyncio.run(main())
