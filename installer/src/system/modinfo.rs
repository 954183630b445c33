//! Reading a module's `.modinfo` section (`vermagic=...`, `version=...`)
//! straight from the ELF file, without `modinfo(8)`: a prebuilt toa.ko is
//! checked before anything tries to load it.
//!
//! Only what is needed is parsed: the ELF64 header, the section header
//! table and the section-name string table. Every offset is checked, so a
//! truncated or hostile file is an error, never a panic.

use thiserror::Error;

/// Why the file is not a usable kernel module.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ModinfoError {
    /// Not an ELF64 file.
    #[error("not an ELF64 kernel module")]
    NotElf64,
    /// A header or section points outside the file.
    #[error("the ELF file is truncated or corrupt ({0})")]
    Corrupt(&'static str),
    /// No `.modinfo` section.
    #[error("the ELF file has no .modinfo section, so it is not a kernel module")]
    NoModinfo,
    /// `.modinfo` has no `vermagic`.
    #[error("the module's .modinfo has no vermagic")]
    NoVermagic,
}

struct Reader<'a> {
    bytes: &'a [u8],
    little: bool,
}

impl Reader<'_> {
    fn slice(&self, at: u64, len: u64, what: &'static str) -> Result<&[u8], ModinfoError> {
        let start = usize::try_from(at).map_err(|_| ModinfoError::Corrupt(what))?;
        let len = usize::try_from(len).map_err(|_| ModinfoError::Corrupt(what))?;
        let end = start.checked_add(len).ok_or(ModinfoError::Corrupt(what))?;
        self.bytes
            .get(start..end)
            .ok_or(ModinfoError::Corrupt(what))
    }

    fn uint(&self, at: u64, len: u64, what: &'static str) -> Result<u64, ModinfoError> {
        let raw = self.slice(at, len, what)?;
        let fold = |acc: u64, b: &u8| (acc << 8) | u64::from(*b);
        Ok(if self.little {
            raw.iter().rev().fold(0, fold)
        } else {
            raw.iter().fold(0, fold)
        })
    }
}

/// The `key=value` pairs of the `.modinfo` section, in file order.
pub fn read_modinfo(bytes: &[u8]) -> Result<Vec<(String, String)>, ModinfoError> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 {
        return Err(ModinfoError::NotElf64);
    }
    let little = match bytes[5] {
        1 => true,
        2 => false,
        _ => return Err(ModinfoError::NotElf64),
    };
    let r = Reader { bytes, little };
    let shoff = r.uint(0x28, 8, "e_shoff")?;
    let shentsize = r.uint(0x3a, 2, "e_shentsize")?;
    let shnum = r.uint(0x3c, 2, "e_shnum")?;
    let shstrndx = r.uint(0x3e, 2, "e_shstrndx")?;
    if shentsize < 64 || shstrndx >= shnum {
        return Err(ModinfoError::Corrupt("section header table"));
    }
    r.slice(shoff, shnum * shentsize, "section header table")?;
    let header = |i: u64| -> Result<(u64, u64, u64), ModinfoError> {
        let at = shoff
            .checked_add(
                i.checked_mul(shentsize)
                    .ok_or(ModinfoError::Corrupt("section header"))?,
            )
            .ok_or(ModinfoError::Corrupt("section header"))?;
        Ok((
            r.uint(at, 4, "sh_name")?,
            r.uint(at + 0x18, 8, "sh_offset")?,
            r.uint(at + 0x20, 8, "sh_size")?,
        ))
    };
    let (_, str_off, str_size) = header(shstrndx)?;
    let names = r.slice(str_off, str_size, "section names")?;
    for i in 0..shnum {
        let (name, off, size) = header(i)?;
        let name = usize::try_from(name).map_err(|_| ModinfoError::Corrupt("sh_name"))?;
        let rest = names.get(name..).ok_or(ModinfoError::Corrupt("sh_name"))?;
        let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
        if &rest[..end] != b".modinfo" {
            continue;
        }
        let data = r.slice(off, size, ".modinfo")?;
        return Ok(data
            .split(|b| *b == 0)
            .filter_map(|entry| {
                let text = String::from_utf8_lossy(entry);
                let (k, v) = text.split_once('=')?;
                Some((k.to_owned(), v.to_owned()))
            })
            .collect());
    }
    Err(ModinfoError::NoModinfo)
}

/// The module's `vermagic` (`6.1.0-27-amd64 SMP preempt mod_unload modversions `).
pub fn vermagic(bytes: &[u8]) -> Result<String, ModinfoError> {
    read_modinfo(bytes)?
        .into_iter()
        .find(|(k, _)| k == "vermagic")
        .map(|(_, v)| v)
        .ok_or(ModinfoError::NoVermagic)
}

/// The kernel release a `vermagic` names: its first word.
pub fn vermagic_release(vermagic: &str) -> &str {
    vermagic.split_whitespace().next().unwrap_or("")
}

/// A minimal valid ELF64 little-endian relocatable file with a `.modinfo`
/// section holding `pairs`, for tests.
#[cfg(test)]
pub(crate) fn fixture_ko(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut modinfo = Vec::new();
    for (k, v) in pairs {
        modinfo.extend_from_slice(format!("{k}={v}").as_bytes());
        modinfo.push(0);
    }
    let shstrtab = b"\0.modinfo\0.shstrtab\0".to_vec();
    let modinfo_off = 64u64;
    let shstrtab_off = modinfo_off + modinfo.len() as u64;
    let shoff = (shstrtab_off + shstrtab.len() as u64).next_multiple_of(8);
    let mut out = vec![0u8; 64];
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = 2; // ELFCLASS64
    out[5] = 1; // little endian
    out[6] = 1; // EV_CURRENT
    out[0x10..0x12].copy_from_slice(&1u16.to_le_bytes()); // ET_REL
    out[0x12..0x14].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    out[0x14..0x18].copy_from_slice(&1u32.to_le_bytes());
    out[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
    out[0x34..0x36].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    out[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
    out[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes()); // e_shnum
    out[0x3e..0x40].copy_from_slice(&2u16.to_le_bytes()); // e_shstrndx
    out.extend_from_slice(&modinfo);
    out.extend_from_slice(&shstrtab);
    out.resize(shoff as usize, 0);
    let section = |name: u32, kind: u32, off: u64, size: u64| {
        let mut h = vec![0u8; 64];
        h[0..4].copy_from_slice(&name.to_le_bytes());
        h[4..8].copy_from_slice(&kind.to_le_bytes());
        h[0x18..0x20].copy_from_slice(&off.to_le_bytes());
        h[0x20..0x28].copy_from_slice(&size.to_le_bytes());
        h[0x30..0x38].copy_from_slice(&1u64.to_le_bytes());
        h
    };
    out.extend(section(0, 0, 0, 0));
    out.extend(section(1, 1, modinfo_off, modinfo.len() as u64)); // PROGBITS
    out.extend(section(10, 3, shstrtab_off, shstrtab.len() as u64)); // STRTAB
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vermagic_and_version() {
        let ko = fixture_ko(&[
            ("version", "0.1.0"),
            ("license", "GPL"),
            (
                "vermagic",
                "6.1.0-27-amd64 SMP preempt mod_unload modversions ",
            ),
        ]);
        let info = read_modinfo(&ko).unwrap();
        assert_eq!(info[0], ("version".to_owned(), "0.1.0".to_owned()));
        let v = vermagic(&ko).unwrap();
        assert_eq!(vermagic_release(&v), "6.1.0-27-amd64");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let ko = fixture_ko(&[("vermagic", "6.1.0 SMP")]);
        assert_eq!(vermagic(b"not elf"), Err(ModinfoError::NotElf64));
        for cut in [64, 80, ko.len() - 1] {
            assert!(vermagic(&ko[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(
            vermagic(&fixture_ko(&[("version", "1")])),
            Err(ModinfoError::NoVermagic)
        );
        let mut renamed = ko.clone();
        let at = renamed.windows(8).position(|w| w == b".modinfo").unwrap();
        renamed[at + 1] = b'X';
        assert_eq!(vermagic(&renamed), Err(ModinfoError::NoModinfo));
        // Every single-byte corruption of the header is handled.
        for i in 0..64 {
            let mut bad = ko.clone();
            bad[i] ^= 0xff;
            let _ = read_modinfo(&bad);
        }
    }
}
