//! The pixel steps between decode and encode, one file each, and [`Step`], the list a
//! [`Plan`](super::Plan) is run as.
//!
//! A step has a name (what `Server-Timing` and the request log call it), runs on [`Pixels`]
//! and says how much scratch memory it needs, so that a render is weighed as its decode, the
//! sum over its steps, its images in flight and its encoder.
//! The fixed steps (resize, orient, pad, flatten) are variants of [`Step`], placed by
//! `Plan::steps`. Effects on the resized pixels (blur, sharpen, ...) are [`Effect`]s: a new
//! one is a file here whose `plan` reads its parameter from the transform, plus its `mod` line
//! and its entry in [`EFFECTS`]; nothing else in the pipeline changes.

pub mod blur;
pub mod flatten;
pub mod orient;
pub mod pad;
pub mod resize;
pub mod sharpen;
pub mod trim;

pub use flatten::Flatten;
pub use orient::Orient;
pub use pad::Pad;
pub use resize::Resize;

use super::Pixels;
use crate::error::Result;
use crate::params::Transform;
use fast_image_resize::Resizer;

/// How an effect is planned: its [`Effect`] when the transform asks for it, for a resized
/// image of the given size.
pub type PlanEffect = fn(&Transform, (u32, u32)) -> Option<Effect>;

/// The effects, in the order they run on the resized pixels.
pub const EFFECTS: &[PlanEffect] = &[blur::plan, sharpen::plan];

/// An effect on the resized pixels, with its parameter.
#[derive(Debug, Clone, Copy)]
pub struct Effect {
    /// What timings call it.
    pub name: &'static str,
    /// Its parameter (a sigma, a strength), as its `run` takes it.
    pub amount: f32,
    pub run: fn(Pixels, f32) -> Result<Pixels>,
    /// Its scratch for the image it was planned for.
    pub scratch_bytes: u64,
}

impl Effect {
    /// An effect whose scratch is `bytes_per_pixel` for each pixel of the `size` it runs on.
    pub fn new(
        name: &'static str,
        amount: f32,
        run: fn(Pixels, f32) -> Result<Pixels>,
        bytes_per_pixel: u64,
        (w, h): (u32, u32),
    ) -> Effect {
        Effect {
            name,
            amount,
            run,
            scratch_bytes: u64::from(w) * u64::from(h) * bytes_per_pixel,
        }
    }
}

/// Effects are equal when they do the same thing (function pointers do not compare reliably).
impl PartialEq for Effect {
    fn eq(&self, other: &Effect) -> bool {
        (self.name, self.amount.to_bits(), self.scratch_bytes)
            == (other.name, other.amount.to_bits(), other.scratch_bytes)
    }
}

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
    Effect(Effect),
}

impl Step {
    /// What timings call this step.
    pub fn name(&self) -> &'static str {
        match self {
            Step::Resize(_) => Resize::NAME,
            Step::Orient(_) => Orient::NAME,
            Step::Pad(_) => Pad::NAME,
            Step::Flatten(_) => Flatten::NAME,
            Step::Effect(e) => e.name,
        }
    }

    pub fn run(&self, px: Pixels, cx: &mut Context) -> Result<Pixels> {
        match self {
            Step::Resize(s) => s.run(px, cx),
            Step::Orient(s) => s.run(px, cx),
            Step::Pad(s) => s.run(px, cx),
            Step::Flatten(s) => s.run(px, cx),
            Step::Effect(e) => (e.run)(px, e.amount),
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
            Step::Effect(e) => e.scratch_bytes,
        }
    }
}
