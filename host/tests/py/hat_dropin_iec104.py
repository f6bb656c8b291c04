"""The IEC 104 scenario of the drop-in differential test (host/tests/hat_dropin.rs).

Usage: hat_dropin_iec104.py PORT PREFIX

Runs hat-drivers' own IEC 60870-5-104 outstation on 127.0.0.1 (any free port, printed
as `PORT <n>` first) and the real hat-event eventer client on the event server at
127.0.0.1:PORT, subscribed to every `gateway/*` event, and drives the iec104_master
device PREFIX (`gateway/iec104_master/rtu1`) through one fixed scenario, each step
waiting for the events it causes (never for a time):

  1. enable the device; print READY (the test starts the gateway)
  2. wait: running=true, status CONNECTED, and the master's connection at the outstation
  3. the outstation sends a single point (1/10, ON) and a short float (1/20, 12.5),
     spontaneous; wait: both data events
  4. command single 1/30 ON (execute); the outstation confirms and terminates it;
     wait: the command event of its termination
  5. interrogation of ASDU 1; the outstation confirms it, sends 1/10 as interrogated
     and terminates it; wait: the termination and the interrogated data event
  6. disable the device; wait: running=false

Then prints every event the gateway registered (source segment `gateway`) in the order
the server notified them, as JSON lines {"type": ..., "payload": ...}, and DONE. A step
that does not complete within STEP_TIMEOUT prints "TIMEOUT <step>", the events so far,
and exits with status 1.
"""

import asyncio
import json
import sys

from hat.drivers import iec104
from hat.drivers import net
from hat.event import common
from hat.event import eventer

STEP_TIMEOUT = 30
PREFIX = ()
PREFIX_LEN = 0

IQ = iec104.IndicationQuality(invalid=False, not_topical=False, substituted=False,
                              blocked=False)
MQ = iec104.MeasurementQuality(invalid=False, not_topical=False, substituted=False,
                               blocked=False, overflow=False)


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Recorder:
    """Every notified event, and a wake-up for each batch."""

    def __init__(self):
        self.events = []
        self.changed = asyncio.Event()

    def on_events(self, _client, events):
        self.events.extend(events)
        self.changed.set()

    async def until(self, step, start, predicates, extra=lambda: True):
        """Waits until every predicate holds for some event at or after `start`."""

        async def wait():
            while True:
                new = self.events[start:]
                if extra() and all(any(p(e) for e in new) for p in predicates):
                    return
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(wait(), STEP_TIMEOUT)
        except asyncio.TimeoutError:
            say(f"TIMEOUT {step}")
            self.dump()
            sys.exit(1)

    def dump(self):
        for event in self.events:
            if len(event.type) > PREFIX_LEN and event.type[PREFIX_LEN] == "gateway":
                payload = event.payload.data if event.payload is not None else None
                say(json.dumps({"type": "/".join(event.type), "payload": payload}))


class Outstation:
    """hat-drivers' iec104 slave side: answers commands and interrogations."""

    def __init__(self, recorder):
        self.recorder = recorder
        self.conns = set()
        self.server = None

    async def start(self):
        self.server = await iec104.listen(self.on_connection,
                                          net.TcpAddress("127.0.0.1", 0))
        return self.server.info.addresses[0].port

    async def on_connection(self, conn):
        self.conns.add(conn)
        # Wakes the recorder's waits, which also look at the connections.
        self.recorder.changed.set()
        try:
            while True:
                for msg in await conn.receive():
                    await self.answer(conn, msg)
        except ConnectionError:
            pass
        finally:
            self.conns.discard(conn)
            conn.close()

    async def answer(self, conn, msg):
        if not isinstance(msg, (iec104.CommandMsg, iec104.InterrogationMsg)):
            return
        await conn.send([msg._replace(cause=iec104.CommandResCause.ACTIVATION_CONFIRMATION,
                                      is_negative_confirm=False)])
        if isinstance(msg, iec104.InterrogationMsg):
            await conn.send([data(10, iec104.SingleData(value=iec104.SingleValue.ON,
                                                        quality=IQ),
                                  iec104.DataResCause.INTERROGATED_STATION)])
        await conn.send([msg._replace(cause=iec104.CommandResCause.ACTIVATION_TERMINATION,
                                      is_negative_confirm=False)])

    async def send(self, msgs):
        for conn in list(self.conns):
            await conn.send(msgs)
            await conn.drain()

    async def close(self):
        for conn in list(self.conns):
            await conn.async_close()
        await self.server.async_close()


def data(io_address, value, cause):
    return iec104.DataMsg(is_test=False, originator_address=0, asdu_address=1,
                          io_address=io_address, data=value, time=None, cause=cause)


def has(suffix, check=lambda _: True):
    return lambda e: (e.type == (*PREFIX, *suffix) and e.payload is not None
                      and check(e.payload.data))


def cause(value):
    return lambda d: isinstance(d, dict) and d.get("cause") == value


async def register(client, suffix, payload):
    result = await client.register(
        [common.RegisterEvent(type=(*PREFIX, *suffix), source_timestamp=None,
                              payload=common.EventPayloadJson(payload))],
        with_response=True)
    assert result is not None, f"register {suffix} refused"


async def main(port):
    recorder = Recorder()
    outstation = Outstation(recorder)
    say(f"PORT {await outstation.start()}")
    client = await eventer.connect(net.TcpAddress("127.0.0.1", port), "dropin/driver",
                                   subscriptions=[("gateway", "*")],
                                   events_cb=recorder.on_events)
    running = lambda value: has(("gateway", "running"), lambda d: d is value)  # NOQA

    await register(client, ("system", "enable"), True)
    mark = len(recorder.events)
    say("READY")
    await recorder.until("start", mark, [
        running(True),
        has(("gateway", "status"), lambda d: d == "CONNECTED")],
        extra=lambda: bool(outstation.conns))

    mark = len(recorder.events)
    await outstation.send([
        data(10, iec104.SingleData(value=iec104.SingleValue.ON, quality=IQ),
             iec104.DataResCause.SPONTANEOUS),
        data(20, iec104.FloatingData(value=iec104.FloatingValue(value=12.5), quality=MQ),
             iec104.DataResCause.SPONTANEOUS)])
    await recorder.until("data", mark, [
        has(("gateway", "data", "single", "1", "10")),
        has(("gateway", "data", "floating", "1", "20"))])

    mark = len(recorder.events)
    await register(client, ("system", "command", "single", "1", "30"),
                   {"is_test": False, "cause": "ACTIVATION",
                    "command": {"value": "ON", "select": False, "qualifier": 0}})
    await recorder.until("command", mark, [
        has(("gateway", "command", "single", "1", "30"), cause("ACTIVATION_TERMINATION"))])

    mark = len(recorder.events)
    await register(client, ("system", "interrogation", "1"),
                   {"is_test": False, "cause": "ACTIVATION", "request": 20})
    await recorder.until("interrogation", mark, [
        has(("gateway", "interrogation", "1"), cause("ACTIVATION_TERMINATION")),
        has(("gateway", "data", "single", "1", "10"), cause("INTERROGATED_STATION"))])

    mark = len(recorder.events)
    await register(client, ("system", "enable"), False)
    await recorder.until("disable", mark, [running(False)])

    recorder.dump()
    say("DONE")
    await client.async_close()
    await outstation.close()


if __name__ == "__main__":
    PREFIX = tuple(sys.argv[2].split("/"))
    PREFIX_LEN = len(PREFIX)
    asyncio.run(main(int(sys.argv[1])))
