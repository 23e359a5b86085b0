//! imgfn: an on-the-fly image service for AWS Lambda Function URLs and local folders.
//!
//! A request `GET /photos/cat.jpg?w=400&fmt=webp` names an original (`photos/cat.jpg`) and a
//! transformation; imgfn fetches the original, resizes it with SIMD (`fast_image_resize`),
//! encodes it and answers with the raw image. The layout follows the path of a request:
//!
//! - [`params`]: the query string parsed into typed [`params::Params`] (the URL contract).
//! - [`pipeline`]: the synchronous core: probe, plan ([`pipeline::geometry`]), decode,
//!   resize, encode. No I/O, no async.
//! - [`placeholder`]: an original's ThumbHash and dominant colour, from its smallest decode.
//! - [`srcset`]: `fmt=json&srcset=`: `<img>` attributes for a set of widths or presets.
//! - [`key`]: [`key::Key`], the validated name of an original (a leaf).
//! - [`source`]: where originals come from (a local folder; S3).
//! - [`cache`]: the warm in-memory cache of sources and renditions.
//! - [`app`]: `handle(&AppState, Request) -> Response`, shared by every edge: the
//!   [`route`] parsed once, then its handler (`routes/`), answers built in `respond`.
//! - [`state`]: [`state::AppState`], built once and borrowed by every request.
//! - [`server`]: the local HTTP server; [`lambda`]: Function URL events, same handler.
//! - [`uploads`]: presigned (or locally signed) upload URLs; [`gallery`]: the listing and
//!   the HTML page built on it.
//! - [`secrets`]: the signing keys and upload token in force (given, or read from Secrets
//!   Manager and re-read after a TTL); [`metrics`]: one CloudWatch EMF line per request.
//! - [`error`]: the one error enum and its HTTP mapping.

pub mod app;
pub mod cache;
pub mod config;
pub mod error;
pub mod gallery;
pub mod key;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod metrics;
pub mod params;
pub mod pipeline;
pub mod placeholder;
pub mod policy;
mod respond;
pub mod route;
mod routes;
pub mod secrets;
pub mod server;
pub mod signing;
pub mod simd;
pub mod source;
pub mod srcset;
pub mod state;
pub mod uploads;

pub use error::{Error, Result};
