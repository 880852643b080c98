//! The `joulebench` command line; everything it does is in [`joulebench::cli`].

fn main() -> std::process::ExitCode {
    joulebench::cli::main()
}
