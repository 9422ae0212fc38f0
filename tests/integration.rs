//! The single integration test binary (style habit 10): every module below
//! runs the built `pg-tls-probe` and checks its JSON report.
//!
//! Run with `cargo test --test integration`. Real-server tests need the
//! PostgreSQL server binaries (see `util/pg.rs`); without them they skip,
//! unless `CI=true`.

// Test support: scrubbed runner, rcgen PKI, real servers, fake peers.
mod util;

// Real PostgreSQL servers set up per the article, with one variation each.
mod live;

// Peers that are not PostgreSQL: closed port, silence, garbage, HTTP, a
// server that asks for a cleartext password.
mod fakes;

// Usage errors (UNKNOWN, exit 3, in the requested format), --help, --version
// and passwords kept out of every output.
mod cli;

// The protocol scan cross-checked with testssl.sh on real servers.
mod testssl;
