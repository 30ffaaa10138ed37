//! What the tests run besides Tether itself: the guest components built
//! for wasm32-wasip2 by this crate's build script (the sample extensions in
//! `plugins/` and the hostile fixtures in `tests/fixtures/`), named by
//! constants, and the unmodified Azure SDK for Python ([`azure_sdk`]).

pub mod azure_sdk;

include!(concat!(env!("OUT_DIR"), "/components.rs"));
