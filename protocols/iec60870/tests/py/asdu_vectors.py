"""ASDU vectors from hat-drivers' own encoders, and decoding of ASDUs with them.

`vectors`: prints one JSON object per line, {"profile", "sizes", "hex", "msgs"}: the
ASDU hat's message encoder (`hat.drivers.iec104` / `hat.drivers.iec101` Encoder) makes of
a message, or hat's ASDU encoder makes of a packed ASDU, and the messages hat's decoder
reads back from those octets.

`decode`: reads lines {"profile", "sizes", "hex"} from stdin and answers each with
{"msgs": [...]} or {"error": "..."}, decoded by hat.

Messages are described as JSON: a named tuple is an object with "type" (the class
name) and its fields, an enum is its value, bytes are hex.
"""

import enum
import json
import sys

from hat.drivers import iec101
from hat.drivers import iec104
from hat.drivers.iec101 import encoder as msg101
from hat.drivers.iec104 import encoder as msg104
from hat.drivers.iec60870.encodings import iec104 as enc104
from hat.drivers.iec60870.encodings import iec101 as enc101


def describe(x):
    if isinstance(x, enum.Enum):
        return x.value
    if isinstance(x, tuple) and hasattr(x, '_fields'):
        d = {'type': type(x).__name__}
        for f in x._fields:
            d[f] = describe(getattr(x, f))
        return d
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x).hex()
    if isinstance(x, list):
        return [describe(i) for i in x]
    return x


def msg_encoder(profile, sizes):
    if profile == '104':
        return msg104.Encoder()
    c, a, i = sizes
    return msg101.Encoder(cause_size=iec101.CauseSize(c),
                          asdu_address_size=iec101.AsduAddressSize(a),
                          io_address_size=iec101.IoAddressSize(i))


def t7(ms=12345, invalid=False, substituted=False, minutes=34, summer=False,
       hours=12, dow=3, dom=15, months=6, years=24):
    return iec104.Time(size=iec104.TimeSize.SEVEN, milliseconds=ms,
                       invalid=invalid, substituted=substituted,
                       minutes=minutes, summer_time=summer, hours=hours,
                       day_of_week=dow, day_of_month=dom, months=months,
                       years=years)


def t3(ms=59999, invalid=True, substituted=False, minutes=59):
    return iec101.Time(size=iec101.TimeSize.THREE, milliseconds=ms,
                       invalid=invalid, substituted=substituted,
                       minutes=minutes, summer_time=None, hours=None,
                       day_of_week=None, day_of_month=None, months=None,
                       years=None)


def data_cases(c):
    iq = c.IndicationQuality
    mq = c.MeasurementQuality
    pq = c.ProtectionQuality
    q0 = iq(False, False, False, False)
    q1 = iq(True, False, True, False)
    q2 = iq(False, True, False, True)
    m0 = mq(False, False, False, False, False)
    m1 = mq(True, True, False, False, True)
    m2 = mq(False, False, True, True, False)
    p0 = pq(False, False, False, False, False)
    p1 = pq(True, False, True, False, True)
    p2 = pq(False, True, False, True, False)
    return [
        (c.SingleData(c.SingleValue.ON, q0), True),
        (c.SingleData(c.SingleValue.OFF, q1), True),
        (c.SingleData(c.SingleValue.ON, q2), True),
        (c.DoubleData(c.DoubleValue.INTERMEDIATE, q0), True),
        (c.DoubleData(c.DoubleValue.OFF, q1), True),
        (c.DoubleData(c.DoubleValue.ON, q2), True),
        (c.DoubleData(c.DoubleValue.FAULT, q0), True),
        (c.StepPositionData(c.StepPositionValue(-64, True), m1), True),
        (c.StepPositionData(c.StepPositionValue(63, False), m0), True),
        (c.StepPositionData(c.StepPositionValue(-1, False), m2), True),
        (c.BitstringData(c.BitstringValue(b'\x01\x80\xfe\x7f'), m2), True),
        (c.NormalizedData(c.NormalizedValue(0.5), m0), True),
        (c.NormalizedData(c.NormalizedValue(-1.0), m1), True),
        (c.NormalizedData(c.NormalizedValue(0.99996), None), False),
        (c.NormalizedData(c.NormalizedValue(-0.25), None), False),
        (c.ScaledData(c.ScaledValue(-32768), m1), True),
        (c.ScaledData(c.ScaledValue(32767), m2), True),
        (c.FloatingData(c.FloatingValue(1.1), m0), True),
        (c.FloatingData(c.FloatingValue(-3.4e38), m1), True),
        (c.BinaryCounterData(c.BinaryCounterValue(-2147483648),
                             c.CounterQuality(True, False, True, 31)), True),
        (c.BinaryCounterData(c.BinaryCounterValue(2147483647),
                             c.CounterQuality(False, True, False, 0)), True),
        (c.ProtectionData(c.ProtectionValue.ON, p1, 65535), None),
        (c.ProtectionData(c.ProtectionValue.OFF, p0, 0), None),
        (c.ProtectionStartData(
            c.ProtectionStartValue(True, False, True, False, True, False),
            p2, 1234), None),
        (c.ProtectionStartData(
            c.ProtectionStartValue(False, True, False, True, False, True),
            p1, 0), None),
        (c.ProtectionCommandData(
            c.ProtectionCommandValue(True, False, True, False), p1, 4321),
         None),
        (c.ProtectionCommandData(
            c.ProtectionCommandValue(False, True, False, True), p0, 1), None),
        (c.StatusData(c.StatusValue([i % 3 == 0 for i in range(16)],
                                    [i % 5 == 1 for i in range(16)]), m2),
         False),
    ]


def data_msgs(c, profile, oa):
    """Data messages: without time, with CP56 (and CP24 in 101)."""
    causes = [c.DataResCause.SPONTANEOUS, c.DataResCause.INTERROGATED_STATION,
              c.DataResCause.INTERROGATED_GROUP16,
              c.DataResCause.INTERROGATED_COUNTER04, c.DataResCause.PERIODIC,
              c.DataResCause.REQUEST, 63, 0]
    times = [t7(), t7(59999, True, True, 59, True, 23, 7, 31, 12, 99),
             t7(0, False, False, 0, False, 0, 0, 1, 1, 0)]
    if profile == '101':
        times.append(t3())
    msgs = []
    n = 0
    for data, without_time in data_cases(c):
        # True: with and without time; False: without only; None: with only.
        options = {True: [None] + times, False: [None], None: times}[without_time]
        for time in options:
            n += 1
            msgs.append(c.DataMsg(is_test=(n % 4 == 0),
                                  originator_address=(oa * n) % 256,
                                  asdu_address=n * 7,
                                  io_address=n * 13,
                                  data=data,
                                  time=time,
                                  cause=causes[n % len(causes)]))
    return msgs


def command_msgs(c, profile, oa):
    commands = []
    for select in (True, False):
        commands += [
            c.SingleCommand(c.SingleValue.ON, select, 0),
            c.SingleCommand(c.SingleValue.OFF, select, 31),
            c.DoubleCommand(c.DoubleValue.ON, select, 1),
            c.DoubleCommand(c.DoubleValue.OFF, select, 3),
            c.RegulatingCommand(c.RegulatingValue.HIGHER, select, 2),
            c.RegulatingCommand(c.RegulatingValue.LOWER, select, 0),
            c.NormalizedCommand(c.NormalizedValue(-0.5), select),
            c.ScaledCommand(c.ScaledValue(-1234), select),
            c.FloatingCommand(c.FloatingValue(123.25), select),
        ]
    commands.append(c.BitstringCommand(c.BitstringValue(b'\xde\xad\xbe\xef')))
    causes = [c.CommandReqCause.ACTIVATION, c.CommandResCause.ACTIVATION_CONFIRMATION,
              c.CommandReqCause.DEACTIVATION,
              c.CommandResCause.DEACTIVATION_CONFIRMATION,
              c.CommandResCause.ACTIVATION_TERMINATION,
              c.CommandResCause.UNKNOWN_IO_ADDRESS, 3]
    msgs = []
    for n, command in enumerate(commands):
        for time in ([None, t7()] if profile == '104' else [None]):
            kw = {'time': time} if profile == '104' else {}
            msgs.append(c.CommandMsg(is_test=(n % 3 == 1),
                                     originator_address=oa,
                                     asdu_address=n + 1,
                                     io_address=1000 + n,
                                     command=command,
                                     is_negative_confirm=(n % 2 == 1),
                                     cause=causes[n % len(causes)],
                                     **kw))
    return msgs


def system_msgs(c, profile, oa):
    ccause = c.CommandReqCause
    rcause = c.CommandResCause
    msgs = [
        c.InitializationMsg(False, oa, 1, False,
                            c.InitializationResCause.LOCAL_POWER),
        c.InitializationMsg(True, oa, 2, True,
                            c.InitializationResCause.REMOTE_RESET),
        c.InitializationMsg(False, oa, 3, False, 100),
        c.InterrogationMsg(False, oa, 65535 if profile == '104' else 255,
                           20, False, ccause.ACTIVATION),
        c.InterrogationMsg(False, oa, 1, 20, True,
                           rcause.ACTIVATION_CONFIRMATION),
        c.InterrogationMsg(True, oa, 1, 36, False,
                           rcause.ACTIVATION_TERMINATION),
        c.InterrogationMsg(False, oa, 1, 20, True, rcause.UNKNOWN_ASDU_ADDRESS),
        c.ReadMsg(False, oa, 9, 77, c.ReadReqCause.REQUEST),
        c.ReadMsg(False, oa, 9, 78, c.ReadResCause.UNKNOWN_IO_ADDRESS),
        c.ClockSyncMsg(False, oa, 1, t7(), False,
                       c.ClockSyncReqCause.ACTIVATION),
        c.ClockSyncMsg(False, oa, 1, t7(1, True, False, 2, True, 3, 4, 5, 6, 7),
                       True, c.ClockSyncResCause.ACTIVATION_CONFIRMATION),
        c.ClockSyncMsg(True, oa, 1, t7(), False,
                       c.ClockSyncResCause.SPONTANEOUS),
        c.ResetMsg(False, oa, 1, 1, c.ActivationReqCause.ACTIVATION),
        c.ResetMsg(False, oa, 1, 2, c.ActivationResCause.ACTIVATION_CONFIRMATION),
        c.ParameterMsg(False, oa, 1, 10, c.NormalizedParameter(
            c.NormalizedValue(0.75), 1), c.ParameterReqCause.ACTIVATION),
        c.ParameterMsg(False, oa, 1, 11, c.ScaledParameter(
            c.ScaledValue(-7), 2), c.ParameterResCause.INTERROGATED_GROUP05),
        c.ParameterMsg(True, oa, 1, 12, c.FloatingParameter(
            c.FloatingValue(2.5), 255), c.ParameterReqCause.SPONTANEOUS),
        c.ParameterActivationMsg(False, oa, 1, 13, 3,
                                 c.ParameterActivationReqCause.DEACTIVATION),
    ]
    for n, freeze in enumerate(c.FreezeCode):
        msgs.append(c.CounterInterrogationMsg(
            n % 2 == 1, oa, 5, [5, 1, 4, 63][n], freeze, n == 2,
            [ccause.ACTIVATION, rcause.ACTIVATION_CONFIRMATION,
             rcause.ACTIVATION_TERMINATION, 33][n]))
    if profile == '104':
        msgs += [
            c.TestMsg(False, oa, 1, 0x1234, t7(),
                      c.ActivationReqCause.ACTIVATION),
            c.TestMsg(False, oa, 1, 65535, t7(999),
                      c.ActivationResCause.ACTIVATION_CONFIRMATION),
        ]
    else:
        msgs += [
            c.TestMsg(False, oa, 1, c.ActivationReqCause.ACTIVATION),
            c.TestMsg(True, oa, 1, c.ActivationResCause.ACTIVATION_CONFIRMATION),
            c.DelayMsg(False, oa, 1, 65535, c.DelayReqCause.ACTIVATION),
            c.DelayMsg(False, oa, 1, 17, c.DelayReqCause.SPONTANEOUS),
        ]
    return msgs


def fit(msg, profile, sizes):
    """Clamp addresses to the field sizes (101 with small fields)."""
    if profile == '104':
        return msg
    c, a, i = sizes
    fields = {'asdu_address': msg.asdu_address % (1 << (8 * a))}
    if c == 1:
        fields['originator_address'] = 0
    if hasattr(msg, 'io_address'):
        fields['io_address'] = msg.io_address % (1 << (8 * i))
    return msg._replace(**fields)


def packed_asdus(profile, sizes):
    """ASDUs of several objects made with hat's ASDU encoder directly."""
    if profile != '104':
        return []
    e = enc104.Encoder()
    cause = enc104.Cause(type=enc104.CauseType.SPONTANEOUS,
                         is_negative_confirm=False, is_test=False,
                         originator_address=7)
    mq = enc104.MeasurementQuality(False, False, False, False, False)
    iq = enc104.IndicationQuality(False, False, False, True)
    sequence = enc104.ASDU(
        type=enc104.AsduType.M_ME_NC, cause=cause, address=300,
        ios=[enc104.IO(address=5000, time=None, elements=[
            enc104.IoElement_M_ME_NC(value=enc104.FloatingValue(i * 0.5),
                                     quality=mq)
            for i in range(5)])])
    objects = enc104.ASDU(
        type=enc104.AsduType.M_SP_TB, cause=cause, address=300,
        ios=[enc104.IO(address=a, time=t7(a), elements=[
            enc104.IoElement_M_SP_TB(value=enc104.SingleValue.ON, quality=iq)])
            for a in (10, 11, 20)])
    scattered = enc104.ASDU(
        type=enc104.AsduType.M_ME_NB, cause=cause, address=1,
        ios=[enc104.IO(address=a, time=None, elements=[
            enc104.IoElement_M_ME_NB(value=enc104.ScaledValue(a), quality=mq)])
            for a in (3, 1, 2)])
    return [e.encode_asdu(asdu) for asdu in (sequence, objects, scattered)]


def vectors():
    configs = [('104', [2, 2, 3]), ('101', [1, 1, 1]), ('101', [2, 2, 2]),
               ('101', [1, 2, 3]), ('101', [2, 1, 1])]
    for profile, sizes in configs:
        c = iec104 if profile == '104' else iec101
        enc = msg_encoder(profile, sizes)
        oa = 0 if sizes[0] == 1 else 42
        msgs = (data_msgs(c, profile, oa) + command_msgs(c, profile, oa) +
                system_msgs(c, profile, oa))
        asdus = [data for msg in msgs
                 for data in enc.encode([fit(msg, profile, sizes)])]
        asdus += packed_asdus(profile, sizes)
        for data in asdus:
            decoded = list(enc.decode(data))
            print(json.dumps({'profile': profile, 'sizes': sizes,
                              'hex': bytes(data).hex(),
                              'msgs': describe(decoded)}))


def decode():
    for line in sys.stdin:
        req = json.loads(line)
        try:
            enc = msg_encoder(req['profile'], req['sizes'])
            msgs = list(enc.decode(bytes.fromhex(req['hex'])))
            print(json.dumps({'msgs': describe(msgs)}), flush=True)
        except Exception as e:
            print(json.dumps({'error': f'{type(e).__name__}: {e}'}), flush=True)


if __name__ == '__main__':
    {'vectors': vectors, 'decode': decode}[sys.argv[1]]()
