//! The `gateway-host` binary: command line, configuration, logging and the daemon
//! (see `gateway_host::cli`).

fn main() -> std::process::ExitCode {
    gateway_host::cli::main()
}
