//! gateway-host: a hat-gateway compatible gateway whose device types are plugins.
//!
//! Modules: `plugins` (loader and registry of plugin libraries).
