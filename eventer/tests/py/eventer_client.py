"""Drive the real hat-event eventer client for the Rust interop tests.

Usage: python eventer_client.py PORT

Reads one JSON command per line on stdin, writes one JSON object per line on stdout.
Callbacks of the client are written as they happen, so their order relative to
command results is the order in which the Python client saw them.

Commands (``op``):
  connect   {name, subscriptions, token?, server_id?, persisted?}
            -> {"kind": "connected", "status"} | {"kind": "init_error", "error"}
  register  {events: [{type, payload?}], with_response}
            -> {"kind": "registered", "events": [...] | null}
  query     {params: {kind: "latest", event_types?}}
            -> {"kind": "query_result", "events", "more_follows"}
  close     -> {"kind": "closed"} and exit
Callbacks:  {"kind": "status", "status"}, {"kind": "events", "events"}
Failures:   {"kind": "error", "error"} (then exit 1)
"""

import asyncio
import json
import sys

from hat.drivers import net
from hat.event import common
from hat.event import eventer


def out(obj):
    sys.stdout.write(json.dumps(obj) + '\n')
    sys.stdout.flush()


def event_to_json(event):
    payload = None
    if isinstance(event.payload, common.EventPayloadJson):
        payload = {'kind': 'json', 'data': event.payload.data}
    elif isinstance(event.payload, common.EventPayloadBinary):
        payload = {'kind': 'binary', 'type': event.payload.type,
                   'hex': event.payload.data.hex()}
    ts = event.source_timestamp
    return {'id': [event.id.server, event.id.session, event.id.instance],
            'type': list(event.type),
            'timestamp': [event.timestamp.s, event.timestamp.us],
            'source_timestamp': [ts.s, ts.us] if ts else None,
            'payload': payload}


def register_event_from_json(obj):
    payload = obj.get('payload')
    return common.RegisterEvent(
        type=tuple(obj['type']),
        source_timestamp=None,
        payload=(common.EventPayloadJson(payload)
                 if payload is not None else None))


async def main(port):
    loop = asyncio.get_running_loop()
    client = None

    def status_cb(_client, status):
        out({'kind': 'status', 'status': status.name})

    def events_cb(_client, events):
        out({'kind': 'events', 'events': [event_to_json(e) for e in events]})

    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        cmd = json.loads(line)
        op = cmd['op']
        if op == 'connect':
            try:
                client = await eventer.connect(
                    net.TcpAddress('127.0.0.1', port), cmd['name'],
                    client_token=cmd.get('token'),
                    subscriptions=[tuple(s) for s in cmd['subscriptions']],
                    server_id=cmd.get('server_id'),
                    persisted=cmd.get('persisted', False),
                    status_cb=status_cb, events_cb=events_cb)
                out({'kind': 'connected', 'status': client.status.name})
            except eventer.EventerInitError as e:
                out({'kind': 'init_error', 'error': str(e)})
        elif op == 'register':
            result = await client.register(
                [register_event_from_json(e) for e in cmd['events']],
                with_response=cmd['with_response'])
            out({'kind': 'registered',
                 'events': ([event_to_json(e) for e in result]
                            if result is not None else None)})
        elif op == 'query':
            params = cmd['params']
            if params['kind'] != 'latest':
                raise Exception(f"unsupported query {params['kind']}")
            types = params.get('event_types')
            result = await client.query(common.QueryLatestParams(
                event_types=([tuple(t) for t in types]
                             if types is not None else None)))
            out({'kind': 'query_result',
                 'events': [event_to_json(e) for e in result.events],
                 'more_follows': result.more_follows})
        elif op == 'close':
            if client:
                await client.async_close()
            out({'kind': 'closed'})
            return
        else:
            raise Exception(f'unknown op {op}')


if __name__ == '__main__':
    try:
        asyncio.run(main(int(sys.argv[1])))
    except Exception as e:
        out({'kind': 'error', 'error': repr(e)})
        sys.exit(1)
