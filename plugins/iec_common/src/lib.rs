//! hat-gateway IEC 60870-5 shared device pieces (placeholder, issue 9).
