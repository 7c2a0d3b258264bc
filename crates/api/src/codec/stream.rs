//! Decoding a resource file as a stream: one YAML document (or one element
//! of a top-level JSON array) at a time, and the `items` of a `List` /
//! `<Kind>List` one item at a time, so that no more than one resource's
//! parsed tree is held at once, whatever the number of documents. A
//! `List`'s items are kept as compact JSON until the list has been read
//! (its `kind` may come after them), then decoded and delivered one by one.
//!
//! Limits (each refused in plain words naming the document):
//! - a YAML document may nest [`MAX_DEPTH`] levels, hold [`MAX_NODES`]
//!   values and [`MAX_TEXT_BYTES`] of text (a `List` is one document);
//! - YAML aliases may stand for at most [`MAX_REPLAYED`] values in one
//!   document, under serde-saphyr's other limits against alias bombs;
//! - JSON nests at most 128 levels (serde_json's recursion limit).
//!
//! There is no limit on the number of documents.

use std::io::BufRead;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use serde_saphyr::budget::BudgetBreach;

use super::DecodeError;
use crate::document::Document;
use crate::meta::Resource;

/// Deepest nesting of mappings and lists in one YAML document.
pub const MAX_DEPTH: usize = 64;
/// Most values (mappings, lists, scalars) in one YAML document: a `List` of
/// 100,000 workload endpoints has about 4 million.
pub const MAX_NODES: usize = 20_000_000;
/// Most text (scalar bytes) in one YAML document.
pub const MAX_TEXT_BYTES: usize = 256 << 20;
/// Most values that YAML aliases (`*name`) may stand for in one document
/// (serde-saphyr's default is 1,000,000: calicoctl reached 233 MiB on an
/// alias bomb before refusing it; 30 MiB with this).
pub const MAX_REPLAYED: usize = 100_000;

/// What one document (or one item of a `List`) decodes to.
pub trait DocumentDecoder {
    /// The decoded item.
    type Output;
    /// Decodes one item from its JSON value; the error says what is wrong.
    fn decode(v: Value) -> Result<Self::Output, String>;
}

/// Decodes `projectcalico.org/v3` resources ([`super::decode_value`]).
pub struct Resources;

impl DocumentDecoder for Resources {
    type Output = Resource;
    fn decode(v: Value) -> Result<Resource, String> {
        super::decode_value(v)
    }
}

/// Decodes Calico resources and Kubernetes NetworkPolicies ([`Document::from_json`]).
pub struct Documents;

impl DocumentDecoder for Documents {
    type Output = Document;
    fn decode(v: Value) -> Result<Document, String> {
        Document::from_json(v)
    }
}

/// Reads every document of YAML or JSON text from `reader` (JSON when the
/// first non-blank character is `{` or `[`), calling `each` with the 1-based
/// document number and the decoded item or its error, in file order (the
/// items of one `List` share its number). A per-document error is passed to
/// `each` and reading goes on; an error after which the rest of the input
/// cannot be read (broken syntax, a limit, an I/O error) is returned, with
/// the number of the document it is in.
pub fn read_documents<R: BufRead, D: DocumentDecoder>(
    mut reader: R,
    mut each: impl FnMut(usize, Result<D::Output, DecodeError>),
) -> Result<(), DecodeError> {
    if starts_with_json(&mut reader)? {
        read_json::<R, D>(reader, &mut each)
    } else {
        read_yaml::<R, D>(reader, &mut each)
    }
}

/// Skips leading whitespace and says whether the text starts like JSON.
fn starts_with_json<R: BufRead>(reader: &mut R) -> Result<bool, DecodeError> {
    loop {
        let buf = reader.fill_buf().map_err(|e| DecodeError {
            document: 0,
            message: format!("cannot read: {e}"),
        })?;
        let Some(first) = buf.first().copied() else {
            return Ok(false);
        };
        let blank = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        if blank == 0 {
            return Ok(first == b'{' || first == b'[');
        }
        reader.consume(blank);
    }
}

fn deliver<D: DocumentDecoder>(
    n: usize,
    doc: DocItems<D::Output>,
    each: &mut impl FnMut(usize, Result<D::Output, DecodeError>),
) {
    let numbered = |message| DecodeError {
        document: n,
        message,
    };
    match doc {
        DocItems::One(item) => each(n, item.map_err(numbered)),
        DocItems::List(items) => {
            for item in items {
                let item = serde_json::from_slice(&item)
                    .map_err(|e| e.to_string())
                    .and_then(D::decode);
                each(n, item.map_err(numbered));
            }
        }
        DocItems::Empty => {}
        DocItems::Invalid(message) => each(n, Err(numbered(message))),
    }
}

fn read_yaml<R: BufRead, D: DocumentDecoder>(
    mut reader: R,
    each: &mut impl FnMut(usize, Result<D::Output, DecodeError>),
) -> Result<(), DecodeError> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: None,
            max_depth: MAX_DEPTH,
            flow_nesting_limit: MAX_DEPTH,
            max_nodes: MAX_NODES,
            max_events: 2 * MAX_NODES,
            max_total_scalar_bytes: MAX_TEXT_BYTES,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: MAX_REPLAYED,
        },
    };
    let mut n = 0;
    for doc in serde_saphyr::read_with_options::<_, Decoded<D>>(&mut reader, options) {
        n += 1;
        match doc {
            Ok(Decoded(doc, _)) => deliver::<D>(n, doc, each),
            Err(e) => match yaml_fatal(&e) {
                Some(message) => {
                    return Err(DecodeError {
                        document: n,
                        message,
                    });
                }
                // The reader goes on at the next document, if it can.
                None => each(
                    n,
                    Err(DecodeError {
                        document: n,
                        message: format!("invalid YAML: {e}"),
                    }),
                ),
            },
        }
    }
    Ok(())
}

/// The plain-words message for a YAML error that ends the reading (a
/// limit, unreadable input), or `None` for an error in one document.
fn yaml_fatal(e: &serde_saphyr::Error) -> Option<String> {
    use serde_saphyr::Error as E;
    let mut e = e;
    while let E::AliasError { error, .. } | E::WithSnippet { error, .. } = e {
        e = error;
    }
    let at = e
        .location()
        .map(|l| l.line())
        .filter(|l| *l > 0)
        .map(|l| format!(" (line {l})"))
        .unwrap_or_default();
    let alias_bomb = "YAML aliases (*name) expand beyond the safe limits (an alias bomb?): write the values out instead of repeating anchors";
    let what = match e {
        E::Budget { breach, .. } => match breach {
            BudgetBreach::Depth { .. } => {
                format!("mappings and lists nested deeper than {MAX_DEPTH} levels")
            }
            BudgetBreach::Nodes { .. } | BudgetBreach::Events { .. } => format!(
                "more than {MAX_NODES} YAML values in one document: split it into several documents or files"
            ),
            BudgetBreach::ScalarBytes { .. } => format!(
                "more than {} MiB of text in one document: split it into several documents or files",
                MAX_TEXT_BYTES >> 20
            ),
            BudgetBreach::Aliases { .. }
            | BudgetBreach::Anchors { .. }
            | BudgetBreach::AliasAnchorRatio { .. }
            | BudgetBreach::RecordedAnchorEvents { .. }
            | BudgetBreach::RecordedAnchorBytes { .. }
            | BudgetBreach::MergeKeys { .. } => alias_bomb.to_string(),
            _ => "beyond the YAML reader's safety limits: split it into several documents"
                .to_string(),
        },
        E::AliasReplayCounterOverflow { .. }
        | E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. } => alias_bomb.to_string(),
        E::InvalidUtf8Input => "not UTF-8 text".to_string(),
        E::IOError { cause } => return Some(format!("cannot read: {cause}")),
        // The scanner's own cap on nested flow collections (`[[[...`).
        other if other.to_string().contains("recursion limit exceeded") => {
            format!("mappings and lists nested deeper than {MAX_DEPTH} levels")
        }
        _ => return None,
    };
    Some(format!("{what}{at}"))
}

fn read_json<R: BufRead, D: DocumentDecoder>(
    reader: R,
    each: &mut impl FnMut(usize, Result<D::Output, DecodeError>),
) -> Result<(), DecodeError> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut n = 0;
    let top = TopLevel::<D, _> {
        each,
        n: &mut n,
        _decoder: PhantomData,
    };
    let res = top.deserialize(&mut de).and_then(|()| de.end());
    res.map_err(|e| {
        let message = if e.to_string().starts_with("recursion limit exceeded") {
            format!(
                "mappings and lists nested deeper than 128 levels (line {})",
                e.line()
            )
        } else {
            format!("invalid JSON: {e}")
        };
        DecodeError {
            document: n + 1,
            message,
        }
    })
}

/// The whole JSON text: one object (a document), or an array of documents.
struct TopLevel<'a, D, F> {
    each: &'a mut F,
    n: &'a mut usize,
    _decoder: PhantomData<D>,
}

impl<'de, D, F> DeserializeSeed<'de> for TopLevel<'_, D, F>
where
    D: DocumentDecoder,
    F: FnMut(usize, Result<D::Output, DecodeError>),
{
    type Value = ();
    fn deserialize<De: Deserializer<'de>>(self, de: De) -> Result<(), De::Error> {
        de.deserialize_any(self)
    }
}

impl<'de, D, F> Visitor<'de> for TopLevel<'_, D, F>
where
    D: DocumentDecoder,
    F: FnMut(usize, Result<D::Output, DecodeError>),
{
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a resource or an array of resources")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(Decoded(doc, _)) = seq.next_element::<Decoded<D>>()? {
            *self.n += 1;
            deliver::<D>(*self.n, doc, self.each);
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let doc = DocVisitor::<D>(PhantomData).visit_map(map)?;
        *self.n += 1;
        deliver::<D>(*self.n, doc.0, self.each);
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.not_a_mapping()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.not_a_mapping()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.not_a_mapping()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.not_a_mapping()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.not_a_mapping()
    }
}

impl<D, F> TopLevel<'_, D, F>
where
    D: DocumentDecoder,
    F: FnMut(usize, Result<D::Output, DecodeError>),
{
    fn not_a_mapping<E>(self) -> Result<(), E> {
        *self.n += 1;
        deliver::<D>(
            *self.n,
            DocItems::<D::Output>::Invalid(NOT_A_MAPPING.into()),
            self.each,
        );
        Ok(())
    }
}

const NOT_A_MAPPING: &str = "a resource must be a mapping with apiVersion, kind, metadata and spec";

/// What one document held: one decoded resource, a `List`'s items (each
/// as compact JSON, decoded as it is delivered: a decoded resource can take
/// kilobytes more than its text), nothing, or why it is not a resource.
enum DocItems<T> {
    One(Result<T, String>),
    List(Vec<Vec<u8>>),
    Empty,
    Invalid(String),
}

/// One document, decoded with `D` as it is read.
struct Decoded<D: DocumentDecoder>(DocItems<D::Output>, PhantomData<D>);

impl<'de, D: DocumentDecoder> de::Deserialize<'de> for Decoded<D> {
    fn deserialize<De: Deserializer<'de>>(de: De) -> Result<Self, De::Error> {
        de.deserialize_any(DocVisitor::<D>(PhantomData))
    }
}

struct DocVisitor<D>(PhantomData<D>);

impl<D: DocumentDecoder> DocVisitor<D> {
    fn invalid<E>(message: &str) -> Result<Decoded<D>, E> {
        Ok(Decoded(DocItems::Invalid(message.into()), PhantomData))
    }
}

impl<'de, D: DocumentDecoder> Visitor<'de> for DocVisitor<D> {
    type Value = Decoded<D>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a resource")
    }

    /// A resource, or a `List` whose `items` are decoded one by one as they
    /// are read (calicoctl's `get -o yaml` sorts keys, so `items` comes
    /// before `kind`: any top-level `items` is read as a list's).
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Decoded<D>, A::Error> {
        let mut fields = Map::new();
        let mut items: Option<ItemsResult> = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "items" {
                items = Some(map.next_value_seed(ItemsSeed)?);
            } else {
                let v: Value = map.next_value()?;
                fields.insert(key, v);
            }
        }
        let is_list = fields
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.ends_with("List"));
        let doc = match (is_list, items) {
            (true, Some(Ok(items))) => DocItems::List(items),
            (true, Some(Err(e))) => DocItems::Invalid(e),
            (true, None) => DocItems::Empty,
            (false, Some(_)) => DocItems::Invalid(
                "items: only a List or <Kind>List has items (is kind missing or misspelt?)".into(),
            ),
            (false, None) => DocItems::One(D::decode(Value::Object(fields))),
        };
        Ok(Decoded(doc, PhantomData))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Decoded<D>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Self::invalid(NOT_A_MAPPING)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Decoded<D>, E> {
        Ok(Decoded(DocItems::Empty, PhantomData))
    }
    fn visit_none<E: de::Error>(self) -> Result<Decoded<D>, E> {
        self.visit_unit()
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Decoded<D>, E> {
        Self::invalid(NOT_A_MAPPING)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Decoded<D>, E> {
        Self::invalid(NOT_A_MAPPING)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Decoded<D>, E> {
        Self::invalid(NOT_A_MAPPING)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Decoded<D>, E> {
        Self::invalid(NOT_A_MAPPING)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Decoded<D>, E> {
        Self::invalid(NOT_A_MAPPING)
    }
}

/// A `List`'s `items`: each kept as compact JSON as soon as it is read.
struct ItemsSeed;

/// A `List`'s items as compact JSON, or why `items` is not a list.
type ItemsResult = Result<Vec<Vec<u8>>, String>;

impl<'de> DeserializeSeed<'de> for ItemsSeed {
    type Value = ItemsResult;
    fn deserialize<De: Deserializer<'de>>(self, de: De) -> Result<Self::Value, De::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed {
    type Value = ItemsResult;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of resources")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<Value>()? {
            out.push(serde_json::to_vec(&v).map_err(de::Error::custom)?);
        }
        Ok(Ok(out))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Ok(Vec::new()))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Err(ITEMS_NOT_A_LIST.into()))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(ITEMS_NOT_A_LIST.into()))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(ITEMS_NOT_A_LIST.into()))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(ITEMS_NOT_A_LIST.into()))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(ITEMS_NOT_A_LIST.into()))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err(ITEMS_NOT_A_LIST.into()))
    }
}

const ITEMS_NOT_A_LIST: &str = "items: a list is required";
