//! What `tether-ext` does, as a library: the scaffolds and the build of a
//! project in its language. The command line (`main.rs`) is a thin layer
//! over it; the host's benchmarks build the Python and JavaScript samples
//! through it, exactly as an author's `tether-ext build` would.

pub mod javascript;
pub mod python;
pub mod scaffold;
pub mod toolchain;
