"""The `sim` device contract (docs/architecture.md) as a hat-gateway 0.6.48 device
module, with hat-gateway's 3-segment prefix ``gateway/<device_type>/<name>``.

Used only by the side-by-side benchmark, so both gateways run the same workload.
"""

import asyncio

from hat import aio
from hat.gateway import common
import hat.event.common

# Events per register request during a burst; the Rust plugin uses the same size.
BURST_BATCH = 1000


def _json(value):
    return hat.event.common.EventPayloadJson(value)


async def create(conf, eventer_client, event_type_prefix):
    device = SimDevice()
    device._async_group = aio.Group()
    device._client = eventer_client
    device._prefix = tuple(event_type_prefix)
    device._points = list(conf.get('points') or ['p0'])
    device._values = {point: 0 for point in device._points}
    await device._register([device._data_event(p, device._values[p])
                            for p in device._points])
    period = conf.get('period') or 0
    if period > 0:
        device._async_group.spawn(device._period_loop, period)
    return device


class SimDevice(common.Device):

    @property
    def async_group(self):
        return self._async_group

    async def process_event(self, event):
        suffix = event.type[len(self._prefix):]
        if suffix[:2] == ('system', 'write') and len(suffix) == 3:
            await self._write(suffix[2], event.payload)
        elif suffix == ('system', 'burst'):
            await self._burst(event.payload)

    def _data_event(self, point, value):
        return hat.event.common.RegisterEvent(
            type=(*self._prefix, 'gateway', 'data', point),
            source_timestamp=None,
            payload=_json({'value': value}))

    async def _register(self, events):
        await self._client.register(events)

    async def _period_loop(self, period):
        while True:
            await asyncio.sleep(period)
            for point in self._points:
                self._values[point] += 1
            await self._register([self._data_event(p, self._values[p])
                                  for p in self._points])

    async def _write(self, point, payload):
        data = payload.data if isinstance(
            payload, hat.event.common.EventPayloadJson) else None
        write_id = data.get('id') if isinstance(data, dict) else None
        result_type = (*self._prefix, 'gateway', 'write', point)
        if (point not in self._values or not isinstance(data, dict)
                or 'value' not in data):
            await self._register([hat.event.common.RegisterEvent(
                type=result_type, source_timestamp=None,
                payload=_json({'id': write_id, 'success': False,
                               'error': 'unknown point or bad payload'}))])
            return
        self._values[point] = data['value']
        await self._register([
            self._data_event(point, data['value']),
            hat.event.common.RegisterEvent(
                type=result_type, source_timestamp=None,
                payload=_json({'id': write_id, 'success': True}))])

    async def _burst(self, payload):
        data = payload.data if isinstance(
            payload, hat.event.common.EventPayloadJson) else {}
        count = int(data.get('count', 0))
        burst_id = data.get('id')
        points = self._points
        seq = 0
        while seq < count:
            batch = []
            for _ in range(min(BURST_BATCH, count - seq)):
                batch.append(self._data_event(points[seq % len(points)], seq))
                seq += 1
            await self._register(batch)
        await self._register([hat.event.common.RegisterEvent(
            type=(*self._prefix, 'gateway', 'burst'), source_timestamp=None,
            payload=_json({'id': burst_id, 'count': count}))])


info = common.DeviceInfo(type='sim', create=create)
