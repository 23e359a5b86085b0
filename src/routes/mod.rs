//! One handler per route: each takes the state and the request and answers with a response
//! or an `Error` (which `app::handle` turns into its JSON body).

pub(crate) mod gallery;
pub(crate) mod image;
pub(crate) mod multipart;
pub(crate) mod uploads;
