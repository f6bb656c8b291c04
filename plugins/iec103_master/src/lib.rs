//! hat-gateway 0.6.48's IEC 60870-5-103 master as a gateway-host plugin.
