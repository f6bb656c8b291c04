"""Connect the real hat-event eventer client to 127.0.0.1:PORT with an optional token,
try to register a forged gateway `running` event, and print one JSON line:
{"result": "connected", "forged": <register answer>} or {"result": "init_error", ...}."""

import asyncio
import json
import sys

from hat.drivers import net
from hat.event import common
from hat.event import eventer


async def main(port, token, forge):
    try:
        client = await eventer.connect(net.TcpAddress('127.0.0.1', port),
                                       'py/token', client_token=token)
    except eventer.EventerInitError as e:
        print(json.dumps({'result': 'init_error', 'error': str(e)}), flush=True)
        return
    answer = None
    if forge:
        result = await client.register(
            [common.RegisterEvent(type=tuple(forge.split('/')),
                                  source_timestamp=None,
                                  payload=common.EventPayloadJson(True))],
            with_response=True)
        answer = 'failure' if result is None else 'registered'
    print(json.dumps({'result': 'connected', 'forged': answer}), flush=True)
    await client.async_close()


if __name__ == '__main__':
    port = int(sys.argv[1])
    token = sys.argv[2] or None
    forge = sys.argv[3] if len(sys.argv) > 3 else None
    asyncio.run(main(port, token, forge))
