//! Chunked transfer coding, read incrementally: shared by the request
//! parser (bodies clients send) and the client's response parser (bodies
//! the Docker engine sends).

use crate::error::ApiError;
use crate::limits::{MAX_CHUNK_LINE, MAX_HEAD_BYTES};

/// Where a chunked body is: a size line next, inside a chunk's data, the
/// line end after it, or the trailer after the last chunk.
#[derive(Debug, Clone, Copy)]
pub enum Chunk {
    /// A chunk-size line comes next.
    Size,
    /// So many data bytes are left in this chunk.
    Data(usize),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines, up to an empty one.
    Trailer,
}

/// Advance a chunked body of at most `limit` bytes, `total` so far.
/// Returns bytes used, how many of them (at the start of `buf`) are data,
/// and whether the body is complete.
pub fn chunked_step(
    step: &mut Chunk,
    total: &mut u64,
    limit: u64,
    buf: &[u8],
) -> Result<(usize, usize, bool), ApiError> {
    match *step {
        Chunk::Size => {
            let Some(line_end) = find_line(buf, MAX_CHUNK_LINE, "chunk size line")? else {
                return Ok((0, 0, false));
            };
            let size = parse_chunk_size(&buf[..line_end.0])?;
            let size64 = u64::try_from(size).unwrap_or(u64::MAX);
            if total.saturating_add(size64) > limit {
                return Err(ApiError::PayloadTooLarge {
                    limit,
                    size: total.saturating_add(size64),
                });
            }
            *step = if size == 0 {
                Chunk::Trailer
            } else {
                Chunk::Data(size)
            };
            Ok((line_end.1, 0, false))
        }
        Chunk::Data(left) => {
            let take = buf.len().min(left);
            *total += take as u64;
            *step = if take == left {
                Chunk::DataEnd
            } else {
                Chunk::Data(left - take)
            };
            Ok((take, take, false))
        }
        Chunk::DataEnd => match buf {
            [b'\r', b'\n', ..] => {
                *step = Chunk::Size;
                Ok((2, 0, false))
            }
            [b'\n', ..] => {
                *step = Chunk::Size;
                Ok((1, 0, false))
            }
            [] | [b'\r'] => Ok((0, 0, false)),
            _ => Err(ApiError::bad("Chunk data is not followed by CRLF")),
        },
        Chunk::Trailer => {
            let Some((content_end, used)) = find_line(buf, MAX_HEAD_BYTES, "trailer")? else {
                return Ok((0, 0, false));
            };
            Ok((used, 0, content_end == 0))
        }
    }
}

/// Find the end of one line: (length without the line ending, length with it).
fn find_line(buf: &[u8], limit: usize, what: &str) -> Result<Option<(usize, usize)>, ApiError> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(nl) if nl > limit => Err(ApiError::bad(format!("The {what} is too long"))),
        Some(nl) => {
            let content = if nl > 0 && buf[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            Ok(Some((content, nl + 1)))
        }
        None if buf.len() > limit => Err(ApiError::bad(format!("The {what} is too long"))),
        None => Ok(None),
    }
}

fn parse_chunk_size(line: &[u8]) -> Result<usize, ApiError> {
    let hex_end = line.iter().position(|&b| b == b';').unwrap_or(line.len());
    let hex = std::str::from_utf8(&line[..hex_end])
        .map_err(|_| ApiError::bad("Invalid chunk size"))?
        .trim();
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad(format!("Invalid chunk size '{hex}'")));
    }
    usize::from_str_radix(hex, 16)
        .map_err(|_| ApiError::bad(format!("Chunk size '{hex}' is too large")))
}
