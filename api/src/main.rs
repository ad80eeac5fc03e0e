//! The server binary of the `api` crate; the workspace root's `cargo run` runs the same entry point.

fn main() -> std::process::ExitCode {
    api::main()
}
