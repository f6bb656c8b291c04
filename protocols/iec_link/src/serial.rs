//! Serial port parameters (what hat-gateway's iec101 / iec103 configurations give) and
//! opening the port.

use std::time::Duration;

use crate::LinkError;

/// Character size (hat's `serial.ByteSize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteSize {
    /// 5 bits.
    Five,
    /// 6 bits.
    Six,
    /// 7 bits.
    Seven,
    /// 8 bits.
    Eight,
}

/// Parity (hat's `serial.Parity`). Mark and space are refused by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parity {
    /// No parity bit.
    None,
    /// Even parity (IEC 60870-5-1 FT1.2 uses this).
    Even,
    /// Odd parity.
    Odd,
    /// Mark parity (not supported by the driver).
    Mark,
    /// Space parity (not supported by the driver).
    Space,
}

/// Stop bits (hat's `serial.StopBits`). 1.5 is refused by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopBits {
    /// One.
    One,
    /// One and a half (not supported by the driver).
    OnePointFive,
    /// Two.
    Two,
}

/// How to open and use a serial port.
#[derive(Debug, Clone, PartialEq)]
pub struct SerialParams {
    /// Port path (`/dev/ttyS0`, `COM3`).
    pub port: String,
    /// Bits per second.
    pub baudrate: u32,
    /// Character size.
    pub bytesize: ByteSize,
    /// Parity.
    pub parity: Parity,
    /// Stop bits.
    pub stopbits: StopBits,
    /// RTS/CTS hardware flow control.
    pub rtscts: bool,
    /// DSR/DTR flow control (not supported by the driver: refused when set).
    pub dsrdtr: bool,
    /// XON/XOFF software flow control.
    pub xonxoff: bool,
    /// Minimum quiet time on the line before each frame we write (since the last octet
    /// read or written).
    pub silent_interval: Duration,
}

impl SerialParams {
    /// `port` at `baudrate`, 8 data bits, even parity, one stop bit (FT1.2's character
    /// format), no flow control, hat's 5 ms silent interval.
    pub fn new(port: impl Into<String>, baudrate: u32) -> SerialParams {
        SerialParams {
            port: port.into(),
            baudrate,
            bytesize: ByteSize::Eight,
            parity: Parity::Even,
            stopbits: StopBits::One,
            rtscts: false,
            dsrdtr: false,
            xonxoff: false,
            silent_interval: Duration::from_millis(5),
        }
    }

    /// Bits on the line per octet (start, data, parity, stop; 1.5 counts as 2).
    pub fn bits_per_char(&self) -> u32 {
        let data = match self.bytesize {
            ByteSize::Five => 5,
            ByteSize::Six => 6,
            ByteSize::Seven => 7,
            ByteSize::Eight => 8,
        };
        let parity = u32::from(self.parity != Parity::None);
        let stop = match self.stopbits {
            StopBits::One => 1,
            StopBits::OnePointFive | StopBits::Two => 2,
        };
        1 + data + parity + stop
    }

    /// Opens and configures the port.
    pub(crate) fn open(&self) -> Result<tokio_serial::SerialStream, LinkError> {
        let unsupported =
            |what: &str| LinkError::Unsupported(format!("{what} (serial port {})", self.port));
        let data_bits = match self.bytesize {
            ByteSize::Five => tokio_serial::DataBits::Five,
            ByteSize::Six => tokio_serial::DataBits::Six,
            ByteSize::Seven => tokio_serial::DataBits::Seven,
            ByteSize::Eight => tokio_serial::DataBits::Eight,
        };
        let parity = match self.parity {
            Parity::None => tokio_serial::Parity::None,
            Parity::Even => tokio_serial::Parity::Even,
            Parity::Odd => tokio_serial::Parity::Odd,
            Parity::Mark => return Err(unsupported("parity MARK")),
            Parity::Space => return Err(unsupported("parity SPACE")),
        };
        let stop_bits = match self.stopbits {
            StopBits::One => tokio_serial::StopBits::One,
            StopBits::Two => tokio_serial::StopBits::Two,
            StopBits::OnePointFive => return Err(unsupported("stop bits ONE_POINT_FIVE")),
        };
        let flow_control = match (self.xonxoff, self.rtscts, self.dsrdtr) {
            (_, _, true) => return Err(unsupported("DSR/DTR flow control")),
            (true, true, _) => return Err(unsupported("XON/XOFF together with RTS/CTS")),
            (true, false, _) => tokio_serial::FlowControl::Software,
            (false, true, _) => tokio_serial::FlowControl::Hardware,
            (false, false, _) => tokio_serial::FlowControl::None,
        };
        let builder = tokio_serial::new(&self.port, self.baudrate)
            .data_bits(data_bits)
            .parity(parity)
            .stop_bits(stop_bits)
            .flow_control(flow_control);
        tokio_serial::SerialStream::open(&builder).map_err(|err| LinkError::Open {
            port: self.port.clone(),
            reason: err.to_string(),
        })
    }
}
