//! The engine's orders to one call: a mailbox per call, the call's loop at one end and the
//! driver (under the engine lock) at the other.
//!
//! A call rarely has more than one order pending (`Send`, then `Done`), so the first pending
//! order sits inline and a queue is allocated only when a second arrives before the call took
//! the first. The driver finds a call's mailbox by the call's slot in the engine, without a
//! hash, and beside it where the call's events go ([`CallSink`]), which outlives the mailbox:
//! the engine's last event of a call follows its last order.
//!
//! A mailbox outlives its call at the call's slot: the next call the engine starts there (it
//! hands out the slot freed last first) takes it up again once the earlier call's loop has let
//! go of its end, rather than allocating one of its own ([`Mailboxes::open`]).
//!
//! The call's loop looks at its orders on every wake-up of its task (most are the attempt's:
//! the connection, the response head, the body), so an empty mailbox answers from a flag,
//! without its lock; the waker is registered lock-free ([`AtomicWaker`]). The loop takes its
//! waker back ([`Orders::quiet`]) before it reports an attempt's end itself: the orders that
//! follow are delivered while the loop is running and read before it waits again, and a wake
//! for them would only poll the call's task once more for nothing.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use futures::Stream;

use resile_core::CallId;

use crate::driver::CallMsg;
use crate::telemetry::CallSink;

#[derive(Default)]
struct Inbox {
    /// The oldest pending order, while `rest` is empty or after it.
    first: Option<CallMsg>,
    /// Orders behind it, rare (an abort and the next send together): boxed, so a mailbox,
    /// which every queued call has, keeps one pointer for them.
    #[allow(clippy::box_collection)]
    rest: Option<Box<VecDeque<CallMsg>>>,
    /// The driver will send nothing more (the call ended or was cancelled).
    closed: bool,
}

impl Inbox {
    /// Whether no order waits behind `first`.
    fn nothing_behind(&self) -> bool {
        self.rest.as_ref().is_none_or(|rest| rest.is_empty())
    }
}

#[derive(Default)]
struct Mailbox {
    inbox: Mutex<Inbox>,
    /// Whether the inbox holds an order or is closed: set under the inbox's lock by the
    /// driver, cleared under it by the loop when it takes the last order.
    ready: AtomicBool,
    /// The call's loop is gone: orders for it are not delivered. A flag of its own, so the
    /// loop's end takes no lock: whether it is read before or after an order is queued, the
    /// driver cancels the call either way (the loop's guard does otherwise).
    gone: AtomicBool,
    waker: AtomicWaker,
}

impl Mailbox {
    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the inbox ready (under its lock) and wakes the loop once the lock is let go.
    fn ready(&self, inbox: MutexGuard<'_, Inbox>) {
        self.ready.store(true, Ordering::Release);
        drop(inbox);
        self.waker.wake();
    }
}

/// The call's end: its orders, in the order the engine gave them; `None` once the driver has
/// dropped the call without a final order.
pub(crate) struct Orders(Arc<Mailbox>);

impl Orders {
    /// The loop is about to report an attempt's end itself and reads its orders before it
    /// waits again: whatever the report makes the engine order needs no wake-up.
    pub(crate) fn quiet(&self) {
        drop(self.0.waker.take());
    }

    /// Ready once an order is pending or the driver has dropped the call, taking nothing: a
    /// call waits for its first order this way and takes it inside its loop, so the order is
    /// not kept beside the loop for as long as the call runs.
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mailbox = &*self.0;
        if !mailbox.ready.load(Ordering::Acquire) {
            mailbox.waker.register(cx.waker());
            // An order delivered before the waker was in place: ready now.
            if !mailbox.ready.load(Ordering::Acquire) {
                return Poll::Pending;
            }
        }
        Poll::Ready(())
    }
}

impl Stream for Orders {
    type Item = CallMsg;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<CallMsg>> {
        if self.poll_ready(cx).is_pending() {
            return Poll::Pending;
        }
        let mailbox = &*self.0;
        let mut inbox = mailbox.inbox();
        let next = match inbox.first.take() {
            Some(msg) => Some(msg),
            None => inbox.rest.as_mut().and_then(|rest| rest.pop_front()),
        };
        if let Some(msg) = next {
            if inbox.nothing_behind() && !inbox.closed {
                mailbox.ready.store(false, Ordering::Release);
            }
            return Poll::Ready(Some(msg));
        }
        // Ready with nothing in it: closed.
        Poll::Ready(None)
    }
}

impl Drop for Orders {
    fn drop(&mut self) {
        self.0.gone.store(true, Ordering::Release);
    }
}

impl Mailbox {
    /// Queues `msg`; `false` if the call's loop is gone.
    fn deliver(&self, msg: CallMsg) -> bool {
        if self.gone.load(Ordering::Acquire) {
            return false;
        }
        let mut inbox = self.inbox();
        if inbox.first.is_none() && inbox.nothing_behind() {
            inbox.first = Some(msg);
        } else {
            inbox.rest.get_or_insert_default().push_back(msg);
        }
        self.ready(inbox);
        true
    }

    /// The driver will deliver nothing more: the loop reads what is pending, then the end.
    fn close(&self) {
        let mut inbox = self.inbox();
        inbox.closed = true;
        self.ready(inbox);
    }
}

/// One live call at its slot: its mailbox until the call's last order (the driver's end,
/// closed when it is taken away or the entry dropped), its sink until the call's last event.
struct Entry {
    id: CallId,
    outbox: Option<Arc<Mailbox>>,
    sink: CallSink,
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(mailbox) = self.outbox.take() {
            mailbox.close();
        }
    }
}

/// A slot of the engine's: the call there, and the mailbox of the last call that was there,
/// closed, for the next one to take up.
#[derive(Default)]
struct Slot {
    entry: Option<Entry>,
    spare: Option<Arc<Mailbox>>,
}

/// Every live call's mailbox and sink, by the call's slot in the engine, and how many of the
/// sinks keep a log.
#[derive(Default)]
pub(crate) struct Mailboxes {
    slots: Vec<Slot>,
    logging: usize,
}

impl Mailboxes {
    /// A mailbox for a call the engine just started, its events going to `sink`; the call's
    /// loop reads the returned end. The slot's spare mailbox is taken up when the earlier
    /// call's loop has let go of it (nothing can read it then), emptied; otherwise a new one
    /// is made.
    pub(crate) fn open(&mut self, id: CallId, sink: CallSink) -> Orders {
        let i = id.slot();
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, Slot::default);
        }
        self.logging += usize::from(sink.logs());
        let slot = &mut self.slots[i];
        let mailbox = match slot.spare.take() {
            Some(mut spare) => match Arc::get_mut(&mut spare) {
                Some(unread) => {
                    *unread = Mailbox::default();
                    spare
                }
                None => Arc::new(Mailbox::default()),
            },
            None => Arc::new(Mailbox::default()),
        };
        let earlier = slot.entry.replace(Entry {
            id,
            outbox: Some(mailbox.clone()),
            sink,
        });
        self.logging -= usize::from(earlier.is_some_and(|e| e.sink.logs()));
        Orders(mailbox)
    }

    fn entry(&self, id: CallId) -> Option<&Entry> {
        self.slots
            .get(id.slot())?
            .entry
            .as_ref()
            .filter(|e| e.id == id)
    }

    fn entry_mut(&mut self, id: CallId) -> Option<&mut Slot> {
        self.slots
            .get_mut(id.slot())
            .filter(|s| s.entry.as_ref().is_some_and(|e| e.id == id))
    }

    /// Delivers `msg` to `id`; `false` if the call has no mailbox or its loop is gone.
    pub(crate) fn deliver(&self, id: CallId, msg: CallMsg) -> bool {
        match self.entry(id).and_then(|e| e.outbox.as_ref()) {
            Some(out) => out.deliver(msg),
            None => false,
        }
    }

    /// Whether the call's mailbox is open with nothing in it. Asked under the engine lock while
    /// the call's own task reports to the engine: only the driver delivers (under that lock),
    /// and the loop takes nothing while it reports, so the answer holds until the lock is let
    /// go.
    pub(crate) fn idle(&self, id: CallId) -> bool {
        self.entry(id)
            .and_then(|e| e.outbox.as_ref())
            .is_some_and(|out| !out.ready.load(Ordering::Acquire))
    }

    /// Delivers the call's last order and closes its mailbox.
    pub(crate) fn finish(&mut self, id: CallId, msg: CallMsg) {
        self.deliver(id, msg);
        self.close(id);
    }

    /// Closes the call's mailbox: its loop reads what is pending, then the end. Its sink stays
    /// for the events still to come.
    pub(crate) fn close(&mut self, id: CallId) {
        if let Some(slot) = self.entry_mut(id) {
            if let Some(mailbox) = slot.entry.as_mut().and_then(|e| e.outbox.take()) {
                mailbox.close();
                slot.spare = Some(mailbox);
            }
        }
    }

    /// Takes the call's mailbox away without closing it, after its loop was handed its last
    /// order directly ([`crate::driver::Shared::handle`]): the loop returns with that order
    /// and never reads the mailbox again, and nothing more is delivered to it.
    pub(crate) fn detach(&mut self, id: CallId) {
        if let Some(slot) = self.entry_mut(id) {
            if let Some(mailbox) = slot.entry.as_mut().and_then(|e| e.outbox.take()) {
                slot.spare = Some(mailbox);
            }
        }
    }

    /// Where the call's events go, until its last one.
    pub(crate) fn sink(&self, id: CallId) -> Option<&CallSink> {
        self.entry(id).map(|e| &e.sink)
    }

    /// Forgets the call: its mailbox is closed and its sink dropped (after its last event, or
    /// when it is cancelled).
    pub(crate) fn end(&mut self, id: CallId) {
        if let Some(slot) = self.entry_mut(id) {
            let ended = slot.entry.take();
            self.logging -= usize::from(ended.is_some_and(|e| e.sink.logs()));
        }
    }

    /// Whether any live call's sink keeps a log of its events.
    pub(crate) fn logging(&self) -> bool {
        self.logging > 0
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::task::Waker;

    use resile_core::{CallSpec, Engine, Instant, Method};

    use crate::telemetry::{Call, Target};

    /// A sink for a test's call, its events going nowhere.
    pub(crate) fn sink() -> CallSink {
        let target = Target {
            method: "GET",
            url: "http://a.test/",
            redact: &[],
        };
        Call::start(target).sink(None, &tracing::Span::none())
    }

    /// Two calls in turn at the same slot of the engine.
    fn two_calls_at_one_slot() -> (CallId, CallId) {
        let mut engine = Engine::new(resile_core::Config::default(), 1, Instant::ZERO).unwrap();
        let spec = || CallSpec::new(Method::Get, "http://a.test");
        let first = engine.start(spec(), Instant::ZERO);
        engine.cancel(first, Instant::ZERO);
        let second = engine.start(spec(), Instant::ZERO);
        assert_eq!(first.slot(), second.slot());
        assert_ne!(first, second);
        (first, second)
    }

    #[test]
    fn a_sink_outlives_its_mailbox_until_the_call_ends() {
        let (call, _) = two_calls_at_one_slot();
        let mut boxes = Mailboxes::default();
        let mut orders = boxes.open(call, sink());
        boxes.finish(call, CallMsg::Done { attempts: 1 });
        // The last order is read, then the end; the events still to come find the sink.
        let mut cx = Context::from_waker(Waker::noop());
        let mut next = || Pin::new(&mut orders).poll_next(&mut cx);
        assert!(matches!(
            next(),
            Poll::Ready(Some(CallMsg::Done { attempts: 1 }))
        ));
        assert!(matches!(next(), Poll::Ready(None)));
        assert!(boxes.sink(call).is_some());
        assert!(!boxes.deliver(call, CallMsg::Done { attempts: 1 }));
        boxes.end(call);
        assert!(boxes.sink(call).is_none());
    }

    #[test]
    fn ready_takes_nothing_and_says_so_for_an_order_and_for_the_end() {
        let (call, _) = two_calls_at_one_slot();
        let mut boxes = Mailboxes::default();
        let mut orders = boxes.open(call, sink());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(orders.poll_ready(&mut cx).is_pending());
        assert!(boxes.deliver(call, CallMsg::Done { attempts: 1 }));
        // Ready, as often as asked, and the order is still there to be taken.
        assert!(orders.poll_ready(&mut cx).is_ready());
        assert!(orders.poll_ready(&mut cx).is_ready());
        assert!(matches!(
            Pin::new(&mut orders).poll_next(&mut cx),
            Poll::Ready(Some(CallMsg::Done { attempts: 1 }))
        ));
        assert!(orders.poll_ready(&mut cx).is_pending());
        // Closed by the driver: ready, and the stream ends.
        boxes.close(call);
        assert!(orders.poll_ready(&mut cx).is_ready());
        assert!(matches!(
            Pin::new(&mut orders).poll_next(&mut cx),
            Poll::Ready(None)
        ));
    }

    #[test]
    fn a_later_call_at_the_same_slot_is_not_the_earlier_one() {
        let (earlier, later) = two_calls_at_one_slot();
        let mut boxes = Mailboxes::default();
        let _gone = boxes.open(earlier, sink());
        let _orders = boxes.open(later, sink());
        assert!(boxes.sink(earlier).is_none());
        assert!(!boxes.deliver(earlier, CallMsg::Done { attempts: 1 }));
        // Ending the earlier call leaves the later one alone.
        boxes.end(earlier);
        boxes.close(earlier);
        assert!(boxes.sink(later).is_some());
        assert!(boxes.deliver(later, CallMsg::Done { attempts: 1 }));
    }

    /// A call at its slot given its last order (`Done`) and ended: its loop's end, unread.
    fn ended(boxes: &mut Mailboxes, call: CallId) -> Orders {
        let orders = boxes.open(call, sink());
        boxes.finish(call, CallMsg::Done { attempts: 1 });
        boxes.end(call);
        orders
    }

    /// What `orders` reads next is `Done { attempts }`.
    fn reads_done(orders: &mut Orders, attempts: u32) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        matches!(
            Pin::new(orders).poll_next(&mut cx),
            Poll::Ready(Some(CallMsg::Done { attempts: n })) if n == attempts
        )
    }

    #[test]
    fn a_slots_next_call_takes_up_its_mailbox_once_the_earlier_loop_let_go() {
        let (earlier, later) = two_calls_at_one_slot();
        let mut boxes = Mailboxes::default();
        let mut orders = ended(&mut boxes, earlier);
        assert!(reads_done(&mut orders, 1));
        let first = Arc::as_ptr(&orders.0);
        drop(orders);
        // Were the mailbox freed with its loop's end, this would most likely take its place.
        let decoy = Arc::new(Mailbox::default());

        // Taken up, emptied: the later call waits for its own first order.
        let mut orders = boxes.open(later, sink());
        assert_eq!(Arc::as_ptr(&orders.0), first);
        assert!(!Arc::ptr_eq(&orders.0, &decoy));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(orders.poll_ready(&mut cx).is_pending());
        assert!(boxes.idle(later));
        assert!(boxes.deliver(later, CallMsg::Done { attempts: 2 }));
        assert!(reads_done(&mut orders, 2));
    }

    #[test]
    fn a_mailbox_still_read_by_an_earlier_loop_is_not_taken_up() {
        let (earlier, later) = two_calls_at_one_slot();
        let mut boxes = Mailboxes::default();
        let mut old = ended(&mut boxes, earlier);
        let mut orders = boxes.open(later, sink());
        assert!(!Arc::ptr_eq(&orders.0, &old.0));
        assert!(boxes.deliver(later, CallMsg::Done { attempts: 2 }));
        // The earlier loop reads its own last order and its end, nothing of the later call's.
        assert!(reads_done(&mut old, 1));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(
            Pin::new(&mut old).poll_next(&mut cx),
            Poll::Ready(None)
        ));
        assert!(reads_done(&mut orders, 2));
    }

    #[test]
    fn a_mailbox_is_idle_only_while_open_with_nothing_in_it() {
        let (call, _) = two_calls_at_one_slot();
        let mut boxes = Mailboxes::default();
        assert!(!boxes.idle(call));
        let mut orders = boxes.open(call, sink());
        assert!(boxes.idle(call));
        assert!(boxes.deliver(call, CallMsg::Done { attempts: 1 }));
        assert!(!boxes.idle(call));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(Pin::new(&mut orders).poll_next(&mut cx).is_ready());
        assert!(boxes.idle(call));
        boxes.close(call);
        assert!(!boxes.idle(call));
    }

    /// Counts its wake-ups.
    struct Counting(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn an_order_wakes_a_waiting_loop_and_none_after_it_went_quiet() {
        let (call, _) = two_calls_at_one_slot();
        let mut boxes = Mailboxes::default();
        let mut orders = boxes.open(call, sink());
        let wakes = Arc::new(Counting(Default::default()));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let woken = || wakes.0.load(Ordering::SeqCst);

        // Waiting: an order wakes the loop, which then reads it.
        assert!(Pin::new(&mut orders).poll_next(&mut cx).is_pending());
        let abort = |attempt| CallMsg::Abort {
            attempt,
            why: resile_core::Why::AttemptTimeout,
        };
        assert!(boxes.deliver(call, abort(1)));
        assert_eq!(woken(), 1);
        let read = Pin::new(&mut orders).poll_next(&mut cx);
        assert!(matches!(
            read,
            Poll::Ready(Some(CallMsg::Abort { attempt: 1, .. }))
        ));
        assert!(Pin::new(&mut orders).poll_next(&mut cx).is_pending());

        // Quiet: orders delivered meanwhile wake nothing, and are read in order at the next
        // look, then the end.
        orders.quiet();
        assert!(boxes.deliver(call, abort(2)));
        boxes.finish(call, CallMsg::Done { attempts: 2 });
        assert_eq!(woken(), 1);
        let mut next = || Pin::new(&mut orders).poll_next(&mut cx);
        assert!(matches!(
            next(),
            Poll::Ready(Some(CallMsg::Abort { attempt: 2, .. }))
        ));
        assert!(matches!(
            next(),
            Poll::Ready(Some(CallMsg::Done { attempts: 2 }))
        ));
        assert!(matches!(next(), Poll::Ready(None)));
        assert!(matches!(next(), Poll::Ready(None)));
    }
}
