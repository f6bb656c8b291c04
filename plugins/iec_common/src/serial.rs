//! The serial line settings hat-gateway's IEC 101 and 103 devices share
//! (`hat.drivers.serial`'s `ByteSize`, `Parity`, `StopBits`, `flow_control`, and
//! `hat.drivers.iec101`'s field sizes and link direction), as serde types, with their
//! conversion to the link layer's ([`iec_link`]) parameters.

use iec60870::asdu::{AsduAddressSize, CauseSize, FieldSizes, IoAddressSize};
use serde::Deserialize;

use crate::seconds::secs;

/// Character size (hat's `serial.ByteSize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[allow(missing_docs)]
pub enum ByteSize {
    #[serde(rename = "FIVEBITS")]
    Five,
    #[serde(rename = "SIXBITS")]
    Six,
    #[serde(rename = "SEVENBITS")]
    Seven,
    #[serde(rename = "EIGHTBITS")]
    Eight,
}

/// Parity (hat's `serial.Parity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[allow(missing_docs)]
pub enum Parity {
    None,
    Even,
    Odd,
    Mark,
    Space,
}

/// Stop bits (hat's `serial.StopBits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum StopBits {
    One,
    OnePointFive,
    Two,
}

/// `flow_control`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct FlowControl {
    /// Software flow control.
    pub xonxoff: bool,
    /// RTS/CTS hardware flow control.
    pub rtscts: bool,
    /// DSR/DTR hardware flow control.
    pub dsrdtr: bool,
}

/// The serial line fields of a device entry (`port` ... `silent_interval`), flattened
/// into each plugin's configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SerialConfig {
    /// Serial port path.
    pub port: String,
    /// Bits per second.
    pub baudrate: u32,
    /// Character size.
    pub bytesize: ByteSize,
    /// Parity.
    pub parity: Parity,
    /// Stop bits.
    pub stopbits: StopBits,
    /// Flow control.
    pub flow_control: FlowControl,
    /// Idle time on the line before we send (s).
    pub silent_interval: f64,
}

impl SerialConfig {
    /// The link layer's serial parameters (`silent_interval` already validated).
    pub fn params(&self) -> iec_link::SerialParams {
        let mut params = iec_link::SerialParams::new(self.port.clone(), self.baudrate);
        params.bytesize = self.bytesize.into();
        params.parity = self.parity.into();
        params.stopbits = self.stopbits.into();
        params.xonxoff = self.flow_control.xonxoff;
        params.rtscts = self.flow_control.rtscts;
        params.dsrdtr = self.flow_control.dsrdtr;
        params.silent_interval = secs(self.silent_interval);
        params
    }
}

impl From<ByteSize> for iec_link::ByteSize {
    fn from(value: ByteSize) -> Self {
        match value {
            ByteSize::Five => Self::Five,
            ByteSize::Six => Self::Six,
            ByteSize::Seven => Self::Seven,
            ByteSize::Eight => Self::Eight,
        }
    }
}

impl From<Parity> for iec_link::Parity {
    fn from(value: Parity) -> Self {
        match value {
            Parity::None => Self::None,
            Parity::Even => Self::Even,
            Parity::Odd => Self::Odd,
            Parity::Mark => Self::Mark,
            Parity::Space => Self::Space,
        }
    }
}

impl From<StopBits> for iec_link::StopBits {
    fn from(value: StopBits) -> Self {
        match value {
            StopBits::One => Self::One,
            StopBits::OnePointFive => Self::OnePointFive,
            StopBits::Two => Self::Two,
        }
    }
}

/// Size of a field in octets as hat names it (`ONE`, `TWO`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[allow(missing_docs)]
pub enum Size {
    Zero,
    One,
    Two,
    Three,
}

impl Size {
    /// One more than the largest link address of this size (0 for ZERO: only address
    /// 0).
    pub fn address_limit(self) -> u32 {
        match self {
            Size::Zero => 0,
            Size::One => 0xFF,
            _ => 0xFFFF,
        }
    }

    /// The link layer's address size (THREE, which configurations refuse, as TWO).
    pub fn link_address_size(self) -> iec_link::AddressSize {
        match self {
            Size::Zero => iec_link::AddressSize::Zero,
            Size::One => iec_link::AddressSize::One,
            Size::Two | Size::Three => iec_link::AddressSize::Two,
        }
    }

    /// The broadcast common address of an ASDU address of this size (hat's
    /// `_get_broadcast_asdu_address`).
    pub fn broadcast_asdu_address(self) -> u16 {
        match self {
            Size::One => 0xFF,
            _ => 0xFFFF,
        }
    }
}

/// A configured field size that does not fit its field: the JSON pointer of the value
/// and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeError {
    /// JSON pointer of the bad value, e.g. `/cause_size`.
    pub pointer: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The ASDU field sizes of `cause_size`, `asdu_address_size` and `io_address_size`.
pub fn field_sizes(
    cause: Size,
    asdu_address: Size,
    io_address: Size,
) -> Result<FieldSizes, SizeError> {
    let error = |pointer, reason| SizeError { pointer, reason };
    let cause = match cause {
        Size::One => CauseSize::One,
        Size::Two => CauseSize::Two,
        _ => return Err(error("/cause_size", "must be ONE or TWO")),
    };
    let asdu_address = match asdu_address {
        Size::One => AsduAddressSize::One,
        Size::Two => AsduAddressSize::Two,
        _ => return Err(error("/asdu_address_size", "must be ONE or TWO")),
    };
    let io_address = match io_address {
        Size::One => IoAddressSize::One,
        Size::Two => IoAddressSize::Two,
        Size::Three => IoAddressSize::Three,
        Size::Zero => return Err(error("/io_address_size", "must be ONE, TWO or THREE")),
    };
    Ok(FieldSizes {
        cause,
        asdu_address,
        io_address,
    })
}

/// Direction bit of a balanced link (hat's `link.Direction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LinkDirection {
    /// Station A to station B (DIR = 1 in our frames).
    AToB,
    /// Station B to station A (DIR = 0 in our frames).
    BToA,
}

impl From<LinkDirection> for iec_link::Direction {
    fn from(value: LinkDirection) -> Self {
        match value {
            LinkDirection::AToB => Self::AToB,
            LinkDirection::BToA => Self::BToA,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_config_reads_hat_names_and_gives_link_params() {
        let config: SerialConfig = serde_json::from_value(serde_json::json!({
            "port": "/dev/ttyS0",
            "baudrate": 9600,
            "bytesize": "SEVENBITS",
            "parity": "MARK",
            "stopbits": "ONE_POINT_FIVE",
            "flow_control": {"xonxoff": true, "rtscts": false, "dsrdtr": true},
            "silent_interval": 0.25,
        }))
        .unwrap();
        let params = config.params();
        assert_eq!(params.port, "/dev/ttyS0");
        assert_eq!(params.baudrate, 9600);
        assert_eq!(params.bytesize, iec_link::ByteSize::Seven);
        assert_eq!(params.parity, iec_link::Parity::Mark);
        assert_eq!(params.stopbits, iec_link::StopBits::OnePointFive);
        assert!(params.xonxoff && !params.rtscts && params.dsrdtr);
        assert_eq!(
            params.silent_interval,
            std::time::Duration::from_millis(250)
        );
    }

    #[test]
    fn field_sizes_name_the_field_that_does_not_fit() {
        assert!(field_sizes(Size::Two, Size::Two, Size::Three).is_ok());
        assert_eq!(
            field_sizes(Size::Three, Size::One, Size::One)
                .unwrap_err()
                .pointer,
            "/cause_size"
        );
        assert_eq!(
            field_sizes(Size::One, Size::Zero, Size::One)
                .unwrap_err()
                .pointer,
            "/asdu_address_size"
        );
        assert_eq!(
            field_sizes(Size::One, Size::One, Size::Zero)
                .unwrap_err()
                .pointer,
            "/io_address_size"
        );
    }

    #[test]
    fn sizes_give_address_limits_and_broadcast_addresses() {
        assert_eq!(Size::Zero.address_limit(), 0);
        assert_eq!(Size::One.address_limit(), 0xFF);
        assert_eq!(Size::Two.address_limit(), 0xFFFF);
        assert_eq!(Size::One.broadcast_asdu_address(), 0xFF);
        assert_eq!(Size::Two.broadcast_asdu_address(), 0xFFFF);
        assert_eq!(
            iec_link::Direction::from(LinkDirection::BToA),
            iec_link::Direction::BToA
        );
    }
}
