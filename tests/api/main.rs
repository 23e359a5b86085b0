//! Integration tests: the real server over `testdata/`, driven over HTTP, responses decoded.
//! One test binary (see support.rs for the harness).

mod errors;
mod http_semantics;
mod support;
mod transform;
