//! Reading the test-data files the image embeds: one record a line, `KIND key=value ...`,
//! `#` comments (the format of `cdm-testkit/data/nist_sp800_38a.txt` and
//! `hal/tests/data/cenc_cases.txt`). A malformed record is a [`DataError`] (reported as a
//! failed test), never a panic.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use hal::cenc::{Pattern, Scheme, Subsample};

/// A record of a data file that cannot be read.
#[derive(Debug)]
pub(crate) struct DataError(pub(crate) String);

impl core::fmt::Display for DataError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One record: its kind (the first word) and its `key=value` fields.
pub(crate) struct Record<'a> {
    /// `vector`, `case`, `error`, …
    pub(crate) kind: &'a str,
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Record<'a> {
    /// A field's value.
    pub(crate) fn get(&self, key: &str) -> Result<&'a str, DataError> {
        self.fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .ok_or_else(|| DataError(format!("record without field `{key}`")))
    }

    /// The record's `name` field (or a placeholder, for messages).
    pub(crate) fn name(&self) -> &'a str {
        self.get("name").unwrap_or("(unnamed)")
    }

    /// A hex field; `-` is empty.
    pub(crate) fn hex(&self, key: &str) -> Result<Vec<u8>, DataError> {
        match self.get(key)? {
            "-" => Ok(Vec::new()),
            v => hex::decode(v).map_err(|e| DataError(format!("field `{key}`: {e}"))),
        }
    }

    /// A 16-byte hex field (a key or a CBC IV).
    pub(crate) fn hex16(&self, key: &str) -> Result<[u8; 16], DataError> {
        self.hex(key)?
            .try_into()
            .map_err(|_| DataError(format!("field `{key}` is not 16 bytes")))
    }

    /// A decimal field.
    pub(crate) fn number(&self, key: &str) -> Result<usize, DataError> {
        self.get(key)?
            .parse()
            .map_err(|_| DataError(format!("field `{key}` is not a number")))
    }

    /// The `scheme` field.
    pub(crate) fn scheme(&self) -> Result<Scheme, DataError> {
        match self.get("scheme")? {
            "cenc" => Ok(Scheme::Cenc),
            "cbcs" => Ok(Scheme::Cbcs),
            "cens" => Ok(Scheme::Cens),
            "cbc1" => Ok(Scheme::Cbc1),
            s => Err(DataError(format!("unknown scheme `{s}`"))),
        }
    }

    /// The `pattern` field, `crypt:skip`.
    pub(crate) fn pattern(&self) -> Result<Pattern, DataError> {
        let v = self.get("pattern")?;
        let bad = || DataError(format!("bad pattern `{v}`"));
        let (c, s) = v.split_once(':').ok_or_else(bad)?;
        Ok(Pattern {
            crypt: c.parse().map_err(|_| bad())?,
            skip: s.parse().map_err(|_| bad())?,
        })
    }

    /// The `map` field: `-` (whole sample protected) or `clear/protected,...`.
    pub(crate) fn map(&self) -> Result<Vec<Subsample>, DataError> {
        let v = self.get("map")?;
        if v == "-" {
            return Ok(Vec::new());
        }
        let bad = || DataError(format!("bad map `{v}`"));
        v.split(',')
            .map(|pair| {
                let (c, p) = pair.split_once('/').ok_or_else(bad)?;
                Ok(Subsample {
                    clear: c.parse().map_err(|_| bad())?,
                    protected: p.parse().map_err(|_| bad())?,
                })
            })
            .collect()
    }

    /// A `seq:N` field: N bytes, byte i = i mod 256.
    pub(crate) fn seq(&self, key: &str) -> Result<Vec<u8>, DataError> {
        let v = self.get(key)?;
        let n: usize = v
            .strip_prefix("seq:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| DataError(format!("field `{key}` is not seq:N")))?;
        Ok((0..n).map(|i| i.to_le_bytes()[0]).collect())
    }
}

/// The records of a data file, in order.
pub(crate) fn records(text: &str) -> impl Iterator<Item = Record<'_>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let mut words = line.split_ascii_whitespace();
            let kind = words.next().unwrap_or_default();
            Record {
                kind,
                fields: words.filter_map(|w| w.split_once('=')).collect(),
            }
        })
}
