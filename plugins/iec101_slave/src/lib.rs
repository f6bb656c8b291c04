//! hat-gateway 0.6.48's IEC 60870-5-101 slave as a gateway-host plugin.
