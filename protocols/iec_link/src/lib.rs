//! IEC 60870-5-2 link connections over serial ports (tokio shell).
