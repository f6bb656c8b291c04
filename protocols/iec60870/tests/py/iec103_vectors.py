"""IEC 103 ASDU vectors from hat-drivers' own 103 encoder, and decoding with it.

`vectors`: prints one JSON object per line, {"hex", "asdu", "reencoded"}: an ASDU hat's
`iec103.Encoder` makes (seeded random ASDUs of every type hat encodes), what hat decodes
from those octets, and hat's encoding of what it decoded (null when hat cannot encode
it again).

`decode`: reads hex lines from stdin and answers each with {"asdu", "reencoded"} or
{"error"}.

Description: a named tuple is an object with "_class" (the class name) and its fields,
an enum is its value, bytes are hex, tuples and lists are lists. Hat decodes a UFIXED
generic value into a FixedValue; inside an array of UFIXED it is described as
UFixedValue.
"""

import enum
import json
import random
import sys

from hat.drivers.iec60870.encodings import iec103 as c
from hat.drivers.iec60870.encodings.iec103 import encoder as e


def describe(x, array_type=None):
    if isinstance(x, enum.Enum):
        return x.value
    if isinstance(x, tuple) and hasattr(x, '_fields'):
        name = type(x).__name__
        if name == 'FixedValue' and array_type == c.ValueType.UFIXED:
            name = 'UFixedValue'
        d = {'_class': name}
        inner = x.value_type if isinstance(x, c.ArrayValue) else None
        for f in x._fields:
            d[f] = describe(getattr(x, f), inner)
        return d
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x).hex()
    if isinstance(x, (list, tuple)):
        return [describe(i, array_type) for i in x]
    return x


R = random.Random(103)


def time(size):
    return c.Time(size=size,
                  milliseconds=R.randrange(60000),
                  invalid=R.random() < 0.3,
                  substituted=R.random() < 0.3,
                  minutes=R.randrange(60),
                  summer_time=R.random() < 0.3,
                  hours=R.randrange(24),
                  day_of_week=R.randrange(1, 8) if size == c.TimeSize.SEVEN else None,  # NOQA
                  day_of_month=R.randrange(1, 32) if size == c.TimeSize.SEVEN else None,  # NOQA
                  months=R.randrange(1, 13) if size == c.TimeSize.SEVEN else None,
                  years=R.randrange(100) if size == c.TimeSize.SEVEN else None)


def dv():
    return R.choice(list(c.DoubleValue))


def u8():
    return R.randrange(256)


def u16():
    return R.randrange(65536)


def f32():
    import struct
    return struct.unpack('<f', struct.pack('<f', R.uniform(-1e6, 1e6)))[0]


def measurand():
    return c.MeasurandValue(overflow=R.random() < 0.3,
                            invalid=R.random() < 0.3,
                            value=R.randrange(-4096, 4096) / 4096)


def ident():
    return c.Identification(group_id=u8(), entry_id=u8())


def ioa():
    return c.IoAddress(function_type=u8(), information_number=u8())


def generic_value(t):
    if t == c.ValueType.NONE:
        return c.NoneValue()
    if t == c.ValueType.TEXT:
        return c.TextValue(bytes(R.randrange(32, 127)
                                 for _ in range(R.randrange(1, 6))))
    if t == c.ValueType.BITSTRING:
        return c.BitstringValue([R.random() < 0.5
                                 for _ in range(R.randrange(1, 20))])
    if t == c.ValueType.UINT:
        return c.UIntValue(R.randrange(1 << R.choice([0, 8, 16, 32])))
    if t == c.ValueType.INT:
        return c.IntValue(R.randrange(-(1 << 30), 1 << 30))
    if t == c.ValueType.UFIXED:
        return c.UFixedValue(R.randrange(65536) / 65536)
    if t == c.ValueType.FIXED:
        return c.FixedValue(R.randrange(-32768, 32768) / 32768)
    if t == c.ValueType.REAL32:
        return c.Real32Value(f32())
    if t == c.ValueType.REAL64:
        return c.Real64Value(R.uniform(-1e9, 1e9))
    if t == c.ValueType.DOUBLE:
        return dv()
    if t == c.ValueType.SINGLE:
        return R.choice(list(c.SingleValue))
    if t == c.ValueType.EXTENDED_DOUBLE:
        return R.choice(list(c.ExtendedDoubleValue))
    if t == c.ValueType.MEASURAND:
        return measurand()
    if t == c.ValueType.TIME:
        return c.TimeValue(time(c.TimeSize.SEVEN))
    if t == c.ValueType.IDENTIFICATION:
        return c.IdentificationValue(ident())
    if t == c.ValueType.RELATIVE_TIME:
        return c.RelativeTimeValue(u16())
    if t == c.ValueType.IO_ADDRESS:
        return c.IoAddressValue(ioa())
    if t == c.ValueType.DOUBLE_WITH_TIME:
        return dwt()
    if t == c.ValueType.DOUBLE_WITH_RELATIVE_TIME:
        return dwrt()
    if t == c.ValueType.MEASURAND_WITH_RELATIVE_TIME:
        return mwrt()
    if t == c.ValueType.TEXT_NUMBER:
        return c.TextNumberValue(R.randrange(1, 1 << 24))
    if t == c.ValueType.REPLY:
        return R.choice(list(c.ReplyValue))
    if t == c.ValueType.ARRAY:
        # Nested arrays of one shape (hat misaligns arrays of different sizes).
        return c.ArrayValue(value_type=c.ValueType.UINT, more_follows=False,
                            values=[c.UIntValue(255), c.UIntValue(1)])
    if t == c.ValueType.INDEX:
        return c.IndexValue(R.randrange(1, 1 << 16))
    raise ValueError(t)


def array():
    t = R.choice(list(c.ValueType))
    return c.ArrayValue(value_type=t,
                        more_follows=R.random() < 0.3,
                        values=[generic_value(t)
                                for _ in range(R.randrange(0, 4))])


def descriptive():
    return c.DescriptiveData(description=R.choice(list(c.Description)),
                             value=array())


def dwt():
    return c.DoubleWithTimeValue(value=dv(), time=time(c.TimeSize.FOUR),
                                 supplementary=u8())


def dwrt():
    return c.DoubleWithRelativeTimeValue(
        value=dv(), relative_time=u16(), fault_number=u16(),
        time=time(c.TimeSize.FOUR), supplementary=u8())


def mwrt():
    return c.MeasurandWithRelativeTimeValue(
        value=f32(), relative_time=u16(), fault_number=u16(),
        time=time(c.TimeSize.FOUR))


def order(cls):
    return cls(order_type=R.choice(list(c.OrderType)), fault_number=u16(),
               channel=R.choice(list(c.Channel)))


T = c.AsduType
ELEMENTS = {
    T.TIME_TAGGED_MESSAGE: lambda: c.IoElement_TIME_TAGGED_MESSAGE(dwt()),
    T.TIME_TAGGED_MESSAGE_WITH_RELATIVE_TIME:
        lambda: c.IoElement_TIME_TAGGED_MESSAGE_WITH_RELATIVE_TIME(dwrt()),
    T.MEASURANDS_1: lambda: c.IoElement_MEASURANDS_1(measurand()),
    T.TIME_TAGGED_MEASURANDS_WITH_RELATIVE_TIME:
        lambda: c.IoElement_TIME_TAGGED_MEASURANDS_WITH_RELATIVE_TIME(mwrt()),
    T.IDENTIFICATION: lambda: c.IoElement_IDENTIFICATION(
        compatibility=u8(), value=bytes(u8() for _ in range(8)),
        software=bytes(u8() for _ in range(4))),
    T.TIME_SYNCHRONIZATION:
        lambda: c.IoElement_TIME_SYNCHRONIZATION(time(c.TimeSize.SEVEN)),
    T.GENERAL_INTERROGATION: lambda: c.IoElement_GENERAL_INTERROGATION(u8()),
    T.GENERAL_INTERROGATION_TERMINATION:
        lambda: c.IoElement_GENERAL_INTERROGATION_TERMINATION(u8()),
    T.MEASURANDS_2: lambda: c.IoElement_MEASURANDS_2(measurand()),
    T.GENERIC_DATA: lambda: c.IoElement_GENERIC_DATA(
        return_identifier=u8(), counter=R.random() < 0.5,
        more_follows=R.random() < 0.5,
        data=[(ident(), descriptive()) for _ in range(R.randrange(0, 3))]),
    T.GENERIC_IDENTIFICATION: lambda: c.IoElement_GENERIC_IDENTIFICATION(
        return_identifier=u8(), identification=ident(),
        counter=R.random() < 0.5, more_follows=R.random() < 0.5,
        data=[descriptive() for _ in range(R.randrange(0, 3))]),
    T.GENERAL_COMMAND: lambda: c.IoElement_GENERAL_COMMAND(
        value=dv(), return_identifier=u8()),
    T.GENERIC_COMMAND: lambda: c.IoElement_GENERIC_COMMAND(
        return_identifier=u8(),
        data=[(ident(), R.choice(list(c.Description)))
              for _ in range(R.randrange(0, 4))]),
    T.LIST_OF_RECORDED_DISTURBANCES:
        lambda: c.IoElement_LIST_OF_RECORDED_DISTURBANCES(
            fault_number=u16(), trip=R.random() < 0.5,
            transmitted=R.random() < 0.5, test=R.random() < 0.5,
            other=R.random() < 0.5, time=time(c.TimeSize.SEVEN)),
    T.ORDER_FOR_DISTURBANCE_DATA_TRANSMISSION:
        lambda: order(c.IoElement_ORDER_FOR_DISTURBANCE_DATA_TRANSMISSION),
    T.ACKNOWLEDGEMENT_FOR_DISTURBANCE_DATA_TRANSMISSION:
        lambda: order(
            c.IoElement_ACKNOWLEDGEMENT_FOR_DISTURBANCE_DATA_TRANSMISSION),
    T.READY_FOR_TRANSMISSION_OF_DISTURBANCE_DATA:
        lambda: c.IoElement_READY_FOR_TRANSMISSION_OF_DISTURBANCE_DATA(
            fault_number=u16(), number_of_faults=u16(),
            number_of_channels=u8(), number_of_elements=u16(),
            interval=u16(), time=time(c.TimeSize.FOUR)),
    T.READY_FOR_TRANSMISSION_OF_A_CHANNEL:
        lambda: c.IoElement_READY_FOR_TRANSMISSION_OF_A_CHANNEL(
            fault_number=u16(), channel=R.choice(list(c.Channel)),
            primary=c.Real32Value(f32()), secondary=c.Real32Value(f32()),
            reference=c.Real32Value(f32())),
    T.READY_FOR_TRANSMISSION_OF_TAGS:
        lambda: c.IoElement_READY_FOR_TRANSMISSION_OF_TAGS(u16()),
    T.TRANSMISSION_OF_TAGS: lambda: c.IoElement_TRANSMISSION_OF_TAGS(
        fault_number=u16(), tag_position=u16(),
        values=[(ioa(), dv()) for _ in range(R.randrange(0, 4))]),
    T.TRANSMISSION_OF_DISTURBANCE_VALUES:
        lambda: c.IoElement_TRANSMISSION_OF_DISTURBANCE_VALUES(
            fault_number=u16(), channel=R.choice(list(c.Channel)),
            element_number=u16(),
            values=[R.randrange(-32768, 32768) / 32768
                    for _ in range(R.randrange(0, 5))]),
    T.END_OF_TRANSMISSION: lambda: order(c.IoElement_END_OF_TRANSMISSION),
}

SEQUENCE = {T.MEASURANDS_1, T.MEASURANDS_2, T.LIST_OF_RECORDED_DISTURBANCES}


def cause():
    if R.random() < 0.2:
        return R.choice([0, 13, 50, 200, 255])
    return R.choice(list(c.Cause))


def asdus():
    for asdu_type, element in ELEMENTS.items():
        for _ in range(40):
            if asdu_type in SEQUENCE and R.random() < 0.7:
                ios = [c.IO(address=ioa(),
                            elements=[element()
                                      for _ in range(R.randrange(2, 10))])]
            else:
                ios = [c.IO(address=ioa(), elements=[element()])
                       for _ in range(R.randrange(1, 4))]
            yield c.ASDU(type=asdu_type, cause=cause(), address=u8(),
                         ios=ios)


def reencode(encoder, asdu):
    try:
        return encoder.encode_asdu(asdu).hex()
    except Exception:
        return None


def main():
    encoder = e.Encoder()
    if sys.argv[1] == 'vectors':
        for asdu in asdus():
            data = encoder.encode_asdu(asdu)
            decoded, rest = encoder.decode_asdu(data)
            assert not rest
            print(json.dumps({'hex': data.hex(),
                              'asdu': describe(decoded),
                              'reencoded': reencode(encoder, decoded)}))
        return
    for line in sys.stdin:
        try:
            decoded, rest = encoder.decode_asdu(bytes.fromhex(line.strip()))
            if rest:
                raise ValueError(f'{len(rest)} octets left')
            out = {'asdu': describe(decoded),
                   'reencoded': reencode(encoder, decoded)}
        except Exception as ex:
            out = {'error': repr(ex)}
        print(json.dumps(out), flush=True)


if __name__ == '__main__':
    main()
