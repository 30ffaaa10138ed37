//! Paths of the guest components built for wasm32-wasip2 by this crate's
//! build script: the sample extensions in `plugins/` and the hostile
//! fixtures in `tests/fixtures/`. Tests name components by these constants.

include!(concat!(env!("OUT_DIR"), "/components.rs"));
