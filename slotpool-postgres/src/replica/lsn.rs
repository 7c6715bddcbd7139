//! [`Lsn`]: a position in the write-ahead log.
//!
//! Owns: parsing PostgreSQL's text form (`16/B374D848`: the high and low
//! 32 bits in hexadecimal), showing it, and the distance between two
//! positions in bytes. It may not query a server.

use std::fmt;
use std::str::FromStr;

/// A write-ahead log position (`pg_lsn`), as a byte offset in the WAL.
/// Ordered: a replica that has replayed up to `a` has seen every commit
/// that ended at or before `a`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl Lsn {
    /// How many bytes of WAL `self` is behind `ahead` (0 if it is not).
    #[must_use]
    pub fn bytes_behind(self, ahead: Lsn) -> u64 {
        ahead.0.saturating_sub(self.0)
    }
}

/// An `Lsn` text that is not `X/Y` in hexadecimal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a WAL position (expected two hexadecimal numbers as X/Y)")]
pub struct ParseLsnError;

impl FromStr for Lsn {
    type Err = ParseLsnError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (high, low) = text.trim().split_once('/').ok_or(ParseLsnError)?;
        let parse = |part: &str| {
            if part.is_empty() || part.len() > 8 {
                return Err(ParseLsnError);
            }
            u32::from_str_radix(part, 16).map_err(|_| ParseLsnError)
        };
        Ok(Lsn((u64::from(parse(high)?) << 32) | u64::from(parse(low)?)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_shows_postgresql_text() {
        let lsn: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(lsn, Lsn((0x16 << 32) | 0xB374_D848));
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert_eq!("0/0".parse::<Lsn>().unwrap(), Lsn(0));
        for bad in ["", "0", "x/1", "1/", "/1", "1/2/3", "123456789/0"] {
            assert!(bad.parse::<Lsn>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn distance_is_in_bytes_and_never_negative() {
        let behind: Lsn = "0/3000000".parse().unwrap();
        let ahead: Lsn = "1/0".parse().unwrap();
        assert_eq!(behind.bytes_behind(ahead), 0x1_0000_0000 - 0x300_0000);
        assert_eq!(ahead.bytes_behind(behind), 0);
        assert!(behind < ahead);
    }
}
