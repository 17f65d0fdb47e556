//! `RefCell` borrows with one panic location for the whole crate.
//!
//! `RefCell::borrow` and `borrow_mut` are `#[track_caller]`: every call site puts its own
//! `Location` (file, line, column: 16 bytes of `.rodata`) into the module, for a double borrow
//! the adapter never makes (every input takes a cell for one decision and lets go before anything
//! is awaited or any JavaScript runs) and a browser could not show (the module aborts on a panic
//! without a message). Borrowed through [`Lend`], the crate's sites share one location.

use core::cell::{Ref, RefCell, RefMut};

/// [`RefCell::borrow`] and [`RefCell::borrow_mut`], without the caller's location.
pub(crate) trait Lend<T: ?Sized> {
    /// [`RefCell::borrow`].
    fn lend(&self) -> Ref<'_, T>;
    /// [`RefCell::borrow_mut`].
    fn lend_mut(&self) -> RefMut<'_, T>;
}

impl<T: ?Sized> Lend<T> for RefCell<T> {
    fn lend(&self) -> Ref<'_, T> {
        self.borrow()
    }

    fn lend_mut(&self) -> RefMut<'_, T> {
        self.borrow_mut()
    }
}
