fn main() -> std::process::ExitCode {
    // SAFETY: first statement of `main`, before any thread is spawned.
    #[cfg(feature = "train")]
    unsafe {
        pipelang_runtime::model::kernels::candle_elementwise_on_one_thread()
    };
    pipe::cli::main()
}
