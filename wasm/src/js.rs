//! The few globals the adapter needs, bound as globals (not through `window`) so the crate works
//! in a page, a worker and Node alike.

use core::future::Future;
use core::pin::Pin;
use core::task::Poll;
use core::time::Duration;

use js_sys::{Function, Promise, Uint8Array};
use resile_core::{Instant, UnixTime};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &Function, ms: f64) -> JsValue;

    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);

    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;

    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues, catch)]
    fn get_random_values(buf: &Uint8Array) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_name = fetch)]
    pub(crate) fn fetch_request(request: &web_sys::Request) -> Promise;
}

#[wasm_bindgen(inline_js = "export function asyncIterable(o) { \
    o[Symbol.asyncIterator] = function () { return this; }; return o; }")]
extern "C" {
    /// Makes `o` usable with `for await` by returning itself as its async iterator.
    #[wasm_bindgen(js_name = asyncIterable)]
    pub(crate) fn async_iterable(o: JsValue) -> JsValue;
}

/// Calls `object.name()` (a method the bindings do not declare, such as a stream reader's).
pub(crate) fn call_method(object: &JsValue, name: &str) -> Result<JsValue, JsValue> {
    let method: js_sys::Function = js_sys::Reflect::get(object, &JsValue::from_str(name))?
        .dyn_into()
        .map_err(|_| JsValue::from_str(name))?;
    method.call0(object)
}

/// The monotonic clock: `performance.now()`, in the engine's units.
pub(crate) fn now() -> Instant {
    Instant::from_millis_f64(performance_now())
}

/// The wall clock: `Date.now()`.
pub(crate) fn wall() -> UnixTime {
    let ms = js_sys::Date::now();
    UnixTime::from_millis(if ms.is_finite() && ms > 0.0 {
        ms as u64
    } else {
        0
    })
}

/// 64 random bits from `crypto.getRandomValues`, for the engine's seed. Falls back to the clocks
/// where there is no `crypto` (jitter then differs per page load, which is all a seed must do).
pub(crate) fn random_seed() -> u64 {
    let buf = Uint8Array::new_with_length(8);
    let mut bytes = [0u8; 8];
    if get_random_values(&buf).is_ok() {
        buf.copy_to(&mut bytes);
        u64::from_le_bytes(bytes)
    } else {
        (js_sys::Date::now() as u64) ^ (performance_now() * 1e6) as u64
    }
}

/// A `setTimeout` that is cleared when dropped.
pub(crate) struct Timer {
    id: JsValue,
    _callback: Closure<dyn FnMut()>,
}

impl Timer {
    /// Calls `f` once after `delay`. `f` must not drop this timer itself; schedule that work
    /// instead (the adapter's callbacks only spawn a task).
    pub(crate) fn new(delay: Duration, f: impl FnMut() + 'static) -> Timer {
        let callback = Closure::<dyn FnMut()>::new(f);
        // Round up: a timer that fires early would find nothing due and be armed again.
        let ms = (delay.as_secs_f64() * 1000.0).ceil().min(2_147_483_647.0);
        let id = set_timeout(callback.as_ref().unchecked_ref(), ms);
        Timer {
            id,
            _callback: callback,
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        clear_timeout(&self.id);
    }
}

/// Awaits `promise` for at most `limit`: `None` when the time ran out first (the timer is
/// cleared either way; what `promise` settles to later is dropped).
pub(crate) async fn within(promise: Promise, limit: Duration) -> Option<Result<JsValue, JsValue>> {
    let mut resolve = None;
    let expired = Promise::new(&mut |r, _| resolve = Some(r));
    let _timer = resolve.map(|r: Function| {
        Timer::new(limit, move || {
            let _ = r.call0(&JsValue::UNDEFINED);
        })
    });
    let mut settled = wasm_bindgen_futures::JsFuture::from(promise);
    let mut expired = wasm_bindgen_futures::JsFuture::from(expired);
    core::future::poll_fn(|cx| {
        if let Poll::Ready(settled) = Pin::new(&mut settled).poll(cx) {
            return Poll::Ready(Some(settled));
        }
        match Pin::new(&mut expired).poll(cx) {
            Poll::Ready(_) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Resolves after `delay` (for tests, demos and token-provider simulations).
pub async fn sleep(delay: Duration) {
    let ms = (delay.as_secs_f64() * 1000.0).ceil();
    let promise = Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, ms);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}
