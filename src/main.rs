fn main() -> std::process::ExitCode {
    pipelang::cli::main()
}
