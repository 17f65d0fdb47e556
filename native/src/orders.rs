//! The engine's orders to one call: a mailbox per call, the call's loop at one end and the
//! driver (under the engine lock) at the other.
//!
//! A call rarely has more than one order pending (`Send`, then `Done`), so the first pending
//! order sits inline and a queue is allocated only when a second arrives before the call took
//! the first. The driver finds a call's mailbox by the call's slot in the engine, without a
//! hash.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures::Stream;

use resile_core::CallId;

use crate::driver::CallMsg;

#[derive(Default)]
struct Inbox {
    /// The oldest pending order, while `rest` is empty or after it.
    first: Option<CallMsg>,
    rest: VecDeque<CallMsg>,
    waker: Option<Waker>,
    /// The driver will send nothing more (the call ended or was cancelled).
    closed: bool,
    /// The call's loop is gone: orders for it are not delivered.
    gone: bool,
}

#[derive(Default)]
struct Mailbox(Mutex<Inbox>);

impl Mailbox {
    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The call's end: its orders, in the order the engine gave them; `None` once the driver has
/// dropped the call without a final order.
pub(crate) struct Orders(Arc<Mailbox>);

impl Stream for Orders {
    type Item = CallMsg;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<CallMsg>> {
        let mut inbox = self.0.inbox();
        if let Some(msg) = inbox.first.take().or_else(|| inbox.rest.pop_front()) {
            return Poll::Ready(Some(msg));
        }
        if inbox.closed {
            return Poll::Ready(None);
        }
        match &inbox.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => inbox.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for Orders {
    fn drop(&mut self) {
        self.0.inbox().gone = true;
    }
}

/// The driver's end of one call's mailbox. Dropping it closes the mailbox.
struct Outbox(Arc<Mailbox>);

impl Outbox {
    /// Queues `msg`; `false` if the call's loop is gone.
    fn deliver(&self, msg: CallMsg) -> bool {
        let waker = {
            let mut inbox = self.0.inbox();
            if inbox.gone {
                return false;
            }
            if inbox.first.is_none() && inbox.rest.is_empty() {
                inbox.first = Some(msg);
            } else {
                inbox.rest.push_back(msg);
            }
            inbox.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        true
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let waker = {
            let mut inbox = self.0.inbox();
            inbox.closed = true;
            inbox.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Every live call's mailbox, by the call's slot in the engine.
#[derive(Default)]
pub(crate) struct Mailboxes(Vec<Option<(CallId, Outbox)>>);

impl Mailboxes {
    /// A mailbox for a call the engine just started; the call's loop reads the returned end.
    pub(crate) fn open(&mut self, id: CallId) -> Orders {
        let mailbox = Arc::new(Mailbox::default());
        let slot = id.slot();
        if self.0.len() <= slot {
            self.0.resize_with(slot + 1, || None);
        }
        self.0[slot] = Some((id, Outbox(mailbox.clone())));
        Orders(mailbox)
    }

    /// Delivers `msg` to `id`; `false` if the call has no mailbox or its loop is gone.
    pub(crate) fn deliver(&self, id: CallId, msg: CallMsg) -> bool {
        match self.0.get(id.slot()) {
            Some(Some((owner, out))) if *owner == id => out.deliver(msg),
            _ => false,
        }
    }

    /// Delivers the call's last order and closes its mailbox.
    pub(crate) fn finish(&mut self, id: CallId, msg: CallMsg) {
        self.deliver(id, msg);
        self.close(id);
    }

    /// Closes the call's mailbox: its loop reads what is pending, then the end.
    pub(crate) fn close(&mut self, id: CallId) {
        if let Some(entry) = self.0.get_mut(id.slot()) {
            if entry.as_ref().is_some_and(|(owner, _)| *owner == id) {
                *entry = None;
            }
        }
    }
}
