//! The POSIX shell scripts behind `read_files`, `digests` and `write_file`, the one shell-quoting
//! helper every path and owner goes through, and strict parsers of what the scripts print: remote
//! output is checked line by line, never taken on trust. The scripts assume GNU coreutils (`stat -c`,
//! `base64 -w`, `mv -T`, `sync FILE`), as on the Debian and Ubuntu images terrace's servers run.

use std::collections::BTreeMap;

use russh::keys::ssh_encoding::base64::{Base64, Encoding};
use sha2::{Digest, Sha256};

use super::RemoteFile;

/// The exit status the scripts use for a path that exists but is not a regular file, so that the
/// failure reads as a failed command with the reason on standard error.
const NOT_A_FILE: u32 = 3;

/// `text` as one shell word: in single quotes, each `'` written as `'\''`. Nothing inside single
/// quotes is special to a POSIX shell, so this is safe for any text without a NUL byte.
pub(crate) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A path the scripts accept: absolute, naming something below `/`, without NUL (which no command
/// line can carry).
pub(crate) fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') || path.len() < 2 || path.ends_with('/') || path.contains('\0') {
        return Err(format!("refusing the path {path:?}: it must be absolute, name a file and contain no NUL byte"));
    }
    Ok(())
}

/// A mode as `chmod` takes it and [`RemoteFile::mode`] shows it: three or four octal digits,
/// returned in the four-digit form.
pub(crate) fn check_mode(mode: &str) -> Result<String, String> {
    octal_mode(mode, 3)
        .ok_or_else(|| format!("refusing the mode {mode:?}: it must be three or four octal digits, as 0640"))
}

/// `text` as a four-digit mode if it is `shortest` to four octal digits. `stat -c %a` drops
/// leading zeros (mode 0007 prints as `7`), so remote modes may be a single digit.
fn octal_mode(text: &str, shortest: usize) -> Option<String> {
    if !(shortest..=4).contains(&text.len()) || !text.bytes().all(|digit| (b'0'..=b'7').contains(&digit)) {
        return None;
    }
    let bits = u32::from_str_radix(text, 8).ok()?;
    Some(format!("{bits:04o}"))
}

/// An owner as `chown` takes it and [`RemoteFile::owner`] shows it: `user:group`.
pub(crate) fn check_owner(owner: &str) -> Result<(), String> {
    let valid = match owner.split_once(':') {
        Some((user, group)) => [user, group].iter().all(|name| {
            !name.is_empty() && !name.contains(':') && !name.chars().any(|c| c.is_whitespace() || c.is_control())
        }),
        None => false,
    };
    if valid { Ok(()) } else { Err(format!("refusing the owner {owner:?}: it must be `user:group`")) }
}

/// The words after `for p in` that loop over `paths`, quoted.
fn path_list(paths: &[String]) -> String {
    paths.iter().map(|path| quote(path)).collect::<Vec<_>>().join(" ")
}

/// The branch every reading script takes for something at the path that is not a regular file
/// (a folder, a dangling link): a failure naming it, rather than a file that looks missing.
fn not_a_file_branch() -> String {
    format!(
        "  elif [ -e \"$p\" ] || [ -L \"$p\" ]; then\n    printf '%s is not a regular file\\n' \"$p\" >&2\n    exit {NOT_A_FILE}\n"
    )
}

/// Prints, per path and in order, `M` for a missing file or `F <mode> <user>:<group> <base64>`,
/// then `END`. The content goes as base64 on one line so any bytes survive the line framing; its
/// digest is computed here from the bytes received, so it always matches the content returned.
pub(crate) fn read_files_script(paths: &[String]) -> String {
    format!(
        "for p in {list}; do\n  if [ -f \"$p\" ]; then\n    m=$(stat -L -c '%a %U:%G' -- \"$p\") || exit 1\n    printf 'F %s ' \"$m\"\n    base64 -w 0 -- \"$p\" || exit 1\n    printf '\\n'\n{other}  else\n    printf 'M\\n'\n  fi\ndone\nprintf 'END\\n'\n",
        list = path_list(paths),
        other = not_a_file_branch(),
    )
}

/// Prints, per path and in order, `M` for a missing file or `F <sha256>`, then `END`.
pub(crate) fn digests_script(paths: &[String]) -> String {
    format!(
        "for p in {list}; do\n  if [ -f \"$p\" ]; then\n    d=$(sha256sum < \"$p\") || exit 1\n    printf 'F %s\\n' \"${{d%% *}}\"\n{other}  else\n    printf 'M\\n'\n  fi\ndone\nprintf 'END\\n'\n",
        list = path_list(paths),
        other = not_a_file_branch(),
    )
}

/// Writes standard input to `path` atomically: a temporary file in the same folder (created by
/// `mktemp`, so 0600 and unreadable to others while it fills), owner and mode set, flushed to
/// disk, renamed over the path, and the folder flushed so the rename survives a crash. The
/// temporary file is removed if any step fails. `mv -T` refuses to move into a folder of that name.
pub(crate) fn write_file_script(path: &str, mode: &str, owner: &str) -> String {
    let folder = match path.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((folder, _)) => folder,
    };
    format!(
        "umask 022\np={path}\nd={folder}\n[ -d \"$d\" ] || mkdir -p -- \"$d\" || exit 1\nt=$(mktemp \"$d/.terrace.XXXXXXXXXX\") || exit 1\ntrap 'rm -f -- \"$t\"' EXIT\ntrap 'exit 1' HUP INT TERM\ncat > \"$t\" || exit 1\nchown -- {owner} \"$t\" || exit 1\nchmod -- {mode} \"$t\" || exit 1\nsync -- \"$t\" || exit 1\nmv -f -T -- \"$t\" \"$p\" || exit 1\nsync -- \"$d\" || exit 1\n",
        path = quote(path),
        folder = quote(folder),
        owner = quote(owner),
        mode = quote(mode),
    )
}

/// The record lines of a reading script's output, one per path, after checking the framing: text,
/// newline-terminated, exactly as many records as paths, then `END` and nothing else.
fn records(stdout: &[u8], count: usize) -> Result<Vec<&str>, String> {
    let text = std::str::from_utf8(stdout).map_err(|_| "the listing is not text".to_owned())?;
    let body = text.strip_suffix("END\n").ok_or("the listing does not end with END")?;
    let lines: Vec<&str> = if body.is_empty() {
        Vec::new()
    } else {
        body.strip_suffix('\n').ok_or("the listing does not end with END")?.split('\n').collect()
    };
    if lines.len() != count {
        return Err(format!("the listing has {} entries for {count} paths", lines.len()));
    }
    Ok(lines)
}

pub(crate) fn parse_read_files(
    paths: &[String],
    stdout: &[u8],
) -> Result<BTreeMap<String, Option<RemoteFile>>, String> {
    let lines = records(stdout, paths.len())?;
    let mut files = BTreeMap::new();
    for (path, line) in paths.iter().zip(lines) {
        let file = if line == "M" { None } else { Some(parse_file(line).map_err(|cause| format!("{path}: {cause}"))?) };
        files.insert(path.clone(), file);
    }
    Ok(files)
}

fn parse_file(line: &str) -> Result<RemoteFile, String> {
    let fields: Vec<&str> = line.splitn(4, ' ').collect();
    let [tag, mode, owner, content] = fields[..] else {
        return Err(format!("unexpected entry {:?}", shorten(line)));
    };
    if tag != "F" {
        return Err(format!("unexpected entry {:?}", shorten(line)));
    }
    let mode = octal_mode(mode, 1).ok_or_else(|| format!("unexpected mode {mode:?}"))?;
    check_owner(owner).map_err(|_| format!("unexpected owner {owner:?}"))?;
    let content = Base64::decode_vec(content).map_err(|_| "the content is not valid base64".to_owned())?;
    Ok(RemoteFile { sha256: sha256_hex(&content), mode, owner: owner.to_owned(), content })
}

pub(crate) fn parse_digests(paths: &[String], stdout: &[u8]) -> Result<BTreeMap<String, Option<String>>, String> {
    let lines = records(stdout, paths.len())?;
    let mut digests = BTreeMap::new();
    for (path, line) in paths.iter().zip(lines) {
        let digest = match line.strip_prefix("F ") {
            None if line == "M" => None,
            Some(hex) if hex.len() == 64 && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) => {
                Some(hex.to_owned())
            }
            _ => return Err(format!("{path}: unexpected entry {:?}", shorten(line))),
        };
        digests.insert(path.clone(), digest);
    }
    Ok(digests)
}

/// The SHA-256 of `bytes` in lower hex, as `sha256sum` prints it: how files are compared, here
/// and on the server.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The start of a line of unexpected output, so an error stays short even if the line is a whole file.
fn shorten(line: &str) -> String {
    line.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// The quoting is checked by a real shell: what `sh` prints back must be the text unchanged.
    #[test]
    fn quoted_text_reaches_the_shell_unchanged() {
        for text in ["plain", "", "it's", "'", "''", "a b\tc\nd", "$HOME `id` $(id) \\ \" ; | & * ?", "ü€"] {
            let output =
                Command::new("sh").arg("-c").arg(format!("printf %s {}", quote(text))).output().expect("sh runs");
            assert!(output.status.success());
            assert_eq!(String::from_utf8_lossy(&output.stdout), text);
        }
    }

    #[test]
    fn paths_modes_and_owners_are_checked() {
        assert!(check_path("/etc/postgresql/16/main/postgresql.conf").is_ok());
        for bad in ["", "/", "etc/x", "/etc/", "/a\0b"] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(check_mode("640").as_deref(), Ok("0640"));
        assert_eq!(check_mode("0600").as_deref(), Ok("0600"));
        assert_eq!(check_mode("4755").as_deref(), Ok("4755"));
        for bad in ["", "64", "0648", "u+x", "00640", "-640"] {
            assert!(check_mode(bad).is_err(), "{bad:?}");
        }
        assert!(check_owner("postgres:postgres").is_ok());
        for bad in ["postgres", ":postgres", "postgres:", "a:b:c", "a b:c", "a:b\n"] {
            assert!(check_owner(bad).is_err(), "{bad:?}");
        }
    }

    fn paths(list: &[&str]) -> Vec<String> {
        list.iter().map(|path| (*path).to_owned()).collect()
    }

    #[test]
    fn listings_are_parsed_strictly() {
        let two = paths(&["/a", "/b"]);
        let files = parse_read_files(&two, b"F 640 postgres:postgres aGk=\nM\nEND\n").expect("valid");
        let a = files["/a"].as_ref().expect("present");
        assert_eq!(
            (a.mode.as_str(), a.owner.as_str(), a.content.as_slice()),
            ("0640", "postgres:postgres", &b"hi"[..])
        );
        assert_eq!(a.sha256, "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4");
        assert_eq!(files["/b"], None);
        let empty = parse_read_files(&two[..1], b"F 7 root:root \nEND\n").expect("an empty file");
        assert_eq!(empty["/a"].as_ref().map(|file| (file.mode.as_str(), file.content.len())), Some(("0007", 0)));
        assert!(parse_read_files(&[], b"END\n").expect("nothing").is_empty());

        for bad in [
            &b"F 640 postgres:postgres aGk=\nM\n"[..],
            b"F 640 postgres:postgres aGk=\nEND\n",
            b"F 640 postgres:postgres aGk=\nM\nM\nEND\n",
            b"F 640 postgres:postgres aGk=\nM\nEND\nextra\n",
            b"F 999 postgres:postgres aGk=\nM\nEND\n",
            b"F 640 postgres aGk=\nM\nEND\n",
            b"F 640 postgres:postgres a*k=\nM\nEND\n",
            b"X 640 postgres:postgres aGk=\nM\nEND\n",
            b"F 640 postgres:postgres aGk=\r\nM\nEND\n",
            b"\xff\nM\nEND\n",
        ] {
            assert!(parse_read_files(&two, bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn digests_are_parsed_strictly() {
        let two = paths(&["/a", "/b"]);
        let hex = "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4";
        let digests = parse_digests(&two, format!("M\nF {hex}\nEND\n").as_bytes()).expect("valid");
        assert_eq!(digests["/a"], None);
        assert_eq!(digests["/b"].as_deref(), Some(hex));
        for bad in [
            format!("M\nF {}\nEND\n", hex.to_uppercase()),
            format!("M\nF {}\nEND\n", &hex[1..]),
            format!("M\nF {hex}  -\nEND\n"),
            "M\nEND\n".to_owned(),
        ] {
            assert!(parse_digests(&two, bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_write_script_names_the_parent_folder() {
        let script = write_file_script("/etc/redis/redis.conf", "0640", "redis:redis");
        assert!(script.contains("p='/etc/redis/redis.conf'\nd='/etc/redis'\n"), "{script}");
        let at_root = write_file_script("/motd", "0644", "root:root");
        assert!(at_root.contains("d='/'\n"), "{at_root}");
    }
}
