//! pg-tls-probe: parse → resolve → probe → evaluate → render.
//! The only place that prints or chooses the exit code.

mod certs;
mod cli;
mod facts;
mod target;
mod tls;

fn main() {
    let _ = <cli::Args as clap::Parser>::parse();
}
