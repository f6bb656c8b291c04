//! SBS (hat's Simple Binary Serialization) primitives: hat's Integer encoding (not
//! LEB128), Boolean, Float, String, Bytes, Array/Choice/Optional prefixes.
//!
//! Decoding goes through [`Reader`], a cursor over a borrowed byte slice that checks
//! every count against the remaining input before anything is allocated. Encoding goes
//! through the [`Writer`] trait, implemented for `Vec<u8>`, `BytesMut` and
//! [`SizeCounter`]; the same encode function therefore computes the exact encoded size
//! (so a length prefix can be written first) and writes the bytes.

use bytes::{BufMut, BytesMut};

/// Longest valid Integer encoding: 64 bits in 7-bit groups.
pub const MAX_INTEGER_LEN: usize = 10;

/// Array elements pre-allocated at most before the elements are actually decoded.
///
/// Counts are already checked against the remaining input; this additionally keeps a
/// hostile count of small-on-the-wire elements from reserving a large block up front.
const MAX_PREALLOC_ELEMENTS: usize = 1 << 14;

/// Errors decoding SBS bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SbsError {
    /// The input ended before the value did.
    #[error("unexpected end of input")]
    UnexpectedEnd,
    /// An Integer does not fit in i64 (or is longer than 10 bytes).
    #[error("integer overflows i64")]
    IntegerOverflow,
    /// A String is not valid UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A Choice index is out of range.
    #[error("choice index {index} out of range for {type_name}")]
    InvalidChoice {
        /// Index read.
        index: i64,
        /// Type being decoded.
        type_name: &'static str,
    },
    /// A length or count is negative or larger than the remaining input.
    #[error("invalid length {0}")]
    InvalidLength(i64),
    /// Bytes were left over after the value (hat ignores them; we never send them).
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
}

/// Number of bytes hat's minimal Integer encoding of `v` takes (1..=10).
#[inline]
pub fn integer_len(v: i64) -> usize {
    // Bits needed in two's complement, sign bit included; each byte carries 7.
    let significant = if v < 0 {
        64 - v.leading_ones()
    } else {
        64 - v.leading_zeros()
    };
    (significant as usize + 1).div_ceil(7)
}

/// Minimal Integer encoding of `v` into a stack buffer; the encoding is
/// `buf[start..]`.
pub fn encode_integer(v: i64) -> ([u8; MAX_INTEGER_LEN], usize) {
    let mut buf = [0u8; MAX_INTEGER_LEN];
    let len = integer_len(v);
    let start = MAX_INTEGER_LEN - len;
    let mut rest = v;
    for slot in buf[start..].iter_mut().rev() {
        // Truncation to the low 7 bits is the encoding itself.
        *slot = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    buf[MAX_INTEGER_LEN - 1] |= 0x80;
    (buf, start)
}

/// Destination of SBS encoding. Implemented for `Vec<u8>`, `BytesMut` and
/// [`SizeCounter`], so one encode function both sizes and writes a value.
pub trait Writer {
    /// Appends raw bytes.
    fn put_raw(&mut self, bytes: &[u8]);

    /// Appends one raw byte.
    #[inline]
    fn put_byte(&mut self, byte: u8) {
        self.put_raw(&[byte]);
    }

    /// Integer (hat's varint, minimal form).
    #[inline]
    fn put_integer(&mut self, v: i64) {
        if (-64..64).contains(&v) {
            // One group: the low 7 bits with the last-byte marker.
            self.put_byte((v as u8 & 0x7f) | 0x80);
        } else {
            let (buf, start) = encode_integer(v);
            self.put_raw(&buf[start..]);
        }
    }

    /// Boolean: `01` or `00`.
    fn put_bool(&mut self, v: bool) {
        self.put_byte(u8::from(v));
    }

    /// Float: IEEE 754 binary64, big-endian.
    fn put_float(&mut self, v: f64) {
        self.put_raw(&v.to_be_bytes());
    }

    /// Array element count, Bytes/String length (an Integer).
    fn put_count(&mut self, count: usize) {
        // Rust allocations never exceed isize::MAX bytes, so any in-memory count fits.
        self.put_integer(count as i64);
    }

    /// Bytes: count, then the bytes.
    fn put_bytes(&mut self, bytes: &[u8]) {
        self.put_count(bytes.len());
        self.put_raw(bytes);
    }

    /// String: UTF-8 byte count, then the bytes.
    fn put_str(&mut self, s: &str) {
        self.put_bytes(s.as_bytes());
    }

    /// Choice: the zero-based index of the chosen entry (its value follows).
    fn put_choice(&mut self, index: u8) {
        self.put_integer(i64::from(index));
    }

    /// Optional: `none` (index 0) or `value` (index 1, the value follows).
    fn put_optional_tag(&mut self, present: bool) {
        self.put_choice(u8::from(present));
    }
}

impl Writer for Vec<u8> {
    #[inline]
    fn put_raw(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    #[inline]
    fn put_byte(&mut self, byte: u8) {
        self.push(byte);
    }
}

impl Writer for BytesMut {
    #[inline]
    fn put_raw(&mut self, bytes: &[u8]) {
        self.put_slice(bytes);
    }

    #[inline]
    fn put_byte(&mut self, byte: u8) {
        self.put_u8(byte);
    }
}

/// A [`Writer`] that only counts bytes: the exact encoded size of what is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SizeCounter(pub usize);

impl Writer for SizeCounter {
    #[inline]
    fn put_raw(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }

    #[inline]
    fn put_byte(&mut self, _byte: u8) {
        self.0 += 1;
    }

    #[inline]
    fn put_integer(&mut self, v: i64) {
        self.0 += integer_len(v);
    }
}

/// Cursor decoding SBS values from a borrowed byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not consumed yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Succeeds only when the whole input was consumed.
    pub fn finish(&self) -> Result<(), SbsError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(SbsError::TrailingBytes(n)),
        }
    }

    /// Takes the next `n` raw bytes.
    #[inline]
    pub fn raw(&mut self, n: usize) -> Result<&'a [u8], SbsError> {
        if n > self.remaining() {
            return Err(SbsError::UnexpectedEnd);
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, SbsError> {
        let b = *self.buf.get(self.pos).ok_or(SbsError::UnexpectedEnd)?;
        self.pos += 1;
        Ok(b)
    }

    /// Integer. Rejects encodings longer than 10 bytes or outside i64; accepts
    /// non-minimal encodings like hat does.
    #[inline]
    pub fn integer(&mut self) -> Result<i64, SbsError> {
        let first = self.byte()?;
        // Sign-extend the first 7-bit group (bit 6 is the sign of the whole number).
        let mut acc = i64::from(((first << 1) as i8) >> 1);
        if first & 0x80 != 0 {
            return Ok(acc);
        }
        for _ in 1..MAX_INTEGER_LEN {
            let b = self.byte()?;
            // Shifting by 7 must not lose bits: acc has to fit in 57 signed bits.
            if !(-(1i64 << 56)..(1i64 << 56)).contains(&acc) {
                return Err(SbsError::IntegerOverflow);
            }
            acc = (acc << 7) | i64::from(b & 0x7f);
            if b & 0x80 != 0 {
                return Ok(acc);
            }
        }
        Err(SbsError::IntegerOverflow)
    }

    /// Boolean: any non-zero byte is true (as both Python decoders do).
    #[inline]
    pub fn boolean(&mut self) -> Result<bool, SbsError> {
        Ok(self.byte()? != 0)
    }

    /// Float: 8 bytes, big-endian binary64.
    pub fn float(&mut self) -> Result<f64, SbsError> {
        let raw = self.raw(8)?;
        let mut be = [0u8; 8];
        be.copy_from_slice(raw);
        Ok(f64::from_be_bytes(be))
    }

    /// A count (Array, Bytes, String) whose items take at least `min_item_len` bytes
    /// each; checked against the remaining input.
    #[inline]
    pub fn count(&mut self, min_item_len: usize) -> Result<usize, SbsError> {
        let n = self.integer()?;
        let count = usize::try_from(n).map_err(|_| SbsError::InvalidLength(n))?;
        if count.saturating_mul(min_item_len) > self.remaining() {
            return Err(SbsError::InvalidLength(n));
        }
        Ok(count)
    }

    /// An Array count, with a safe initial capacity for the decoded elements.
    ///
    /// Returns `(count, capacity)`. Each element must take at least `min_item_len`
    /// bytes (1 for every element type of the Eventer schemas).
    #[inline]
    pub fn array(&mut self, min_item_len: usize) -> Result<(usize, usize), SbsError> {
        let count = self.count(min_item_len.max(1))?;
        Ok((count, count.min(MAX_PREALLOC_ELEMENTS)))
    }

    /// Bytes, borrowed from the input.
    #[inline]
    pub fn bytes(&mut self) -> Result<&'a [u8], SbsError> {
        let n = self.count(1)?;
        self.raw(n)
    }

    /// String, borrowed from the input; invalid UTF-8 is an error.
    #[inline]
    pub fn str(&mut self) -> Result<&'a str, SbsError> {
        let raw = self.bytes()?;
        std::str::from_utf8(raw).map_err(|_| SbsError::InvalidUtf8)
    }

    /// String, owned.
    #[inline]
    pub fn string(&mut self) -> Result<String, SbsError> {
        self.str().map(str::to_owned)
    }

    /// Choice index of a type with `entries` entries (`type_name` for errors).
    #[inline]
    pub fn choice(&mut self, entries: u8, type_name: &'static str) -> Result<u8, SbsError> {
        let index = self.integer()?;
        match u8::try_from(index) {
            Ok(i) if i < entries => Ok(i),
            _ => Err(SbsError::InvalidChoice { index, type_name }),
        }
    }

    /// Optional tag: true when a value follows.
    #[inline]
    pub fn optional(&mut self, type_name: &'static str) -> Result<bool, SbsError> {
        Ok(self.choice(2, type_name)? == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        out.put_integer(v);
        out
    }

    fn dec(bytes: &[u8]) -> Result<i64, SbsError> {
        let mut r = Reader::new(bytes);
        let v = r.integer()?;
        r.finish()?;
        Ok(v)
    }

    #[test]
    fn integer_spec_examples() {
        let cases: &[(i64, &[u8])] = &[
            (0, &[0x80]),
            (1, &[0x81]),
            (63, &[0xbf]),
            (64, &[0x00, 0xc0]),
            (127, &[0x00, 0xff]),
            (128, &[0x01, 0x80]),
            (8191, &[0x3f, 0xff]),
            (8192, &[0x00, 0x40, 0x80]),
            (999_999, &[0x3d, 0x04, 0xbf]),
            (1_700_000_000, &[0x06, 0x2a, 0x4f, 0x62, 0x80]),
            (-1, &[0xff]),
            (-2, &[0xfe]),
            (-64, &[0xc0]),
            (-65, &[0x7f, 0xbf]),
            (-128, &[0x7f, 0x80]),
            (-8192, &[0x40, 0x80]),
            (-8193, &[0x7f, 0x3f, 0xff]),
            (-1_700_000_000, &[0x79, 0x55, 0x30, 0x1e, 0x80]),
            (
                i64::MAX,
                &[0x00, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0xff],
            ),
            (
                i64::MIN,
                &[0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80],
            ),
        ];
        for &(v, bytes) in cases {
            assert_eq!(enc(v), bytes, "encode {v}");
            assert_eq!(integer_len(v), bytes.len(), "len {v}");
            assert_eq!(dec(bytes), Ok(v), "decode {v}");
        }
    }

    #[test]
    fn integer_round_trips_at_group_boundaries() {
        for shift in 0..64 {
            for base in [1i64 << shift, (1i64 << shift).wrapping_neg()] {
                for v in [base.wrapping_sub(1), base, base.wrapping_add(1)] {
                    let bytes = enc(v);
                    assert_eq!(bytes.len(), integer_len(v), "{v}");
                    assert_eq!(dec(&bytes), Ok(v), "{v}");
                }
            }
        }
    }

    #[test]
    fn integer_accepts_non_minimal_forms() {
        assert_eq!(dec(&[0x00, 0x00, 0x80]), Ok(0));
        assert_eq!(dec(&[0x7f, 0xff]), Ok(-1));
    }

    #[test]
    fn integer_rejects_overflow() {
        // 2^63: one more than i64::MAX.
        let too_big = [0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80];
        assert_eq!(dec(&too_big), Err(SbsError::IntegerOverflow));
        // -2^63 - 1.
        let too_small = [0x7e, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0xff];
        assert_eq!(dec(&too_small), Err(SbsError::IntegerOverflow));
        // 11 bytes, even though the value (0) would fit.
        let mut long = vec![0x00; 10];
        long.push(0x80);
        assert_eq!(dec(&long), Err(SbsError::IntegerOverflow));
    }

    #[test]
    fn integer_rejects_truncation() {
        assert_eq!(dec(&[]), Err(SbsError::UnexpectedEnd));
        assert_eq!(dec(&[0x01, 0x02]), Err(SbsError::UnexpectedEnd));
    }

    #[test]
    fn boolean_any_non_zero_is_true() {
        assert_eq!(Reader::new(&[0x00]).boolean(), Ok(false));
        assert_eq!(Reader::new(&[0x01]).boolean(), Ok(true));
        assert_eq!(Reader::new(&[0x7f]).boolean(), Ok(true));
        assert_eq!(Reader::new(&[]).boolean(), Err(SbsError::UnexpectedEnd));
    }

    #[test]
    fn float_is_big_endian() {
        let mut out = Vec::new();
        out.put_float(1.5);
        assert_eq!(out, [0x3f, 0xf8, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Reader::new(&out).float(), Ok(1.5));
        assert_eq!(Reader::new(&out[..7]).float(), Err(SbsError::UnexpectedEnd));
    }

    #[test]
    fn string_count_is_in_bytes() {
        let mut out = Vec::new();
        out.put_str("é€😀");
        assert_eq!(
            out,
            [0x89, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80]
        );
        assert_eq!(Reader::new(&out).str(), Ok("é€😀"));
    }

    #[test]
    fn string_rejects_invalid_utf8() {
        assert_eq!(
            Reader::new(&[0x82, 0xc3, 0x28]).str(),
            Err(SbsError::InvalidUtf8)
        );
    }

    #[test]
    fn counts_are_checked_against_remaining_input() {
        // Claims 2^62 bytes with 1 byte left.
        let mut huge = enc(1 << 62);
        huge.push(0);
        assert!(matches!(
            Reader::new(&huge).bytes(),
            Err(SbsError::InvalidLength(_))
        ));
        assert_eq!(
            Reader::new(&[0xff]).bytes(),
            Err(SbsError::InvalidLength(-1))
        );
        assert_eq!(
            Reader::new(&[0x83, 0x81, 0x81]).array(1),
            Err(SbsError::InvalidLength(3))
        );
        assert_eq!(Reader::new(&[0x82, 0x81, 0x81]).array(1), Ok((2, 2)));
        // Elements of at least 8 bytes: 2 elements need 16.
        assert_eq!(
            Reader::new(&[0x82; 10]).array(8),
            Err(SbsError::InvalidLength(2))
        );
    }

    #[test]
    fn choice_index_out_of_range() {
        assert_eq!(Reader::new(&[0x83]).choice(3, "T"), {
            Err(SbsError::InvalidChoice {
                index: 3,
                type_name: "T",
            })
        });
        assert_eq!(
            Reader::new(&[0xff]).choice(3, "T"),
            Err(SbsError::InvalidChoice {
                index: -1,
                type_name: "T",
            })
        );
        assert_eq!(Reader::new(&[0x82]).choice(3, "T"), Ok(2));
    }

    #[test]
    fn optional_and_none() {
        let mut out = Vec::new();
        out.put_optional_tag(false);
        out.put_optional_tag(true);
        out.put_str("x");
        assert_eq!(out, [0x80, 0x81, 0x81, b'x']);
        let mut r = Reader::new(&out);
        assert_eq!(r.optional("Optional"), Ok(false));
        assert_eq!(r.optional("Optional"), Ok(true));
        assert_eq!(r.str(), Ok("x"));
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn trailing_bytes_are_reported() {
        let mut r = Reader::new(&[0x80, 0x81]);
        assert_eq!(r.integer(), Ok(0));
        assert_eq!(r.finish(), Err(SbsError::TrailingBytes(1)));
    }

    #[test]
    fn size_counter_matches_written_bytes() {
        let mut out = BytesMut::new();
        let mut size = SizeCounter::default();
        for v in [0, 63, 64, -65, i64::MAX, i64::MIN] {
            out.put_integer(v);
            size.put_integer(v);
        }
        out.put_str("gateway");
        size.put_str("gateway");
        out.put_float(2.0);
        size.put_float(2.0);
        assert_eq!(size.0, out.len());
    }
}
