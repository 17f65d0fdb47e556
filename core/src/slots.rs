//! Lookups that cannot fail, with one panic location for the whole crate.
//!
//! Indexing a slice is `#[track_caller]`: every `calls[slot]` and `hosts[host]` puts its own
//! `Location` (file, line, column: 16 bytes of `.rodata`) and the code that passes it into the
//! build, for an index the engine never makes out of range (a slot comes from a live [`CallId`]
//! or a timer the engine set, and a host index from its own table, neither of which ever
//! shrinks). [`Slots`] is a `Vec` whose indexing panics from one cold place instead, so the
//! browser build carries one location for the engine's hundred-odd lookups. The check itself is
//! the same bounds check as `Vec`'s: nothing changes for the native engine's decision. [`At`] is
//! the same for a slice indexed by a position found in a table of the same length (the config
//! reader's field names and setters).
//!
//! [`CallId`]: crate::engine::CallId

use core::ops::{Deref, DerefMut, Index, IndexMut};

/// A `Vec` whose out-of-range index panics from one location for the whole engine.
#[derive(Debug, Clone)]
pub(crate) struct Slots<T>(Vec<T>);

impl<T> Slots<T> {
    /// An empty table.
    pub(crate) const fn new() -> Self {
        Slots(Vec::new())
    }
}

impl<T> Deref for Slots<T> {
    type Target = Vec<T>;

    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<T> DerefMut for Slots<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.0
    }
}

impl<T> Index<usize> for Slots<T> {
    type Output = T;

    #[inline]
    fn index(&self, i: usize) -> &T {
        match self.0.get(i) {
            Some(t) => t,
            None => out_of_range(),
        }
    }
}

impl<T> IndexMut<usize> for Slots<T> {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut T {
        match self.0.get_mut(i) {
            Some(t) => t,
            None => out_of_range(),
        }
    }
}

/// [`Index`] for a slice, panicking from the same one place.
pub(crate) trait At<T> {
    /// `self[i]`.
    fn at(&self, i: usize) -> &T;
}

impl<T> At<T> for [T] {
    #[inline]
    fn at(&self, i: usize) -> &T {
        match self.get(i) {
            Some(t) => t,
            None => out_of_range(),
        }
    }
}

/// The one place an engine table's index panics: a broken invariant, never bad input.
#[cold]
#[inline(never)]
fn out_of_range() -> ! {
    panic!("a table was indexed out of range (a broken invariant of resile-core)")
}

#[cfg(test)]
mod tests {
    use super::{At, Slots};

    #[test]
    fn indexes_like_a_vec() {
        let mut s = Slots::new();
        s.push(1u32);
        s.push(2);
        s[1] += 40;
        assert_eq!((s[0], s[1], s.len()), (1, 42, 2));
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn an_index_past_the_end_panics() {
        let s: Slots<u32> = Slots::new();
        let _ = s[0];
    }

    #[test]
    fn at_reads_a_slice_and_panics_past_its_end() {
        let v = [7u8, 8];
        assert_eq!(*v.at(1), 8);
        assert!(std::panic::catch_unwind(|| *v.at(2)).is_err());
    }
}
