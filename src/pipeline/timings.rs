//! [`Timings`]: how long each named stage of one render took, in order (decode, each step
//! by its name, encode), for `Server-Timing`, the request log and the CLI's report.

use std::time::{Duration, Instant};

/// The name of the decode's timing.
pub const DECODE: &str = "decode";
/// The name of the encode's timing.
pub const ENCODE: &str = "encode";

/// Most stages one render records: decode, encode and each kind of step once, with room to
/// spare. A `Copy` value (no allocation), so that a cached rendition's timings are read
/// without cloning.
const CAPACITY: usize = 12;

/// (name, duration) of each stage of a render, in the order they ran.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    entries: [(&'static str, Duration); CAPACITY],
    len: usize,
}

impl Timings {
    /// Record `name` after the stages before it; past the capacity (more stages than any
    /// plan has), the time is added to the last stage so that totals stay whole.
    pub fn push(&mut self, name: &'static str, d: Duration) {
        if self.len < CAPACITY {
            self.entries[self.len] = (name, d);
            self.len += 1;
        } else {
            self.entries[CAPACITY - 1].1 += d;
        }
    }

    /// Run `f`, recording its time under `name`.
    pub fn time<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        self.push(name, t.elapsed());
        out
    }

    /// Run `f`, adding its time to the stage called `name` when one ran already (the same
    /// step over every frame of an animation), else recording it as [`Timings::time`] does.
    pub fn accumulate<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        let d = t.elapsed();
        match self.entries[..self.len]
            .iter_mut()
            .find(|(n, _)| *n == name)
        {
            Some((_, total)) => *total += d,
            None => self.push(name, d),
        }
        out
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, Duration)> + '_ {
        self.entries[..self.len].iter().copied()
    }

    /// The time of the stages called `names`, added up (zero when none ran).
    pub fn total_of(&self, names: &[&str]) -> Duration {
        self.iter()
            .filter(|(n, _)| names.contains(n))
            .map(|(_, d)| d)
            .sum()
    }

    /// The pixel steps between decode and encode, in order.
    pub fn steps(&self) -> impl Iterator<Item = (&'static str, Duration)> + '_ {
        self.iter().filter(|(n, _)| ![DECODE, ENCODE].contains(n))
    }

    /// The time of all the pixel steps (what used to be timed as one "resize" stage).
    pub fn steps_total(&self) -> Duration {
        self.steps().map(|(_, d)| d).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_adds_up_by_name() {
        let ms = Duration::from_millis;
        let mut t = Timings::default();
        t.push(DECODE, ms(5));
        t.push("resize", ms(3));
        t.push("orient", ms(1));
        t.push(ENCODE, ms(7));
        let names: Vec<_> = t.iter().map(|(n, _)| n).collect();
        assert_eq!(names, [DECODE, "resize", "orient", ENCODE]);
        assert_eq!(t.total_of(&[DECODE]), ms(5));
        assert_eq!(t.total_of(&["resize", ENCODE]), ms(10));
        assert_eq!(t.total_of(&["blur"]), Duration::ZERO);
        let steps: Vec<_> = t.steps().collect();
        assert_eq!(steps, [("resize", ms(3)), ("orient", ms(1))]);
        assert_eq!(t.steps_total(), ms(4));
        assert_eq!(Timings::default().steps_total(), Duration::ZERO);
        assert_eq!(t.time("pad", || 42), 42);
        assert_eq!(t.iter().last().map(|(n, _)| n), Some("pad"));
    }

    #[test]
    fn stages_past_the_capacity_still_count() {
        let mut t = Timings::default();
        for _ in 0..CAPACITY + 3 {
            t.push("resize", Duration::from_millis(1));
        }
        assert_eq!(t.iter().count(), CAPACITY);
        assert_eq!(t.steps_total(), Duration::from_millis(CAPACITY as u64 + 3));
    }
}
