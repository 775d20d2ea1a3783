//! Standard output for every command that prints.
//!
//! Rust ignores `SIGPIPE`, so a reader that goes away (`wsock show events | head`) turns each
//! later write into an `EPIPE` error, on which `println!` panics. Here a broken pipe ends the
//! process at once, quietly, with **exit status 0**: the reader got what it asked for, as with
//! `git` or `ripgrep` piped into `head` (a shell's `pipefail` sees success, not 141). Any other
//! write error is reported on stderr with status 1. A `wsock host` ended this way leaves its
//! socket file behind; the next host on that path replaces it.

use std::io::{self, Write};

fn failed(e: &io::Error) -> ! {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    let _ = writeln!(io::stderr(), "wsock: cannot write to stdout: {e}");
    std::process::exit(1);
}

/// Writes `args` and a newline to stdout (see the module documentation for errors).
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut o = io::stdout().lock();
    if let Err(e) = o.write_fmt(args).and_then(|()| o.write_all(b"\n")) {
        failed(&e);
    }
}

/// Writes `text` as it is to stdout and flushes it (see the module documentation for errors).
pub fn text(text: &str) {
    let mut o = io::stdout().lock();
    if let Err(e) = o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        failed(&e);
    }
}
