//! Engine values straight into JavaScript objects: a serde `Serializer` whose output is a
//! `JsValue`, built with `Reflect::set` and `Array::push`. It makes what `serde_json::to_value`
//! followed by `JSON.parse(JSON.stringify(..))` made (numbers as JS numbers, a non-finite float
//! as `null`, unit variants as their names, other variants as `{name: value}`), without a JSON
//! value or text in between, so the module carries one serializer for every event and view.

use core::fmt;

use js_sys::{Array, Object, Reflect};
use serde::ser::{self, Serialize};
use wasm_bindgen::JsValue;

use crate::translate::camel;

/// How object keys reach JavaScript.
#[derive(Clone, Copy)]
pub(crate) enum Keys {
    /// camelCase at every depth (`at_ms` → `atMs`): the engine's values (events, views, config).
    Camel,
    /// As written: documents the caller owns (page items).
    AsWritten,
}

/// `value` as a JavaScript value; `null` if its `Serialize` fails (none of the engine's does).
pub(crate) fn to_js<T: Serialize + ?Sized>(value: &T, keys: Keys) -> JsValue {
    value.serialize(Ser { keys }).unwrap_or(JsValue::NULL)
}

/// A `Serialize` that failed (a map key that is not a string or a number).
#[derive(Debug)]
pub(crate) struct SerError;

impl fmt::Display for SerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not representable in JavaScript")
    }
}

impl std::error::Error for SerError {}

impl ser::Error for SerError {
    fn custom<T: fmt::Display>(_: T) -> Self {
        SerError
    }
}

/// `Serializer` methods that hand their number on to `serialize_f64`.
macro_rules! as_a_number {
    ($($method:ident: $t:ty),+) => {$(
        fn $method(self, v: $t) -> Result<JsValue, SerError> {
            self.serialize_f64(v as f64)
        }
    )+};
}

#[derive(Clone, Copy)]
struct Ser {
    keys: Keys,
}

impl Ser {
    fn key(self, name: &str) -> JsValue {
        match self.keys {
            Keys::Camel => camel(name).as_str().into(),
            Keys::AsWritten => name.into(),
        }
    }

    fn object(self) -> Obj {
        Obj {
            ser: self,
            object: Object::new(),
            key: JsValue::UNDEFINED,
        }
    }

    fn array(self) -> Seq {
        Seq {
            ser: self,
            array: Array::new(),
        }
    }
}

impl ser::Serializer for Ser {
    type Ok = JsValue;
    type Error = SerError;
    type SerializeSeq = Seq;
    type SerializeTuple = Seq;
    type SerializeTupleStruct = Seq;
    type SerializeTupleVariant = Variant<Seq>;
    type SerializeMap = Obj;
    type SerializeStruct = Obj;
    type SerializeStructVariant = Variant<Obj>;

    fn serialize_bool(self, v: bool) -> Result<JsValue, SerError> {
        Ok(v.into())
    }
    // Every number is a JS number (a 64-bit integer beyond 2^53 the nearest double, as
    // `JSON.parse` made it).
    as_a_number!(
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
        serialize_f32: f32
    );
    fn serialize_f64(self, v: f64) -> Result<JsValue, SerError> {
        // JSON has no NaN or infinity: serde_json writes them as null.
        Ok(if v.is_finite() {
            v.into()
        } else {
            JsValue::NULL
        })
    }
    fn serialize_char(self, v: char) -> Result<JsValue, SerError> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<JsValue, SerError> {
        Ok(v.into())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<JsValue, SerError> {
        Ok(v.iter()
            .map(|&b| JsValue::from(b))
            .collect::<Array>()
            .into())
    }
    fn serialize_none(self) -> Result<JsValue, SerError> {
        Ok(JsValue::NULL)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<JsValue, SerError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<JsValue, SerError> {
        Ok(JsValue::NULL)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<JsValue, SerError> {
        Ok(JsValue::NULL)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<JsValue, SerError> {
        Ok(variant.into())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<JsValue, SerError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<JsValue, SerError> {
        Ok(wrap(&self.key(variant), value.serialize(self)?))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Seq, SerError> {
        Ok(self.array())
    }
    fn serialize_tuple(self, _: usize) -> Result<Seq, SerError> {
        Ok(self.array())
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Seq, SerError> {
        Ok(self.array())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Variant<Seq>, SerError> {
        Ok(Variant {
            name: self.key(variant),
            inner: self.array(),
        })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Obj, SerError> {
        Ok(self.object())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Obj, SerError> {
        Ok(self.object())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Variant<Obj>, SerError> {
        Ok(Variant {
            name: self.key(variant),
            inner: self.object(),
        })
    }
}

/// An array being filled.
pub(crate) struct Seq {
    ser: Ser,
    array: Array,
}

impl Seq {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.append(value.serialize(self.ser))
    }

    /// Appends a value already serialized (not generic, as [`Obj::put`]).
    #[inline(never)]
    fn append(&self, value: Result<JsValue, SerError>) -> Result<(), SerError> {
        self.array.push(&value?);
        Ok(())
    }
}

/// The three ways serde fills an array, which differ only in their names.
macro_rules! fills_an_array {
    ($($Trait:ident :: $method:ident),+) => {$(
        impl ser::$Trait for Seq {
            type Ok = JsValue;
            type Error = SerError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
                self.push(value)
            }
            fn end(self) -> Result<JsValue, SerError> {
                Ok(self.array.into())
            }
        }
    )+};
}

fills_an_array!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field
);

/// An object being filled.
pub(crate) struct Obj {
    ser: Ser,
    object: Object,
    /// The key of the value to come (maps give them apart).
    key: JsValue,
}

impl Obj {
    /// Sets `key` to a value already serialized. Not generic, so the glue exists once, not
    /// once per value type (each type's copy is only its `serialize` call).
    #[inline(never)]
    fn put(&self, key: &JsValue, value: Result<JsValue, SerError>) -> Result<(), SerError> {
        let _ = Reflect::set(&self.object, key, &value?);
        Ok(())
    }

    /// [`Obj::put`] under a field's name, renamed as the keys are.
    #[inline(never)]
    fn put_field(&self, name: &str, value: Result<JsValue, SerError>) -> Result<(), SerError> {
        self.put(&self.ser.key(name), value)
    }
}

impl ser::SerializeMap for Obj {
    type Ok = JsValue;
    type Error = SerError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), SerError> {
        // A string key is renamed like a field; a number is a property name as it is.
        let key = key.serialize(self.ser)?;
        self.key = match key.as_string() {
            Some(name) => self.ser.key(&name),
            None if key.as_f64().is_some() => key,
            None => return Err(SerError),
        };
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        let key = core::mem::replace(&mut self.key, JsValue::UNDEFINED);
        self.put(&key, value.serialize(self.ser))
    }
    fn end(self) -> Result<JsValue, SerError> {
        Ok(self.object.into())
    }
}

impl ser::SerializeStruct for Obj {
    type Ok = JsValue;
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        self.put_field(name, value.serialize(self.ser))
    }
    fn end(self) -> Result<JsValue, SerError> {
        Ok(self.object.into())
    }
}

/// A variant with data: `{name: [..]}` or `{name: {..}}`.
pub(crate) struct Variant<I> {
    name: JsValue,
    inner: I,
}

impl ser::SerializeTupleVariant for Variant<Seq> {
    type Ok = JsValue;
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.inner.push(value)
    }
    fn end(self) -> Result<JsValue, SerError> {
        Ok(wrap(&self.name, self.inner.array.into()))
    }
}

impl ser::SerializeStructVariant for Variant<Obj> {
    type Ok = JsValue;
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        self.inner.put_field(name, value.serialize(self.inner.ser))
    }
    fn end(self) -> Result<JsValue, SerError> {
        Ok(wrap(&self.name, self.inner.object.into()))
    }
}

/// `{name: inner}`, serde_json's form of a variant with data.
fn wrap(name: &JsValue, inner: JsValue) -> JsValue {
    let o = Object::new();
    let _ = Reflect::set(&o, name, &inner);
    o.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::{self, camel_keys, event_json};
    use resile_core::{CallSpec, Config, Engine, Instant, Outcome, Response, UnixTime};
    use serde_json::{json, Value};
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// What JavaScript sees of `v`, read back as JSON.
    fn json_of(v: &JsValue) -> Value {
        let text = String::from(js_sys::JSON::stringify(v).expect("plain data"));
        serde_json::from_str(&text).expect("JSON")
    }

    /// What the JSON path this serializer replaced handed JavaScript: the JSON text of `v`
    /// through `JSON.parse` (so `0.0` is the number `0`, and `u64::MAX` a double), read back.
    fn through_text(v: Value) -> Value {
        json_of(&js_sys::JSON::parse(&v.to_string()).expect("JSON"))
    }

    /// The JSON path for an engine value: `to_value`, camelCase keys, the text, `JSON.parse`.
    fn camel_json<T: Serialize>(v: &T) -> Value {
        through_text(camel_keys(serde_json::to_value(v).expect("serializes")))
    }

    #[test]
    fn events_are_what_their_json_form_was() {
        let configs = [
            json!({"retry": {"max_attempts": 3}}),
            json!({"breaker": {"enabled": false}, "budget": {"reserve": 1, "ratio": 0.01}}),
            json!({"limit": {"per_second": 1, "burst": 1}, "fleet": {"size": 2}}),
        ];
        let mut kinds = std::collections::BTreeSet::new();
        for config in configs {
            let config = Config::from_value(config).expect("valid");
            let mut engine = Engine::new(config, 3, Instant::ZERO).expect("valid");
            let mut now = Instant::ZERO;
            for round in 0..30 {
                let status = if round < 20 { 503 } else { 200 };
                let _ = engine.start(CallSpec::get("http://h.test"), now);
                for _ in 0..10 {
                    while let Some(action) = engine.poll_action() {
                        if let resile_core::Action::Send { call, .. } = action {
                            let headers = [("retry-after".to_string(), "1".to_string())];
                            let r = Response::new(status, &headers, UnixTime::EPOCH);
                            engine.handle(call, Outcome::Response(r), now);
                        }
                    }
                    while let Some(e) = engine.poll_event() {
                        let got = json_of(&crate::api::event_js(&e));
                        assert_eq!(got, through_text(event_json(&e)));
                        kinds.insert(got["event"].as_str().unwrap_or_default().to_string());
                    }
                    now = engine.poll_timeout().unwrap_or(now).max(now);
                    engine.handle_timeout(now);
                }
            }
            let config = engine.config().clone();
            assert_eq!(json_of(&to_js(&config, Keys::Camel)), camel_json(&config));
            assert_eq!(
                json_of(&to_js(&engine.stats(), Keys::Camel)),
                camel_json(&engine.stats())
            );
            for host in engine.hosts(now) {
                let state = translate::host_state(&host, now);
                assert_eq!(json_of(&to_js(&state, Keys::Camel)), camel_json(&state));
            }
        }
        assert!(kinds.len() >= 8, "{kinds:?}");
    }

    #[derive(serde::Serialize)]
    enum Shapes {
        Unit,
        Newtype(u8),
        Tuple(i64, f64),
        Struct { inner_name: Option<u32> },
    }

    #[test]
    fn every_shape_is_what_serde_json_made() {
        let values = [
            json!({"an_item": [1, -2, 2.5, "x", null, true, {"deep_key": 1e300}], "n": 18446744073709551615u64}),
            json!([]),
            json!("just a string"),
        ];
        for v in values {
            let written = json_of(&to_js(&v, Keys::AsWritten));
            assert_eq!(
                written,
                through_text(v.clone()),
                "page items keep their keys"
            );
            assert_eq!(
                json_of(&to_js(&v, Keys::Camel)),
                through_text(camel_keys(v))
            );
        }
        let shapes = (
            Shapes::Unit,
            Shapes::Newtype(7),
            Shapes::Tuple(-3, f64::NAN),
            Shapes::Struct { inner_name: None },
            [f64::INFINITY, 0.5],
            'c',
            (),
        );
        assert_eq!(json_of(&to_js(&shapes, Keys::Camel)), camel_json(&shapes));
        let mut map = std::collections::BTreeMap::new();
        map.insert(3u32, "three");
        map.insert(10, "ten");
        assert_eq!(json_of(&to_js(&map, Keys::Camel)), camel_json(&map));
    }
}
