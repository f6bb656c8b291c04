//! hat-gateway compatible IEC 60870-5-104 master (placeholder, issue 9).
