//! Reading a file the user names (a phase file, the state file, a saved plan) with bounded work:
//! only a regular file is read (a device such as `/dev/zero`, a FIFO or a directory is refused
//! before it is opened), and never more than a cap, even when the file grows while it is read.

use std::io::{self, Read};
use std::path::Path;

/// The most a state file (or a saved plan) may hold: far beyond the 100,000 resources terrace is
/// measured with, and small enough that a wrong file fails fast.
pub const MAX_STATE_BYTES: u64 = 1 << 30;

/// The whole of the regular file at `path`, if it holds at most `cap` bytes.
pub fn read_regular(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let regular = |meta: &std::fs::Metadata| {
        if meta.is_file() {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file (a device, a FIFO or a directory)"))
        }
    };
    let too_large = || io::Error::new(io::ErrorKind::InvalidData, format!("larger than the limit of {cap} bytes"));
    // Checked before opening: opening a FIFO would wait for a writer.
    let meta = std::fs::metadata(path)?;
    regular(&meta)?;
    if meta.len() > cap {
        return Err(too_large());
    }
    let file = std::fs::File::open(path)?;
    // And on what was opened, in case the path was swapped meanwhile.
    regular(&file.metadata()?)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(too_large());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_regular_file_within_the_cap_is_read() {
        let dir = tempfile::tempdir().expect("a folder");
        let file = dir.path().join("f");
        std::fs::write(&file, b"0123456789").expect("a file");
        assert_eq!(read_regular(&file, 10).expect("read"), b"0123456789");
        let error = read_regular(&file, 9).expect_err("over the cap");
        assert!(error.to_string().contains("larger than the limit of 9 bytes"), "{error}");
        for special in ["/dev/zero", "/dev/urandom", "/dev/null"] {
            let error = read_regular(Path::new(special), 1 << 20).expect_err(special);
            assert!(error.to_string().contains("not a regular file"), "{special}: {error}");
        }
        let error = read_regular(dir.path(), 1 << 20).expect_err("a folder");
        assert!(error.to_string().contains("not a regular file"), "{error}");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
        assert!(made.success());
        // Refused at once, without waiting for a writer.
        let error = read_regular(&fifo, 1 << 20).expect_err("a FIFO");
        assert!(error.to_string().contains("not a regular file"), "{error}");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).expect("a symlink");
        assert_eq!(read_regular(&link, 10).expect("a link to a regular file is read"), b"0123456789");
    }
}
