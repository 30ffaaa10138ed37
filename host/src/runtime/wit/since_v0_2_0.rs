//! Bindings for `tether:extension@0.2.0`, the newest: the host implements
//! these once (`host_api.rs`).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "extension",
});
