"""The scripted `system` side of the drop-in differential test (host/tests/hat_dropin.rs).

Usage: hat_dropin.py PORT PREFIX

Connects the real hat-event eventer client to the event server on 127.0.0.1:PORT,
subscribed to every `gateway/*` event, and drives the modbus_master device PREFIX
(`gateway/modbus_master/plc1`) through one fixed scenario, each step waiting for the
events it causes (never for a time):

  1. enable remote device 1 and the device; print READY (the test starts the gateway)
  2. wait: running=true, remote device 1 CONNECTED, a read event of every point
  3. write 77 to hr5 (request w1); wait: its write response and hr5's read event 77
  4. disable the device; wait: running=false
  5. enable it again; wait: running=true and a read event of every point
  6. disable remote device 1; wait: its status DISABLED

Then prints every event the gateway registered (source segment `gateway`), in the order
the server notified them, as JSON lines {"type": ..., "payload": ...}, and DONE. A step
that does not complete within STEP_TIMEOUT prints "TIMEOUT <step>", the events so far,
and exits with status 1.
"""

import asyncio
import json
import sys

from hat.drivers import net
from hat.event import common
from hat.event import eventer

STEP_TIMEOUT = 30
POINTS = {"hr10": 0x1234, "co32": 1, "hr5": 0}


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Recorder:
    def __init__(self):
        self.events = []
        self.changed = asyncio.Event()

    def on_events(self, _client, events):
        self.events.extend(events)
        self.changed.set()

    async def until(self, step, start, predicates):
        """Waits until every predicate holds for some event at or after `start`."""

        async def wait():
            while True:
                new = self.events[start:]
                if all(any(p(e) for e in new) for p in predicates):
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


PREFIX = ()
PREFIX_LEN = 0


def is_type(*suffix):
    return lambda e: e.type == (*PREFIX, *suffix)


def has(suffix, check):
    return lambda e: (e.type == (*PREFIX, *suffix) and e.payload is not None
                      and check(e.payload.data))


def data_value(name, value):
    return has(("gateway", "remote_device", "1", "read", name),
               lambda d: isinstance(d, dict) and d.get("value") == value)


async def register(client, suffix, data):
    result = await client.register(
        [common.RegisterEvent(type=(*PREFIX, *suffix), source_timestamp=None,
                              payload=common.EventPayloadJson(data))],
        with_response=True)
    assert result is not None, f"register {suffix} refused"


async def main(port):
    recorder = Recorder()
    client = await eventer.connect(net.TcpAddress("127.0.0.1", port), "dropin/driver",
                                   subscriptions=[("gateway", "*")],
                                   events_cb=recorder.on_events)
    running = lambda value: has(("gateway", "running"), lambda d: d is value)  # NOQA
    every_point = [data_value(name, value) for name, value in POINTS.items()]

    await register(client, ("system", "remote_device", "1", "enable"), True)
    await register(client, ("system", "enable"), True)
    mark = len(recorder.events)
    say("READY")
    await recorder.until("start", mark, [
        running(True),
        has(("gateway", "remote_device", "1", "status"), lambda d: d == "CONNECTED"),
        *every_point])

    mark = len(recorder.events)
    await register(client, ("system", "remote_device", "1", "write", "hr5"),
                   {"request_id": "w1", "value": 77})
    await recorder.until("write", mark, [
        has(("gateway", "remote_device", "1", "write", "hr5"),
            lambda d: d.get("request_id") == "w1"),
        data_value("hr5", 77)])

    mark = len(recorder.events)
    await register(client, ("system", "enable"), False)
    await recorder.until("disable", mark, [running(False)])

    mark = len(recorder.events)
    await register(client, ("system", "enable"), True)
    POINTS["hr5"] = 77
    await recorder.until("enable again", mark, [
        running(True),
        *[data_value(name, value) for name, value in POINTS.items()]])

    mark = len(recorder.events)
    await register(client, ("system", "remote_device", "1", "enable"), False)
    await recorder.until("remote device disabled", mark, [
        has(("gateway", "remote_device", "1", "status"), lambda d: d == "DISABLED")])

    recorder.dump()
    say("DONE")
    await client.async_close()


if __name__ == "__main__":
    PREFIX = tuple(sys.argv[2].split("/"))
    PREFIX_LEN = len(PREFIX)
    asyncio.run(main(int(sys.argv[1])))
