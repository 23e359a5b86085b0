//! Integration tests: the real server over `testdata/`, driven over HTTP, responses decoded.
//! One test binary (see support.rs for the harness).

mod animation;
mod attention;
mod backend;
mod browser;
mod browser_uploads;
mod claims;
mod cli;
mod colour;
mod errors;
mod fault;
mod gallery;
mod heif;
mod hostile;
mod http_semantics;
mod inputs;
mod lambda;
mod listing;
mod metadata;
mod multipart;
mod new_inputs;
mod placeholder;
mod placeholder_reference;
mod presets;
mod probe;
mod reference;
mod runtime_api;
mod s3;
mod security;
mod srcset;
mod support;
mod transform;
mod uploads;
