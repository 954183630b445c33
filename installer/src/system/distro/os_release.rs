//! Parsing `/etc/os-release` and the older per-distribution release files.
//!
//! `os-release(5)`: newline-separated `KEY=value` assignments in a subset of
//! shell syntax. Values may be unquoted, `"double quoted"` (where `\` escapes
//! `$`, `"`, `\` and `` ` ``) or `'single quoted'` (literal); quoted and
//! unquoted parts may be joined (`"a"'b'c`). Lines starting with `#` are
//! comments; blank lines and lines that are not assignments are ignored.

use std::collections::BTreeMap;

/// The assignments of an os-release file, keys as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsReleaseFile {
    vars: BTreeMap<String, String>,
}

impl OsReleaseFile {
    /// Parses the text of an os-release file. Malformed lines are skipped, as
    /// every reader of the format does.
    pub fn parse(text: &str) -> Self {
        let mut vars = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, raw)) = line.split_once('=') else {
                continue;
            };
            if !is_valid_key(key) {
                continue;
            }
            if let Some(value) = unquote(raw) {
                vars.insert(key.to_owned(), value);
            }
        }
        OsReleaseFile { vars }
    }

    /// The value of `key`, if assigned and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Decodes one shell-style word. Returns `None` for an unterminated quote.
/// An unquoted blank ends the word (what follows it is ignored).
fn unquote(raw: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = raw.trim_end().chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => match chars.next()? {
                        e @ ('$' | '"' | '\\' | '`') => out.push(e),
                        '\n' => {}
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    },
                    other => out.push(other),
                }
            },
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    other => out.push(other),
                }
            },
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            c if c.is_whitespace() => break,
            c => out.push(c),
        }
    }
    Some(out)
}

/// What a pre-os-release file (`/etc/redhat-release`, `/etc/centos-release`)
/// says: `CentOS release 6.10 (Final)` → (`centos`, `6.10`, `CentOS`).
pub fn parse_redhat_release(text: &str) -> Option<(&'static str, String, String)> {
    let line = text.lines().next()?.trim();
    let (name, rest) = line.split_once(" release ")?;
    let version = rest.split_whitespace().next()?.to_owned();
    let id = [
        ("Red Hat Enterprise Linux", "rhel"),
        ("CentOS", "centos"),
        ("Rocky", "rocky"),
        ("AlmaLinux", "almalinux"),
        ("TencentOS", "tencentos"),
        ("Tencent Linux", "tencentos"),
        ("OpenCloudOS", "opencloudos"),
    ]
    .iter()
    .find(|(prefix, _)| name.starts_with(prefix))
    .map(|(_, id)| *id)
    .unwrap_or("unknown-redhat-like");
    Some((id, version, name.to_owned()))
}

/// What `/etc/SuSE-release` says: the first line names the product; then
/// `VERSION = 12` and `PATCHLEVEL = 5` lines.
pub fn parse_suse_release(text: &str) -> Option<(&'static str, String, String)> {
    let mut lines = text.lines();
    let first = lines.next()?.trim();
    let name = match first.find(" (") {
        Some(at) => &first[..at],
        None => first,
    };
    let mut version = None;
    let mut patchlevel = None;
    for line in lines {
        if let Some((key, value)) = line.split_once('=') {
            match key.trim() {
                "VERSION" => version = Some(value.trim().to_owned()),
                "PATCHLEVEL" => patchlevel = Some(value.trim().to_owned()),
                _ => {}
            }
        }
    }
    let version = version?;
    let version_id = match patchlevel {
        Some(p) if p != "0" => format!("{version}.{p}"),
        _ => version,
    };
    let id = if name.starts_with("SUSE Linux Enterprise Server") {
        "sles"
    } else if name.starts_with("openSUSE") && version_id.starts_with("15") {
        "opensuse-leap"
    } else if name.starts_with("openSUSE") {
        "opensuse"
    } else {
        "unknown-suse"
    };
    // SLES 12's first line says "SUSE Linux Enterprise Server 12"; drop the
    // version so the name reads like os-release's NAME.
    let name = name
        .trim_end_matches(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')
        .to_owned();
    Some((id, version_id, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_quoted_values() {
        let f = OsReleaseFile::parse(
            "NAME=\"CentOS Linux\"\nID=centos\nVERSION_ID='7'\n\n# comment=\"x\"\n  ID_LIKE=\"rhel fedora\"\n",
        );
        assert_eq!(f.get("NAME"), Some("CentOS Linux"));
        assert_eq!(f.get("ID"), Some("centos"));
        assert_eq!(f.get("VERSION_ID"), Some("7"));
        assert_eq!(f.get("ID_LIKE"), Some("rhel fedora"));
        assert_eq!(f.get("comment"), None);
    }

    #[test]
    fn escapes_in_double_quotes() {
        let f = OsReleaseFile::parse(r#"PRETTY_NAME="Foo \"Bar\" \$5 \\ \`x\` \n""#);
        assert_eq!(f.get("PRETTY_NAME"), Some(r#"Foo "Bar" $5 \ `x` \n"#));
    }

    #[test]
    fn single_quotes_are_literal_and_parts_join() {
        let f = OsReleaseFile::parse("A='a \\ \"b\"'\nB=\"x\"'y'z\nC=one\\ two\n");
        assert_eq!(f.get("A"), Some(r#"a \ "b""#));
        assert_eq!(f.get("B"), Some("xyz"));
        assert_eq!(f.get("C"), Some("one two"));
    }

    #[test]
    fn broken_lines_are_skipped() {
        let f = OsReleaseFile::parse("garbage\n=x\n1A=b\nBAD=\"unterminated\nID=debian\nEMPTY=\n");
        assert_eq!(f.get("ID"), Some("debian"));
        assert_eq!(f.get("BAD"), None);
        assert_eq!(f.get("1A"), None);
        assert_eq!(f.get("EMPTY"), None);
    }

    #[test]
    fn unquoted_value_stops_at_blank_and_crlf_is_tolerated() {
        let f = OsReleaseFile::parse("ID=ubuntu trailing\r\nVERSION_ID=\"22.04\"\r\n");
        assert_eq!(f.get("ID"), Some("ubuntu"));
        assert_eq!(f.get("VERSION_ID"), Some("22.04"));
    }

    #[test]
    fn redhat_release_lines() {
        assert_eq!(
            parse_redhat_release("CentOS release 6.10 (Final)\n"),
            Some(("centos", "6.10".to_owned(), "CentOS".to_owned()))
        );
        assert_eq!(
            parse_redhat_release("Red Hat Enterprise Linux Server release 7.9 (Maipo)\n")
                .map(|r| (r.0, r.1)),
            Some(("rhel", "7.9".to_owned()))
        );
        assert_eq!(
            parse_redhat_release("CentOS Stream release 9\n").map(|r| (r.0, r.1)),
            Some(("centos", "9".to_owned()))
        );
        assert_eq!(parse_redhat_release("hello\n"), None);
    }

    #[test]
    fn suse_release_file() {
        let text = "SUSE Linux Enterprise Server 12 (x86_64)\nVERSION = 12\nPATCHLEVEL = 5\n# This file is deprecated\n";
        assert_eq!(
            parse_suse_release(text),
            Some((
                "sles",
                "12.5".to_owned(),
                "SUSE Linux Enterprise Server".to_owned()
            ))
        );
        let leap = "openSUSE 42.2 (x86_64)\nVERSION = 42.2\nCODENAME = Malachite\n";
        assert_eq!(parse_suse_release(leap).map(|r| r.0), Some("opensuse"));
    }
}
