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

// PostgreSQL 12, 15, 17 and 18 (scripts/fetch-postgres.sh): the article's
// setup, pg_stat_ssl, plaintext rejected, direct TLS where the server has it.
mod matrix;

// sslnegotiation=direct on the wire: ClientHello first, ALPN offered on
// both paths, a TLS peer without ALPN refused, bad values refused.
mod direct;

// --format junit from real runs, validated against junit-10.xsd.
mod junit;

// Usage errors (UNKNOWN, exit 3, in the requested format), --help, --version
// and passwords kept out of every output.
mod cli;

// The protocol and weak-cipher scan (--scan) against real servers and fakes.
mod scan;

// --audit: server-side settings, pg_hba.conf rules and a census of plaintext
// sessions (replication included), against real servers and standbys.
mod audit;

// The protocol scan cross-checked with testssl.sh on real servers.
mod testssl;

// Service files (resolved as psql resolves them) and runs over many
// targets: --services, host lists, silent targets.
mod fleet;

// `serve`, the Prometheus exporter: scrapes against real servers, no relay,
// scrape timeouts, the in-flight cap, hostile HTTP, SIGTERM.
mod exporter;

// The certificate verdict against psql's on a generated corpus (issue 14).
mod differential;

// The session's authentication method on the wire, require_auth and
// channel_binding, each against libpq 18's verdict.
mod auth;

// Every other libpq keyword that changes libpq's verdict, asked of the
// probe and of libpq 18 on the same server.
mod keywords;

// Real PgBouncer and Pgpool-II with client TLS in front of real PostgreSQL.
mod poolers;

// --audit's rotation check: served versus on-disk certificates (by content
// and by time), a failed SSL reload, expiring client-side certificates.
mod rotation;

// The shipped Prometheus and Icinga 2 examples with the real tools:
// promtool, prometheus scraping `serve` (also sharded by hashmod), icinga2.
mod monitoring;
