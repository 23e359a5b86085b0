//! The pixel steps between decode and encode, one file each, and [`Step`], the list a
//! [`Plan`](super::Plan) is run as.
//!
//! A step has a name (what `Server-Timing` and the request log call it), runs on [`Pixels`]
//! and says how much scratch memory it needs, so that a render is weighed as its decode, the
//! sum over its steps, its images in flight and its encoder.
//! A new step is a file here, a variant of [`Step`] and the line of `Plan::steps` that decides
//! when it runs.

pub mod flatten;
pub mod orient;
pub mod pad;
pub mod resize;

pub use flatten::Flatten;
pub use orient::Orient;
pub use pad::Pad;
pub use resize::Resize;

use super::Pixels;
use crate::error::Result;
use fast_image_resize::Resizer;

/// What a step may borrow while it runs: workers built once and reused across renders.
pub struct Context<'a> {
    pub resizer: &'a mut Resizer,
}

/// One step of a render, with everything it needs to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Resize(Resize),
    Orient(Orient),
    Pad(Pad),
    Flatten(Flatten),
}

impl Step {
    /// What timings call this step.
    pub fn name(&self) -> &'static str {
        match self {
            Step::Resize(_) => Resize::NAME,
            Step::Orient(_) => Orient::NAME,
            Step::Pad(_) => Pad::NAME,
            Step::Flatten(_) => Flatten::NAME,
        }
    }

    pub fn run(&self, px: Pixels, cx: &mut Context) -> Result<Pixels> {
        match self {
            Step::Resize(s) => s.run(px, cx),
            Step::Orient(s) => s.run(px, cx),
            Step::Pad(s) => s.run(px, cx),
            Step::Flatten(s) => s.run(px, cx),
        }
    }

    /// Bytes the step holds besides the image it is given and the one it returns (its
    /// scratch): what admission adds up, over the plan's steps, before any work.
    pub fn scratch_bytes(&self) -> u64 {
        match self {
            Step::Resize(s) => s.scratch_bytes(),
            Step::Orient(s) => s.scratch_bytes(),
            Step::Pad(s) => s.scratch_bytes(),
            Step::Flatten(s) => s.scratch_bytes(),
        }
    }
}
