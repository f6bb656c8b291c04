//! The ABI of gateway-plugin-api 1.1.0, as released: `src/abi/` is an unchanged copy of
//! that version's `abi` module (the SDK is left out). It has no `hat_modules` field in
//! the root module: a plugin built against it is a plugin built before API 1.2, which
//! the host must keep loading (host/tests/plugins_out_of_tree.rs).

pub mod abi;

pub use gateway_model as model;
