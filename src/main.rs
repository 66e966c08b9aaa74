fn main() -> std::process::ExitCode {
    // SAFETY: first statement of `main`, before any thread is spawned.
    unsafe { pipelang::runtime::model::kernels::candle_elementwise_on_one_thread() };
    pipelang::cli::main()
}
