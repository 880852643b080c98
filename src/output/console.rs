//! Every command's stdout, through one writer. `print!` panics when a write fails, and one
//! fails whenever the reader went away (`| head`: Rust ignores SIGPIPE, so the write returns
//! EPIPE) or the disk is full (`>/dev/full`): a command whose work is done must not end in a
//! panic.

use std::fmt;
use std::io::{ErrorKind, Write};

use anyhow::Result;

/// A command's stdout. A reader that stopped reading is no error, as for other command-line
/// tools: what is printed after it went is dropped, and the command ends as it would have.
/// Any other failed write is the command's error, one line: `cannot print to stdout: ...`.
///
/// Used with `write!` and `writeln!`, which call [`Console::write_fmt`].
pub struct Console<W: Write = std::io::Stdout> {
    out: W,
    closed: bool,
}

impl Console {
    pub fn stdout() -> Self {
        Self::new(std::io::stdout())
    }
}

impl<W: Write> Console<W> {
    pub fn new(out: W) -> Self {
        Self { out, closed: false }
    }

    /// Writes `args` and flushes them at once, so a failure is this write's and not a later
    /// one's (stdout buffers up to a newline).
    pub fn write_fmt(&mut self, args: fmt::Arguments) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        match self.out.write_fmt(args).and_then(|()| self.out.flush()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(e) => anyhow::bail!("cannot print to stdout: {e}"),
        }
    }

    /// Whether the reader went away: what was printed since then is lost.
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// The writer, with everything printed to it.
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stdout whose every write fails with the OS error `errno`.
    struct Failing {
        errno: i32,
        writes: usize,
    }

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            self.writes += 1;
            Err(std::io::Error::from_raw_os_error(self.errno))
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn failing(errno: i32) -> Console<Failing> {
        Console::new(Failing { errno, writes: 0 })
    }

    #[test]
    fn a_reader_gone_is_no_error_and_later_output_is_dropped() {
        let mut out = failing(libc::EPIPE);
        writeln!(out, "first").unwrap();
        assert!(out.closed());
        writeln!(out, "second").unwrap();
        assert_eq!(out.out.writes, 1, "wrote again after the reader went");
    }

    #[test]
    fn a_full_disk_is_one_line_naming_stdout() {
        let mut out = failing(libc::ENOSPC);
        let e = format!("{:#}", writeln!(out, "table").unwrap_err());
        assert!(
            e.starts_with("cannot print to stdout: No space left on device") && !e.contains('\n'),
            "{e}"
        );
        assert!(!out.closed());
    }

    #[test]
    fn what_is_printed_arrives_whole() {
        let mut out = Console::new(Vec::new());
        write!(out, "a {}", 1).unwrap();
        writeln!(out, " b").unwrap();
        assert_eq!(out.out, b"a 1 b\n");
    }
}
