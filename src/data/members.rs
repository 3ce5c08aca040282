//! Every member of a gzip file, one after another, as `gunzip` reads them.
//!
//! A gzip file is one or more members, each a header, a deflate stream and a trailer (CRC-32
//! and length); `cat a.gz b.gz` makes a valid two-member file whose contents are a's then b's.
//! flate2's `MultiGzDecoder` reads such files too, but it calls anything after the last member
//! an invalid header; this reader tells that case apart ([`Members::garbage`]), so that junk
//! appended to a good file is reported as junk, not as corruption of the data before it.

use flate2::bufread::GzDecoder;
use std::io::{self, BufRead, Read};

/// The decompressed bytes of every member of the gzip stream in `R`.
pub struct Members<R: BufRead> {
    state: State<R>,
    garbage: bool,
}

enum State<R: BufRead> {
    /// Reading a member.
    Member(GzDecoder<R>),
    /// The last member ended: at the end of the input, or before bytes that are not gzip.
    Done,
}

impl<R: BufRead> Members<R> {
    pub fn new(input: R) -> Members<R> {
        Members { state: State::Member(GzDecoder::new(input)), garbage: false }
    }

    /// Whether the input went on, after the end of a member, with bytes that cannot start
    /// another (the first byte of a gzip member is 0x1f). Those bytes are not read.
    pub fn garbage(&self) -> bool {
        self.garbage
    }
}

impl<R: BufRead> Read for Members<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let State::Member(gz) = &mut self.state else {
                return Ok(0);
            };
            let k = gz.read(buf)?;
            if k > 0 {
                return Ok(k);
            }
            // The member ended, its trailer checked by the decoder. What follows it decides:
            // nothing (the end), another member, or garbage.
            let State::Member(gz) = std::mem::replace(&mut self.state, State::Done) else {
                return Ok(0);
            };
            let mut rest = gz.into_inner();
            match rest.fill_buf()?.first() {
                None => return Ok(0),
                // A bad header after this byte is reported by the next member's decoder.
                Some(0x1f) => self.state = State::Member(GzDecoder::new(rest)),
                Some(_) => {
                    self.garbage = true;
                    return Ok(0);
                }
            }
        }
    }
}
