//! CAR v1 files: a streaming writer and a bounded, verifying streaming reader.
//!
//! A CAR v1 file is a header, then a sequence of sections:
//!
//! ```text
//! varint(len(header)) header
//! varint(len(cid) + len(block)) cid block
//! varint(len(cid) + len(block)) cid block
//! ...
//! ```
//!
//! The varints are unsigned LEB128. The header is the DAG-CBOR map
//! `{version: 1, roots: [CID, ...]}`.
//!
//! The reader only accepts the CIDs the AT Protocol uses (CIDv1, sha2-256,
//! codec `dag-cbor` or `raw`), checks every block against its CID, and holds
//! at most one block in memory at a time. [`CarLimits`] bounds the header,
//! each block, the whole file and the number of blocks, so hostile input
//! fails early with an error instead of exhausting memory. Varints must be
//! minimal and fit in 63 bits.
//!
//! ```
//! use atp_crypto::cid_for_dag_cbor;
//! use atp_repo_mst::car::{read_car, CarWriter};
//!
//! // The empty MST node.
//! let block = vec![0xa2, 0x61, 0x65, 0x80, 0x61, 0x6c, 0xf6];
//! let cid = cid_for_dag_cbor(&block);
//!
//! let mut writer = CarWriter::new(Vec::new(), &[cid])?;
//! writer.write_block(&cid, &block)?;
//! let bytes = writer.finish()?;
//!
//! let (roots, blocks) = read_car(&bytes)?;
//! assert_eq!(roots, vec![cid]);
//! assert_eq!(blocks.get(&cid), Some(&block));
//! # Ok::<(), atp_repo_mst::Error>(())
//! ```

use std::collections::BTreeMap;
use std::io::{Read, Write};

use atp_crypto::cids::{DAG_CBOR, RAW, SHA2_256};
use atp_crypto::{dagcbor, Cid, Ipld};

use crate::Error;

/// Blocks keyed by their CID, as read from or written to a CAR file.
pub type BlockMap = BTreeMap<Cid, Vec<u8>>;

/// Length of every CID the reader accepts: version, codec, hash code and
/// digest length (one byte each) and the 32-byte SHA-256 digest.
pub const CID_LEN: usize = 36;

/// Longest varint accepted: 9 bytes hold 63 bits, more than any length
/// allowed by [`CarLimits`].
const MAX_VARINT_BYTES: usize = 9;

/// Bounds applied while reading a CAR file.
///
/// Every limit is checked before the bytes it covers are read or allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CarLimits {
    /// Largest header, in bytes (without its length varint).
    pub max_header_bytes: usize,
    /// Largest block, in bytes (without its CID and length varint).
    pub max_block_bytes: usize,
    /// Largest whole file, in bytes (header, varints, CIDs and blocks).
    pub max_total_bytes: u64,
    /// Most blocks in the file.
    pub max_blocks: u64,
}

impl CarLimits {
    /// Limits for a whole repository export: 16 KiB header, 2 MiB blocks,
    /// 8 GiB in total, 50 million blocks.
    pub const REPOSITORY: CarLimits = CarLimits {
        max_header_bytes: 16 * 1024,
        max_block_bytes: 2 * 1024 * 1024,
        max_total_bytes: 8 * 1024 * 1024 * 1024,
        max_blocks: 50_000_000,
    };

    /// Limits for the `blocks` of one firehose `#commit` event: the sync
    /// specification caps the field at 2,000,000 bytes and a record block at
    /// 1,000,000 bytes.
    pub const COMMIT_EVENT: CarLimits = CarLimits {
        max_header_bytes: 1024,
        max_block_bytes: 1_000_000,
        max_total_bytes: 2_000_000,
        max_blocks: 10_000,
    };
}

impl Default for CarLimits {
    /// [`CarLimits::REPOSITORY`].
    fn default() -> Self {
        CarLimits::REPOSITORY
    }
}

/// One block of a CAR file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarBlock {
    /// The block's CID; the reader has checked that it hashes `bytes`.
    pub cid: Cid,
    /// The block's bytes.
    pub bytes: Vec<u8>,
}

// ---------------------------------------------------------------------------
// Varints

/// Appends the unsigned LEB128 encoding of `value` to `out`.
pub fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Decodes a minimal unsigned LEB128 varint of at most 9 bytes (63 bits)
/// from the start of `bytes`; returns the value and the bytes it used.
///
/// Returns `Ok(None)` when `bytes` is empty, and an error when the varint is
/// truncated, longer than 9 bytes or not minimally encoded.
pub fn decode_varint(bytes: &[u8]) -> Result<Option<(u64, usize)>, Error> {
    let mut reader = bytes;
    let mut used = 0usize;
    let value = read_varint_from(&mut reader, &mut used)?;
    Ok(value.map(|v| (v, used)))
}

/// Reads a varint byte by byte from `reader`, counting bytes in `used`.
/// `Ok(None)` means a clean end of input before the first byte.
fn read_varint_from<R: Read>(reader: &mut R, used: &mut usize) -> Result<Option<u64>, Error> {
    let mut value: u64 = 0;
    for index in 0..MAX_VARINT_BYTES {
        let mut byte = [0u8; 1];
        let got = read_full(reader, &mut byte)?;
        if got == 0 {
            if index == 0 {
                return Ok(None);
            }
            return Err(Error::InvalidCar("truncated varint".to_owned()));
        }
        *used += 1;
        let b = byte[0];
        value |= u64::from(b & 0x7f) << (7 * index);
        if b & 0x80 == 0 {
            if b == 0 && index > 0 {
                return Err(Error::InvalidCar(
                    "varint is not minimally encoded".to_owned(),
                ));
            }
            return Ok(Some(value));
        }
    }
    Err(Error::InvalidCar(format!(
        "varint longer than {MAX_VARINT_BYTES} bytes"
    )))
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> Result<usize, Error> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Io(e)),
        }
    }
    Ok(filled)
}

/// Reads exactly `len` bytes (already checked against a limit) or fails
/// with a truncation error naming `what`.
fn read_exact_bytes<R: Read>(reader: &mut R, len: usize, what: &str) -> Result<Vec<u8>, Error> {
    let mut buf = Vec::new();
    // The caller bounded `len`; `take` bounds the read even so.
    let got = reader
        .take(len as u64)
        .read_to_end(&mut buf)
        .map_err(Error::Io)?;
    if got != len {
        return Err(Error::InvalidCar(format!(
            "truncated {what}: expected {len} bytes, got {got}"
        )));
    }
    Ok(buf)
}

// ---------------------------------------------------------------------------
// Header

/// Encodes the CAR v1 header `{version: 1, roots}` as DAG-CBOR.
pub fn encode_header(roots: &[Cid]) -> Result<Vec<u8>, Error> {
    let header = Ipld::Map(BTreeMap::from([
        (
            "roots".to_owned(),
            Ipld::List(roots.iter().map(|c| Ipld::Link(*c)).collect()),
        ),
        ("version".to_owned(), Ipld::Integer(1)),
    ]));
    Ok(dagcbor::encode_ipld(&header)?)
}

/// Decodes a CAR v1 header and returns its roots.
///
/// The header must be canonical DAG-CBOR, a map with `version` 1 and a
/// `roots` list of CIDs the protocol uses (other fields are ignored).
pub fn decode_header(bytes: &[u8]) -> Result<Vec<Cid>, Error> {
    let value = dagcbor::decode_ipld(bytes)
        .map_err(|e| Error::InvalidCar(format!("header is not DAG-CBOR: {e}")))?;
    let Ipld::Map(map) = value else {
        return Err(Error::InvalidCar("header is not a map".to_owned()));
    };
    match map.get("version") {
        Some(Ipld::Integer(1)) => {}
        Some(Ipld::Integer(v)) => {
            return Err(Error::InvalidCar(format!(
                "unsupported CAR version {v} (only version 1 is read)"
            )))
        }
        _ => {
            return Err(Error::InvalidCar(
                "header has no integer version".to_owned(),
            ))
        }
    }
    let Some(Ipld::List(list)) = map.get("roots") else {
        return Err(Error::InvalidCar("header has no roots list".to_owned()));
    };
    let mut roots = Vec::with_capacity(list.len());
    for item in list {
        let Ipld::Link(cid) = item else {
            return Err(Error::InvalidCar("a header root is not a CID".to_owned()));
        };
        check_cid_kind(cid)?;
        roots.push(*cid);
    }
    Ok(roots)
}

/// Whether `cid` is one the reader accepts (CIDv1, sha2-256, 32-byte
/// digest, `dag-cbor` or `raw`).
fn check_cid_kind(cid: &Cid) -> Result<(), Error> {
    if atp_crypto::cids::is_blessed(cid) {
        Ok(())
    } else {
        Err(Error::InvalidCar(format!(
            "CID {cid} is not a CIDv1 sha2-256 dag-cbor or raw CID"
        )))
    }
}

/// Parses the 36-byte binary CID at the start of a section.
fn parse_section_cid(bytes: &[u8; CID_LEN]) -> Result<Cid, Error> {
    let codec = u64::from(bytes[1]);
    if bytes[0] != 0x01
        || (codec != DAG_CBOR && codec != RAW)
        || u64::from(bytes[2]) != SHA2_256
        || bytes[3] != 0x20
    {
        return Err(Error::InvalidCar(format!(
            "block CID prefix {:02x?} is not CIDv1 sha2-256 dag-cbor or raw",
            &bytes[..4]
        )));
    }
    let cid = Cid::read_bytes(&bytes[..]).map_err(|e| Error::InvalidCar(e.to_string()))?;
    Ok(cid)
}

/// Whether `bytes` hash (SHA-256) to the digest inside `cid`.
pub fn cid_matches(cid: &Cid, bytes: &[u8]) -> bool {
    cid.hash().code() == SHA2_256 && cid.hash().digest() == atp_crypto::sha256(bytes)
}

// ---------------------------------------------------------------------------
// Writer

/// Streaming CAR v1 writer over any [`Write`].
///
/// The header is written by [`CarWriter::new`]; blocks follow in the order
/// they are given. The writer trusts that each CID hashes its bytes.
#[derive(Debug)]
pub struct CarWriter<W: Write> {
    inner: W,
    bytes_written: u64,
    scratch: Vec<u8>,
}

impl<W: Write> CarWriter<W> {
    /// Writes the header with `roots` (the reference writes exactly one
    /// root; an empty list is allowed) and returns the writer.
    pub fn new(mut inner: W, roots: &[Cid]) -> Result<Self, Error> {
        let header = encode_header(roots)?;
        let mut prefix = Vec::with_capacity(MAX_VARINT_BYTES);
        write_varint(&mut prefix, header.len() as u64);
        inner.write_all(&prefix)?;
        inner.write_all(&header)?;
        Ok(CarWriter {
            inner,
            bytes_written: (prefix.len() + header.len()) as u64,
            scratch: Vec::with_capacity(MAX_VARINT_BYTES + CID_LEN),
        })
    }

    /// Writes one block section.
    pub fn write_block(&mut self, cid: &Cid, bytes: &[u8]) -> Result<(), Error> {
        self.scratch.clear();
        let cid_bytes = cid.to_bytes();
        write_varint(&mut self.scratch, (cid_bytes.len() + bytes.len()) as u64);
        self.scratch.extend_from_slice(&cid_bytes);
        self.inner.write_all(&self.scratch)?;
        self.inner.write_all(bytes)?;
        self.bytes_written += (self.scratch.len() + bytes.len()) as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> Result<W, Error> {
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// Writes a whole CAR file into memory.
pub fn write_car<'a, I>(roots: &[Cid], blocks: I) -> Result<Vec<u8>, Error>
where
    I: IntoIterator<Item = (&'a Cid, &'a [u8])>,
{
    let mut writer = CarWriter::new(Vec::new(), roots)?;
    for (cid, bytes) in blocks {
        writer.write_block(cid, bytes)?;
    }
    writer.finish()
}

/// Writes a CAR file holding every block of `blocks`, in CID order.
pub fn write_car_from_map(roots: &[Cid], blocks: &BlockMap) -> Result<Vec<u8>, Error> {
    write_car(roots, blocks.iter().map(|(c, b)| (c, b.as_slice())))
}

// ---------------------------------------------------------------------------
// Reader

/// Streaming CAR v1 reader over any [`Read`].
///
/// [`CarReader::new`] reads and checks the header; the blocks are then
/// yielded one at a time (as an [`Iterator`] of `Result<CarBlock, Error>`),
/// each verified against its CID. After the first error the iterator ends.
/// Wrap unbuffered sources (files, sockets) in a [`std::io::BufReader`].
#[derive(Debug)]
pub struct CarReader<R: Read> {
    inner: R,
    limits: CarLimits,
    roots: Vec<Cid>,
    total_bytes: u64,
    blocks_read: u64,
    finished: bool,
}

impl<R: Read> CarReader<R> {
    /// Reads the header with the default limits ([`CarLimits::REPOSITORY`]).
    pub fn new(inner: R) -> Result<Self, Error> {
        Self::with_limits(inner, CarLimits::default())
    }

    /// Reads the header, applying `limits` to the whole file.
    pub fn with_limits(mut inner: R, limits: CarLimits) -> Result<Self, Error> {
        let mut used = 0usize;
        let Some(header_len) = read_varint_from(&mut inner, &mut used)? else {
            return Err(Error::InvalidCar("empty input: no CAR header".to_owned()));
        };
        if header_len == 0 {
            return Err(Error::InvalidCar("header length is zero".to_owned()));
        }
        if header_len > limits.max_header_bytes as u64 {
            return Err(Error::CarLimitExceeded(format!(
                "header of {header_len} bytes (limit {})",
                limits.max_header_bytes
            )));
        }
        let total_bytes = used as u64 + header_len;
        if total_bytes > limits.max_total_bytes {
            return Err(Error::CarLimitExceeded(format!(
                "file larger than {} bytes",
                limits.max_total_bytes
            )));
        }
        let header = read_exact_bytes(&mut inner, header_len as usize, "header")?;
        let roots = decode_header(&header)?;
        Ok(CarReader {
            inner,
            limits,
            roots,
            total_bytes,
            blocks_read: 0,
            finished: false,
        })
    }

    /// The roots listed in the header.
    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    /// Bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.total_bytes
    }

    /// Blocks read so far.
    pub fn blocks_read(&self) -> u64 {
        self.blocks_read
    }

    /// Reads the next block; `Ok(None)` at the clean end of the file.
    pub fn next_block(&mut self) -> Result<Option<CarBlock>, Error> {
        if self.finished {
            return Ok(None);
        }
        let result = self.read_section();
        if !matches!(result, Ok(Some(_))) {
            self.finished = true;
        }
        result
    }

    fn read_section(&mut self) -> Result<Option<CarBlock>, Error> {
        let mut used = 0usize;
        let Some(section_len) = read_varint_from(&mut self.inner, &mut used)? else {
            return Ok(None);
        };
        self.total_bytes += used as u64;
        if self.blocks_read >= self.limits.max_blocks {
            return Err(Error::CarLimitExceeded(format!(
                "more than {} blocks",
                self.limits.max_blocks
            )));
        }
        if section_len < CID_LEN as u64 {
            return Err(Error::InvalidCar(format!(
                "section of {section_len} bytes cannot hold a {CID_LEN}-byte CID"
            )));
        }
        let block_len = section_len - CID_LEN as u64;
        if block_len > self.limits.max_block_bytes as u64 {
            return Err(Error::CarLimitExceeded(format!(
                "block of {block_len} bytes (limit {})",
                self.limits.max_block_bytes
            )));
        }
        if self.total_bytes + section_len > self.limits.max_total_bytes {
            return Err(Error::CarLimitExceeded(format!(
                "file larger than {} bytes",
                self.limits.max_total_bytes
            )));
        }
        let mut cid_bytes = [0u8; CID_LEN];
        let got = read_full(&mut self.inner, &mut cid_bytes)?;
        if got != CID_LEN {
            return Err(Error::InvalidCar(format!(
                "truncated block CID: expected {CID_LEN} bytes, got {got}"
            )));
        }
        let cid = parse_section_cid(&cid_bytes)?;
        let bytes = read_exact_bytes(&mut self.inner, block_len as usize, "block")?;
        if !cid_matches(&cid, &bytes) {
            return Err(Error::BlockHashMismatch(cid));
        }
        self.total_bytes += section_len;
        self.blocks_read += 1;
        Ok(Some(CarBlock { cid, bytes }))
    }
}

impl<R: Read> Iterator for CarReader<R> {
    type Item = Result<CarBlock, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_block().transpose()
    }
}

/// Reads a whole in-memory CAR file (default limits): its roots and blocks.
///
/// A CID that appears more than once keeps one copy (the bytes are equal,
/// since each was checked against the CID).
pub fn read_car(bytes: &[u8]) -> Result<(Vec<Cid>, BlockMap), Error> {
    read_car_with_limits(bytes, CarLimits::default())
}

/// Like [`read_car`], with explicit limits.
pub fn read_car_with_limits(
    bytes: &[u8],
    limits: CarLimits,
) -> Result<(Vec<Cid>, BlockMap), Error> {
    let mut reader = CarReader::with_limits(bytes, limits)?;
    let mut blocks = BlockMap::new();
    while let Some(block) = reader.next_block()? {
        blocks.insert(block.cid, block.bytes);
    }
    Ok((reader.roots, blocks))
}

/// Reads a CAR file that must have exactly one root; returns it and the blocks.
pub fn read_car_with_root(bytes: &[u8], limits: CarLimits) -> Result<(Cid, BlockMap), Error> {
    let (roots, blocks) = read_car_with_limits(bytes, limits)?;
    match roots.as_slice() {
        [root] => Ok((*root, blocks)),
        _ => Err(Error::InvalidCar(format!(
            "expected exactly one root, found {}",
            roots.len()
        ))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_and_rejections() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            (1 << 63) - 1,
        ] {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            assert_eq!(decode_varint(&out).unwrap(), Some((v, out.len())));
        }
        assert_eq!(decode_varint(&[]).unwrap(), None);
        // Overlong (non-minimal) encodings.
        assert!(decode_varint(&[0x80, 0x00]).is_err());
        assert!(decode_varint(&[0x81, 0x80, 0x00]).is_err());
        // Truncated.
        assert!(decode_varint(&[0x80]).is_err());
        // Ten bytes.
        assert!(decode_varint(&[0xff; 10]).is_err());
    }
}
