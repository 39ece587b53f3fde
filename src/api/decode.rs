//! The one decoder of request bodies: JSON → a body struct that derives
//! `Deserialize`, through `serde_path_to_error`, with messages that name
//! the field (its whole path), the type it must be and what it got.
//!
//! Every body is parsed as JSON whatever its Content-Type says; an empty
//! body is `{}`. The field types below carry the rules JSON types cannot
//! say (a port's range, a hyphenated UUID); their own messages name the
//! field through the `{field}` placeholder, which [`decode`] fills in.

use crate::error::ApiError;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_json::{Map, Value};
use std::fmt;
use uuid::Uuid;

/// A JSON object body.
pub type Object = Map<String, Value>;

/// Where a field's own message puts the field's path.
const FIELD: &str = "{field}";

/// Parse a body into a JSON object.
pub fn object(body: &[u8]) -> Result<Object, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Object::new());
    }
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::bad("Request body is not valid UTF-8"))?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(other) => Err(ApiError::bad(format!(
            "Request body must be a JSON object, not {}",
            kind(&other)
        ))),
        Err(_) if looks_like_form(text) => Err(ApiError::bad(format!(
            "Request body is form data ('{}'), not JSON: send a JSON object, e.g. curl -d '{{\"name\": \"PC1\"}}'",
            text.chars().take(40).collect::<String>()
        ))),
        Err(e) => Err(ApiError::bad(format!(
            "Request body is not valid JSON ({e}): send a JSON object, e.g. {{\"name\": \"PC1\"}}"
        ))),
    }
}

/// Decode a body into `T`.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    from_object(object(body)?)
}

/// Decode a JSON object into `T`.
pub fn from_object<T: DeserializeOwned>(o: Object) -> Result<T, ApiError> {
    from_object_at("", o)
}

/// [`from_object`] for an object found at `at` in a body (`ports[1]`):
/// messages name fields by their whole path.
pub fn from_object_at<T: DeserializeOwned>(at: &str, o: Object) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(Value::Object(o)).map_err(|e| {
        let inner = e.path().to_string();
        let path = match (at, inner.as_str()) {
            (at, "." | "") if !at.is_empty() => at.to_string(),
            ("", inner) => inner.to_string(),
            (at, inner) => format!("{at}.{inner}"),
        };
        ApiError::bad(message(&path, &e.into_inner().to_string()))
    })
}

/// [`decode`], ignoring the properties `T` does not take (at the top
/// level): what a newer client adds is dropped, what `T` takes is checked
/// as strictly.
pub fn decode_lenient<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut o = object(body)?;
    for _ in 0..=o.len() {
        let unknown = match serde_path_to_error::deserialize::<_, T>(Value::Object(o.clone())) {
            Ok(t) => return Ok(t),
            Err(e) => {
                let raw = e.inner().to_string();
                let top = !e.path().to_string().contains(['.', '[']);
                match raw
                    .strip_prefix("unknown field `")
                    .and_then(|r| r.split('`').next())
                {
                    Some(k) if top => k.to_string(),
                    _ => return from_object(o),
                }
            }
        };
        o.remove(&unknown);
    }
    from_object(o)
}

/// `a=b&c=d`, as `curl -d name=x` or an HTML form sends.
fn looks_like_form(text: &str) -> bool {
    let t = text.trim();
    !t.starts_with(['{', '[', '"']) && t.split('&').all(|kv| kv.contains('='))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What serde calls a value it did not expect, as a person says it.
fn unexpected(what: &str) -> &'static str {
    let word = what.split([' ', '`']).next().unwrap_or_default();
    match word {
        "integer" | "floating" => "a number",
        "string" => "a string",
        "boolean" => "a boolean",
        "sequence" => "an array",
        "map" => "an object",
        "null" | "unit" => "null",
        _ => "another type",
    }
}

/// The message for serde's error `raw` at `path`.
fn message(path: &str, raw: &str) -> String {
    let field = |name: &str| match path {
        "." | "" => name.to_string(),
        parent => format!("{parent}.{name}"),
    };
    let ticked = |s: &str| -> Vec<String> {
        s.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    if raw.contains(FIELD) {
        return raw.replace(FIELD, path);
    }
    if let Some(rest) = raw.strip_prefix("invalid type: ")
        && let Some((got, want)) = rest.split_once(", expected ")
    {
        let got = unexpected(got);
        let want = match want {
            "a map" => "an object",
            "a sequence" => "an array",
            w => w,
        };
        return match path {
            "." | "" => format!("Request body must be {want}, not {got}"),
            _ => format!("Field '{path}' must be {want}, not {got}"),
        };
    }
    if let Some(rest) = raw.strip_prefix("missing field ") {
        let name = ticked(rest).into_iter().next().unwrap_or_default();
        return format!("Field '{}' is required", field(&name));
    }
    if let Some(rest) = raw.strip_prefix("unknown field ") {
        let names = ticked(rest);
        let unknown = names.first().cloned().unwrap_or_default();
        // The path names the unknown field itself; say where it was.
        let parent = path
            .strip_suffix(unknown.as_str())
            .map_or(path, |p| p.strip_suffix('.').unwrap_or(p));
        let within = match parent {
            "." | "" => String::new(),
            parent => format!(" in '{parent}'"),
        };
        return match &names[1..] {
            [] if within.is_empty() => format!(
                "Unknown property '{unknown}' (this request takes no properties: send {{}} or nothing)"
            ),
            expected => format!(
                "Unknown property '{unknown}'{within} (additional properties are not allowed; expected {})",
                expected.join(", ")
            ),
        };
    }
    match path {
        "." | "" => format!("Request body: {raw}"),
        _ => format!("Field '{path}': {raw}"),
    }
}

/// A required value that was left out.
pub fn required<T>(name: &str, v: Option<T>) -> Result<T, ApiError> {
    v.ok_or_else(|| ApiError::bad(format!("Field '{name}' is required")))
}

/// A required non-empty string.
pub fn required_text(name: &str, v: Option<String>) -> Result<String, ApiError> {
    match v {
        Some(s) if s.is_empty() => Err(ApiError::bad(format!("Field '{name}' must not be empty"))),
        v => required(name, v),
    }
}

/// An optional name that, when given, is not empty.
pub fn name(v: Option<String>) -> Result<Option<String>, ApiError> {
    if v.as_deref() == Some("") {
        return Err(ApiError::bad("Field 'name' must not be empty"));
    }
    Ok(v)
}

/// Parse an id from a path or body: only the hyphenated 36-character
/// form, as GNS3's schema required.
pub fn parse_uuid(field: &str, s: &str) -> Result<Uuid, ApiError> {
    match Uuid::try_parse(s) {
        Ok(id) if s.len() == 36 => Ok(id),
        _ => Err(ApiError::bad(format!(
            "'{s}' is not a valid UUID for {field}"
        ))),
    }
}

/// An id in a body: a hyphenated UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Id(pub Uuid);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Id, E> {
                parse_uuid(FIELD, s)
                    .map(Id)
                    .map_err(|e| E::custom(e.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

/// A GNS3 1.2 topology's node id: a UUID, or an integer 1.3.13 replaces
/// with a new UUID (0 means none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeId {
    /// A UUID.
    Id(Uuid),
    /// A 1.2 number.
    Legacy(i64),
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = NodeId;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a UUID or an integer")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<NodeId, E> {
                Id::deserialize(de::value::StrDeserializer::<E>::new(s))
                    .map(|Id(id)| NodeId::Id(id))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<NodeId, E> {
                Ok(NodeId::Legacy(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<NodeId, E> {
                i64::try_from(n).map(NodeId::Legacy).map_err(|_| {
                    E::custom(format!(
                        "Field '{FIELD}' must be a UUID or an integer, not {n}"
                    ))
                })
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<NodeId, E> {
                Err(E::custom(format!(
                    "Field '{FIELD}' must be a UUID or an integer, not {n}"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl NodeId {
    /// The UUID, unless it is a 1.2 number.
    pub fn uuid(v: Option<NodeId>) -> Option<Uuid> {
        match v {
            Some(NodeId::Id(id)) => Some(id),
            _ => None,
        }
    }

    /// The 1.2 number, unless it is a UUID or 0.
    pub fn legacy(v: Option<NodeId>) -> Option<i64> {
        match v {
            Some(NodeId::Legacy(n)) => Some(n).filter(|n| *n != 0),
            _ => None,
        }
    }
}

/// An integer in `MIN..=MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int<const MIN: i64, const MAX: i64>(pub i64);

impl<'de, const MIN: i64, const MAX: i64> Deserialize<'de> for Int<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const MIN: i64, const MAX: i64>;
        impl<const MIN: i64, const MAX: i64> Visitor<'_> for V<MIN, MAX> {
            type Value = Int<MIN, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                match n {
                    n if (MIN..=MAX).contains(&n) => Ok(Int(n)),
                    n => Err(out_of_range::<E>(MIN, MAX, n)),
                }
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                match i64::try_from(n) {
                    Ok(n) => self.visit_i64(n),
                    Err(_) => Err(out_of_range::<E>(MIN, MAX, n)),
                }
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
                Err(out_of_range::<E>(MIN, MAX, n))
            }
        }
        d.deserialize_any(V::<MIN, MAX>)
    }
}

fn out_of_range<E: de::Error>(min: i64, max: i64, n: impl fmt::Display) -> E {
    E::custom(format!(
        "Field '{FIELD}' must be an integer between {min} and {max}, not {n}"
    ))
}

/// A TCP or UDP port number.
pub type Port = Int<1, 65535>;

/// [`Port`] as `u16`.
pub fn port(p: Option<Port>) -> Option<u16> {
    p.and_then(|Int(n)| u16::try_from(n).ok())
}

/// A value in a set of words: `T::parse` says which word is which; its
/// error names what is allowed.
pub trait Word: Sized {
    /// The words allowed, for the message (`"access, dot1q or qinq"`).
    const ALLOWED: &'static str;
    /// The value a word names.
    fn parse(s: &str) -> Option<Self>;
}

/// A field whose value is one of [`Word::ALLOWED`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OneOf<T>(pub T);

impl<'de, T: Word> Deserialize<'de> for OneOf<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<T: Word> Visitor<'_> for V<T> {
            type Value = OneOf<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<OneOf<T>, E> {
                T::parse(s).map(OneOf).ok_or_else(|| {
                    E::custom(format!("Field '{FIELD}' must be {}, not '{s}'", T::ALLOWED))
                })
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, expecting = "an object")]
    #[allow(dead_code)]
    struct Inner {
        vlan: Option<Int<1, 4094>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, expecting = "an object")]
    #[allow(dead_code)]
    struct Outer {
        name: Option<String>,
        id: Option<Id>,
        ports: Option<Vec<Inner>>,
        needed: String,
    }

    fn msg(body: &str) -> String {
        decode::<Outer>(body.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn messages_name_the_whole_path_the_type_and_the_value() {
        let needed = r#""needed": "x""#;
        assert_eq!(
            msg(&format!(r#"{{"name": 5, {needed}}}"#)),
            "Field 'name' must be a string, not a number"
        );
        assert_eq!(
            msg(&format!(r#"{{"ports": [{{"vlan": 5000}}], {needed}}}"#)),
            "Field 'ports[0].vlan' must be an integer between 1 and 4094, not 5000"
        );
        assert_eq!(
            msg(&format!(r#"{{"ports": [7], {needed}}}"#)),
            "Field 'ports[0]' must be an object, not a number"
        );
        assert_eq!(
            msg(&format!(r#"{{"ports": [{{"x": 1}}], {needed}}}"#)),
            "Unknown property 'x' in 'ports[0]' (additional properties are not allowed; expected vlan)"
        );
        assert_eq!(
            msg(&format!(r#"{{"id": "abc", {needed}}}"#)),
            "'abc' is not a valid UUID for id"
        );
        assert_eq!(msg("{}"), "Field 'needed' is required");
        assert_eq!(
            msg(&format!(r#"{{"what": 1, {needed}}}"#)),
            "Unknown property 'what' (additional properties are not allowed; expected name, id, ports, needed)"
        );
        assert_eq!(
            msg("[1]"),
            "Request body must be a JSON object, not an array"
        );
    }

    #[test]
    fn an_object_found_inside_a_body_is_named_by_its_place() {
        let o = |j: &str| match serde_json::from_str::<Value>(j).unwrap() {
            Value::Object(o) => o,
            _ => unreachable!(),
        };
        let e = from_object_at::<Inner>("ports_mapping[2]", o(r#"{"vlan": "x"}"#)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Field 'ports_mapping[2].vlan' must be an integer, not a string"
        );
        let e = from_object_at::<Inner>("ports_mapping[2]", o(r#"{"x": 1}"#)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Unknown property 'x' in 'ports_mapping[2]' (additional properties are not allowed; expected vlan)"
        );
    }

    #[test]
    fn node_ids_are_uuids_or_1_2_numbers() {
        #[derive(Debug, Deserialize)]
        struct B {
            vm_id: Option<NodeId>,
        }
        let b: B = decode(br#"{"vm_id": 3}"#).unwrap();
        assert_eq!(NodeId::legacy(b.vm_id), Some(3));
        let b: B = decode(br#"{"vm_id": 0}"#).unwrap();
        assert_eq!(
            (NodeId::legacy(b.vm_id), NodeId::uuid(b.vm_id)),
            (None, None)
        );
        let e = decode::<B>(br#"{"vm_id": 1.5}"#).unwrap_err().to_string();
        assert_eq!(e, "Field 'vm_id' must be a UUID or an integer, not 1.5");
    }
}
