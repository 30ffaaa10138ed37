// Compiling a large component allocates from every compiler thread at
// once; mimalloc keeps them from contending as glibc's allocator does.
#[cfg(unix)]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tether::cli::main()
}
