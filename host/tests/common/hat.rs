//! Launcher for the real hat-event server (filled in below).
