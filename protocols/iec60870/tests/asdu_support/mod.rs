//! Shared by the ASDU tests: hat-drivers' JSON description of messages (as
//! `tests/py/asdu_vectors.py` prints them) read into our [`Msg`]s, the codec of a
//! vector's profile, and the vectors themselves.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{self, Stdio};

use iec60870::asdu::{AsduAddressSize, AsduCodec, CauseSize, FieldSizes, IoAddressSize, Profile};
use iec60870::types::*;
use serde_json::{json, Value};

/// The Python of the test venv.
pub(crate) fn venv_python() -> PathBuf {
    gateway_test_support::venv_with(&["bin/python"]).join("bin/python")
}

/// The hat-drivers script.
pub(crate) fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/asdu_vectors.py")
}

/// One ASDU made by hat and the messages hat reads from it.
pub(crate) struct Vector {
    pub(crate) profile: String,
    pub(crate) sizes: Vec<u64>,
    pub(crate) bytes: Vec<u8>,
    pub(crate) msgs: Vec<Msg>,
    pub(crate) line: String,
}

/// Every vector `asdu_vectors.py vectors` prints.
pub(crate) fn hat_vectors() -> Vec<Vector> {
    let out = process::Command::new(venv_python())
        .arg(script())
        .arg("vectors")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "asdu_vectors.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            Vector {
                profile: v["profile"].as_str().unwrap().to_owned(),
                sizes: v["sizes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_u64().unwrap())
                    .collect(),
                bytes: from_hex(v["hex"].as_str().unwrap()),
                msgs: v["msgs"].as_array().unwrap().iter().map(msg).collect(),
                line: line.to_owned(),
            }
        })
        .collect()
}

/// A hat-drivers decoder process (`asdu_vectors.py decode`).
pub(crate) struct HatDecoder {
    child: std::process::Child,
    lines: BufReader<std::process::ChildStdout>,
}

impl HatDecoder {
    pub(crate) fn start() -> HatDecoder {
        let mut child = process::Command::new(venv_python())
            .arg(script())
            .arg("decode")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap());
        HatDecoder { child, lines }
    }

    /// Hat's messages of `asdu`, or its error text.
    pub(crate) fn decode(
        &mut self,
        profile: &str,
        sizes: &[u64],
        asdu: &[u8],
    ) -> Result<Vec<Msg>, String> {
        let request = json!({"profile": profile, "sizes": sizes, "hex": to_hex(asdu)});
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{request}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        self.lines.read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        match v.get("error") {
            Some(e) => Err(e.as_str().unwrap().to_owned()),
            None => Ok(v["msgs"].as_array().unwrap().iter().map(msg).collect()),
        }
    }
}

impl Drop for HatDecoder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The codec of a vector's profile and sizes.
pub(crate) fn codec(profile: &str, sizes: &[u64]) -> AsduCodec {
    if profile == "104" {
        return AsduCodec::new(Profile::iec104());
    }
    AsduCodec::new(Profile::iec101(FieldSizes {
        cause: match sizes[0] {
            1 => CauseSize::One,
            _ => CauseSize::Two,
        },
        asdu_address: match sizes[1] {
            1 => AsduAddressSize::One,
            _ => AsduAddressSize::Two,
        },
        io_address: match sizes[2] {
            1 => IoAddressSize::One,
            2 => IoAddressSize::Two,
            _ => IoAddressSize::Three,
        },
    }))
}

pub(crate) fn from_hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn b(v: &Value) -> bool {
    v.as_bool().unwrap_or_else(|| panic!("not a bool: {v}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("not an unsigned integer: {v}"))
}

fn u8_(v: &Value) -> u8 {
    u8::try_from(u(v)).unwrap()
}

fn i(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

fn f(v: &Value) -> f32 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")) as f32
}

fn opt_b(v: &Value) -> Option<bool> {
    v.as_bool()
}

fn opt_u8(v: &Value) -> Option<u8> {
    v.as_u64().map(|x| u8::try_from(x).unwrap())
}

pub(crate) fn time(v: &Value) -> Time {
    assert_eq!(v["type"], "Time");
    Time {
        size: match u(&v["size"]) {
            2 => TimeSize::Two,
            3 => TimeSize::Three,
            4 => TimeSize::Four,
            7 => TimeSize::Seven,
            other => panic!("time size {other}"),
        },
        milliseconds: u16::try_from(u(&v["milliseconds"])).unwrap(),
        invalid: opt_b(&v["invalid"]),
        substituted: opt_b(&v["substituted"]),
        minutes: opt_u8(&v["minutes"]),
        summer_time: opt_b(&v["summer_time"]),
        hours: opt_u8(&v["hours"]),
        day_of_week: opt_u8(&v["day_of_week"]),
        day_of_month: opt_u8(&v["day_of_month"]),
        months: opt_u8(&v["months"]),
        years: opt_u8(&v["years"]),
    }
}

fn opt_time(v: Option<&Value>) -> Option<Time> {
    v.filter(|v| !v.is_null()).map(time)
}

fn iq(v: &Value) -> IndicationQuality {
    IndicationQuality {
        invalid: b(&v["invalid"]),
        not_topical: b(&v["not_topical"]),
        substituted: b(&v["substituted"]),
        blocked: b(&v["blocked"]),
    }
}

fn mq(v: &Value) -> MeasurementQuality {
    MeasurementQuality {
        invalid: b(&v["invalid"]),
        not_topical: b(&v["not_topical"]),
        substituted: b(&v["substituted"]),
        blocked: b(&v["blocked"]),
        overflow: b(&v["overflow"]),
    }
}

fn pq(v: &Value) -> ProtectionQuality {
    ProtectionQuality {
        invalid: b(&v["invalid"]),
        not_topical: b(&v["not_topical"]),
        substituted: b(&v["substituted"]),
        blocked: b(&v["blocked"]),
        time_invalid: b(&v["time_invalid"]),
    }
}

fn bits16(v: &Value) -> [bool; 16] {
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 16);
    std::array::from_fn(|k| b(&list[k]))
}

fn bitstring(v: &Value) -> BitstringValue {
    BitstringValue(from_hex(v["value"].as_str().unwrap()).try_into().unwrap())
}

fn double(v: &Value) -> DoubleValue {
    DoubleValue::from_bits(u8_(v))
}

pub(crate) fn data(v: &Value) -> Data {
    let q = &v["quality"];
    let value = &v["value"];
    match v["type"].as_str().unwrap() {
        "SingleData" => Data::Single(SingleData {
            value: SingleValue::from_bit(u8_(value)),
            quality: iq(q),
        }),
        "DoubleData" => Data::Double(DoubleData {
            value: double(value),
            quality: iq(q),
        }),
        "StepPositionData" => Data::StepPosition(StepPositionData {
            value: StepPositionValue {
                value: i8::try_from(i(&value["value"])).unwrap(),
                transient: b(&value["transient"]),
            },
            quality: mq(q),
        }),
        "BitstringData" => Data::Bitstring(BitstringData {
            value: bitstring(value),
            quality: mq(q),
        }),
        "NormalizedData" => Data::Normalized(NormalizedData {
            value: NormalizedValue(f(&value["value"])),
            quality: (!q.is_null()).then(|| mq(q)),
        }),
        "ScaledData" => Data::Scaled(ScaledData {
            value: ScaledValue(i16::try_from(i(&value["value"])).unwrap()),
            quality: mq(q),
        }),
        "FloatingData" => Data::Floating(FloatingData {
            value: FloatingValue(f(&value["value"])),
            quality: mq(q),
        }),
        "BinaryCounterData" => Data::BinaryCounter(BinaryCounterData {
            value: BinaryCounterValue(i32::try_from(i(&value["value"])).unwrap()),
            quality: CounterQuality {
                invalid: b(&q["invalid"]),
                adjusted: b(&q["adjusted"]),
                overflow: b(&q["overflow"]),
                sequence: u8_(&q["sequence"]),
            },
        }),
        "ProtectionData" => Data::Protection(ProtectionData {
            value: ProtectionValue::from_bits(u8_(value)).unwrap(),
            quality: pq(q),
            elapsed_time: u16::try_from(u(&v["elapsed_time"])).unwrap(),
        }),
        "ProtectionStartData" => Data::ProtectionStart(ProtectionStartData {
            value: ProtectionStartValue {
                general: b(&value["general"]),
                l1: b(&value["l1"]),
                l2: b(&value["l2"]),
                l3: b(&value["l3"]),
                ie: b(&value["ie"]),
                reverse: b(&value["reverse"]),
            },
            quality: pq(q),
            duration_time: u16::try_from(u(&v["duration_time"])).unwrap(),
        }),
        "ProtectionCommandData" => Data::ProtectionCommand(ProtectionCommandData {
            value: ProtectionCommandValue {
                general: b(&value["general"]),
                l1: b(&value["l1"]),
                l2: b(&value["l2"]),
                l3: b(&value["l3"]),
            },
            quality: pq(q),
            operating_time: u16::try_from(u(&v["operating_time"])).unwrap(),
        }),
        "StatusData" => Data::Status(StatusData {
            value: StatusValue {
                value: bits16(&value["value"]),
                change: bits16(&value["change"]),
            },
            quality: mq(q),
        }),
        other => panic!("data type {other}"),
    }
}

pub(crate) fn command(v: &Value) -> Command {
    let value = &v["value"];
    let select = || b(&v["select"]);
    let qualifier = || u8_(&v["qualifier"]);
    match v["type"].as_str().unwrap() {
        "SingleCommand" => Command::Single(SingleCommand {
            value: SingleValue::from_bit(u8_(value)),
            select: select(),
            qualifier: qualifier(),
        }),
        "DoubleCommand" => Command::Double(DoubleCommand {
            value: double(value),
            select: select(),
            qualifier: qualifier(),
        }),
        "RegulatingCommand" => Command::Regulating(RegulatingCommand {
            value: RegulatingValue::from_bits(u8_(value)).unwrap(),
            select: select(),
            qualifier: qualifier(),
        }),
        "NormalizedCommand" => Command::Normalized(NormalizedCommand {
            value: NormalizedValue(f(&value["value"])),
            select: select(),
        }),
        "ScaledCommand" => Command::Scaled(ScaledCommand {
            value: ScaledValue(i16::try_from(i(&value["value"])).unwrap()),
            select: select(),
        }),
        "FloatingCommand" => Command::Floating(FloatingCommand {
            value: FloatingValue(f(&value["value"])),
            select: select(),
        }),
        "BitstringCommand" => Command::Bitstring(BitstringCommand {
            value: bitstring(value),
        }),
        other => panic!("command type {other}"),
    }
}

fn parameter(v: &Value) -> Parameter {
    let value = &v["value"]["value"];
    let qualifier = u8_(&v["qualifier"]);
    match v["type"].as_str().unwrap() {
        "NormalizedParameter" => Parameter::Normalized(NormalizedParameter {
            value: NormalizedValue(f(value)),
            qualifier,
        }),
        "ScaledParameter" => Parameter::Scaled(ScaledParameter {
            value: ScaledValue(i16::try_from(i(value)).unwrap()),
            qualifier,
        }),
        "FloatingParameter" => Parameter::Floating(FloatingParameter {
            value: FloatingValue(f(value)),
            qualifier,
        }),
        other => panic!("parameter type {other}"),
    }
}

/// A hat message description as our [`Msg`]. Causes come as their values (hat writes
/// an enum as its value and `OtherCause` as the integer).
pub(crate) fn msg(v: &Value) -> Msg {
    let is_test = b(&v["is_test"]);
    let originator_address = u8_(&v["originator_address"]);
    let asdu_address = u16::try_from(u(&v["asdu_address"])).unwrap();
    let io_address = || u32::try_from(u(&v["io_address"])).unwrap();
    let cause = u8_(&v["cause"]);
    let negative = || b(&v["is_negative_confirm"]);
    match v["type"].as_str().unwrap() {
        "DataMsg" => Msg::Data(DataMsg {
            is_test,
            originator_address,
            asdu_address,
            io_address: io_address(),
            data: data(&v["data"]),
            time: opt_time(v.get("time")),
            cause: DataCause::from_u8(cause),
        }),
        "CommandMsg" => Msg::Command(CommandMsg {
            is_test,
            originator_address,
            asdu_address,
            io_address: io_address(),
            command: command(&v["command"]),
            is_negative_confirm: negative(),
            time: opt_time(v.get("time")),
            cause: CommandCause::from_u8(cause),
        }),
        "InitializationMsg" => Msg::Initialization(InitializationMsg {
            is_test,
            originator_address,
            asdu_address,
            param_change: b(&v["param_change"]),
            cause: InitializationCause::from_u8(cause),
        }),
        "InterrogationMsg" => Msg::Interrogation(InterrogationMsg {
            is_test,
            originator_address,
            asdu_address,
            request: u8_(&v["request"]),
            is_negative_confirm: negative(),
            cause: CommandCause::from_u8(cause),
        }),
        "CounterInterrogationMsg" => Msg::CounterInterrogation(CounterInterrogationMsg {
            is_test,
            originator_address,
            asdu_address,
            request: u8_(&v["request"]),
            freeze: FreezeCode::from_bits(u8_(&v["freeze"])),
            is_negative_confirm: negative(),
            cause: CommandCause::from_u8(cause),
        }),
        "ReadMsg" => Msg::Read(ReadMsg {
            is_test,
            originator_address,
            asdu_address,
            io_address: io_address(),
            cause: ReadCause::from_u8(cause),
        }),
        "ClockSyncMsg" => Msg::ClockSync(ClockSyncMsg {
            is_test,
            originator_address,
            asdu_address,
            time: time(&v["time"]),
            is_negative_confirm: negative(),
            cause: ClockSyncCause::from_u8(cause),
        }),
        "TestMsg" => Msg::Test(TestMsg {
            is_test,
            originator_address,
            asdu_address,
            counter: v.get("counter").map_or(0, |c| u16::try_from(u(c)).unwrap()),
            time: opt_time(v.get("time")),
            cause: ActivationCause::from_u8(cause),
        }),
        "ResetMsg" => Msg::Reset(ResetMsg {
            is_test,
            originator_address,
            asdu_address,
            qualifier: u8_(&v["qualifier"]),
            cause: ActivationCause::from_u8(cause),
        }),
        "DelayMsg" => Msg::Delay(DelayMsg {
            is_test,
            originator_address,
            asdu_address,
            time: u16::try_from(u(&v["time"])).unwrap(),
            cause: DelayCause::from_u8(cause),
        }),
        "ParameterMsg" => Msg::Parameter(ParameterMsg {
            is_test,
            originator_address,
            asdu_address,
            io_address: io_address(),
            parameter: parameter(&v["parameter"]),
            cause: ParameterCause::from_u8(cause),
        }),
        "ParameterActivationMsg" => Msg::ParameterActivation(ParameterActivationMsg {
            is_test,
            originator_address,
            asdu_address,
            io_address: io_address(),
            qualifier: u8_(&v["qualifier"]),
            cause: ParameterActivationCause::from_u8(cause),
        }),
        other => panic!("message type {other}"),
    }
}
