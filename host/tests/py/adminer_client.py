"""hat-gateway's own Adminer client (hat.gateway.adminer) against a gateway.

Usage: adminer_client.py HOST PORT
Prints one JSON line per step: the log configuration got, the answer to a set of
root level DEBUG, the configuration got after it; then a set the server refuses.
"""

import asyncio
import json
import sys

from hat.drivers import net
from hat.gateway import adminer


async def main(host, port):
    client = await adminer.connect(net.TcpAddress(host, port))
    try:
        print(json.dumps({'get': await client.get_log_conf()}), flush=True)
        conf = {'version': 1,
                'disable_existing_loggers': False,
                'root': {'level': 'DEBUG'}}
        await client.set_log_conf(conf)
        print(json.dumps({'set': 'ok'}), flush=True)
        print(json.dumps({'get': await client.get_log_conf()}), flush=True)
        try:
            await client.set_log_conf({'version': 1, 'root': {'level': 'LOUD'}})
            print(json.dumps({'bad_set': 'accepted'}), flush=True)
        except adminer.AdminerError as e:
            print(json.dumps({'bad_set': str(e)}), flush=True)
    finally:
        await client.async_close()


if __name__ == '__main__':
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
