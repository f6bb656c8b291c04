"""A scripted pymodbus client (the real master) for the modbus_slave tests.

Usage: client.py tcp <host> <port> <framer> | client.py serial <path> <framer>
(framer: socket, rtu or ascii). Prints "READY" once connected.

Stdin: one request per line, "<method> <json kwargs>", e.g.
  read_holding_registers {"address": 10, "count": 2, "slave": 1}
called as `await client.<method>(**kwargs)`. Each answer is one line:
  "RESULT {json}" with "error": false and "registers" / "values" (FC24) / "bits"
  (bits cut to "count" if given), or "error": true and "exception_code"; "NORESPONSE <reason>" when the
  request failed without an answer (timeout, closed connection).
EOF stops the client.
"""

import asyncio
import json
import sys

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


FRAMERS = {"socket": FramerType.SOCKET, "rtu": FramerType.RTU, "ascii": FramerType.ASCII}


async def main():
    kind = sys.argv[1]
    if kind == "tcp":
        client = AsyncModbusTcpClient(sys.argv[2], port=int(sys.argv[3]),
                                      framer=FRAMERS[sys.argv[4]], timeout=1, retries=0)
    else:
        client = AsyncModbusSerialClient(sys.argv[2], framer=FRAMERS[sys.argv[3]],
                                         baudrate=19200, timeout=1, retries=0)
    if not await client.connect():
        say("CONNECT_FAILED")
        return
    say("READY")
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().strip()
        if not line:
            break
        method, _, args = line.partition(" ")
        kwargs = json.loads(args) if args else {}
        try:
            response = await getattr(client, method)(**kwargs)
        except ModbusException as e:
            say(f"NORESPONSE {e}")
            continue
        if response.isError():
            say("RESULT " + json.dumps({"error": True,
                                        "exception_code": response.exception_code}))
            continue
        result = {"error": False}
        if getattr(response, "registers", None):
            result["registers"] = list(response.registers)
        if getattr(response, "values", None):
            result["values"] = list(response.values)
        if getattr(response, "bits", None):
            bits = [int(b) for b in response.bits]
            if "count" in kwargs:
                bits = bits[:kwargs["count"]]
            result["bits"] = bits
        say("RESULT " + json.dumps(result))
    client.close()


asyncio.run(main())
