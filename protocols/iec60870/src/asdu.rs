//! Placeholder: filled in by the IEC 60870-5 work (issue 9).
