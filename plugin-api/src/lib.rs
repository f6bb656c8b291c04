//! gateway-plugin-api: the stable ABI between gateway-host and device plugins, and the
//! SDK plugin authors use.

pub use gateway_model as model;
