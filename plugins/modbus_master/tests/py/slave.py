"""A scripted Modbus slave for the modbus_master tests, built on pymodbus's server API.

Memory (protocol addresses, zero based), the same for every unit id:
  holding and input registers 0..size-1 (default 100), all 0 except
  10..12 = 0x1234 0x5678 0x9ABC and 2 = 7; register 20 increments on every read of it;
  coils and discrete inputs 0..16*size-1, coils 32..34 on;
  anything outside -> exception 2 (INVALID_DATA_ADDRESS); FC24 answers pymodbus's
  fixed FIFO [0, 1, 2, 3] in the standard encoding.

Stdout (line based, flushed): "PORT <n>" (TCP) or "READY" (serial) once listening,
"CONNECT" / "DISCONNECT" per client connection, "REQ <unit> <fc> <address> <count>"
per received request.
Stdin commands: "drop" closes every client connection; "get <address> <count>" prints
"HR <v> <v> ..." (holding registers); "getc <address> <count>" prints "CO <0|1> ..."
(coils); "fail <address>" makes register reads covering it answer exception 2 until
"heal <address>"; "mute" / "unmute" stop / resume sending responses. Every command
is acknowledged with "OK <command>". EOF stops the slave.
"""

import argparse
import asyncio
import sys

from pymodbus.datastore import (ModbusSequentialDataBlock, ModbusServerContext,
                                ModbusSlaveContext)
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

INCREMENTING = 20


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


FAILING = set()
MUTED = [False]


class IncrementingBlock(ModbusSequentialDataBlock):
    """Holding/input registers; one register counts its reads; some may fail."""

    def validate(self, address, count=1):
        # pymodbus addresses are protocol address + 1.
        if any(address <= a + 1 < address + count for a in FAILING):
            return False
        return super().validate(address, count)

    def getValues(self, address, count=1):
        values = super().getValues(address, count)
        if address <= INCREMENTING + 1 < address + count:
            self.values[INCREMENTING] = (self.values[INCREMENTING] + 1) & 0xFFFF
        return values


def make_context(size):
    registers = [0] * size
    for address, value in ((2, 7), (10, 0x1234), (11, 0x5678), (12, 0x9ABC)):
        if address < size:
            registers[address] = value
    bits = [False] * (16 * size)
    for address in (32, 33, 34):
        if address < len(bits):
            bits[address] = True
    hr = IncrementingBlock(1, list(registers))
    co = ModbusSequentialDataBlock(1, list(bits))
    slave = ModbusSlaveContext(
        di=ModbusSequentialDataBlock(1, list(bits)),
        co=co,
        ir=IncrementingBlock(1, list(registers)),
        hr=hr,
    )
    return ModbusServerContext(slaves=slave, single=True), hr, co


def trace_pdu(sending, pdu):
    if not sending:
        address = getattr(pdu, "address", 0)
        count = getattr(pdu, "count", 0)
        say(f"REQ {pdu.dev_id} {pdu.function_code} {address} {count}")
    return pdu


def trace_packet(sending, data):
    if sending and MUTED[0]:
        return b""
    return data


def trace_connect(connected):
    say("CONNECT" if connected else "DISCONNECT")


async def commands(server, hr, co):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        words = line.decode().split()
        if words == ["drop"]:
            for connection in list(server.active_connections.values()):
                connection.transport.close()
        elif len(words) == 3 and words[0] == "get":
            address, count = int(words[1]), int(words[2])
            values = hr.values[address:address + count]
            say("HR " + " ".join(str(v) for v in values))
        elif len(words) == 3 and words[0] == "getc":
            address, count = int(words[1]), int(words[2])
            values = co.values[address:address + count]
            say("CO " + " ".join(str(int(v)) for v in values))
        elif len(words) == 2 and words[0] == "fail":
            FAILING.add(int(words[1]))
        elif len(words) == 2 and words[0] == "heal":
            FAILING.discard(int(words[1]))
        elif words == ["mute"]:
            MUTED[0] = True
        elif words == ["unmute"]:
            MUTED[0] = False
        say("OK " + " ".join(words))


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--framer", default="socket", choices=["socket", "rtu", "ascii"])
    parser.add_argument("--serial", help="serial port path (default: TCP on loopback)")
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: any free)")
    args = parser.parse_args()
    context, hr, co = make_context(args.size)
    if args.serial:
        server = ModbusSerialServer(context, framer=args.framer, port=args.serial,
                                    baudrate=19200, trace_pdu=trace_pdu, trace_packet=trace_packet,
                                    trace_connect=trace_connect)
        await server.serve_forever(background=True)
        say("READY")
    else:
        server = ModbusTcpServer(context, framer=args.framer, address=("127.0.0.1", args.port),
                                 trace_pdu=trace_pdu, trace_packet=trace_packet,
                                 trace_connect=trace_connect)
        await server.serve_forever(background=True)
        say(f"PORT {server.transport.sockets[0].getsockname()[1]}")
    await commands(server, hr, co)
    await server.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
