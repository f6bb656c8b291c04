//! hat-gateway compatible IEC 60870-5-104 slave (placeholder, issue 9).
