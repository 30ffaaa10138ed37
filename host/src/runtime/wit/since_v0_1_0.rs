//! Bindings for `tether:extension@0.1.0`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "extension",
});
