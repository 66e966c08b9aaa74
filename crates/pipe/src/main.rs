// The checker, planner and language server build many small trees; mimalloc makes a large
// check about a third faster than glibc's malloc (BENCHMARKS.md, "Language").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // SAFETY: first statement of `main`, before any thread is spawned.
    #[cfg(feature = "train")]
    unsafe {
        pipelang_runtime::model::kernels::candle_elementwise_on_one_thread()
    };
    pipe::cli::main()
}
