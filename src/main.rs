//! The server: `cargo run --release` at the top of the workspace serves the API on 127.0.0.1:8080
//! over an embedded SQLite database. Configuration comes from the environment (see the README).

fn main() -> std::process::ExitCode {
    api::main()
}
