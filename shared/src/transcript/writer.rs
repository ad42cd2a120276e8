//! Writing a transcript step by step, for recordings and replays that may be cut off.

use std::fmt;
use std::io::{self, Write};

use sha2::{Digest as _, Sha256};

use super::{Digest, Header, Kind, Step, WriteError, print};

/// Writes a transcript as it happens: the header at [`TranscriptWriter::new`], each step at
/// [`TranscriptWriter::write_step`], the digest trailer at [`TranscriptWriter::finish`].
///
/// Each call hands its lines to the underlying writer in one `write_all`, so a recording cut
/// off by a crash holds whole lines up to the last step written (unless the writer below
/// buffers; flush it with [`TranscriptWriter::flush`] when that matters) and no trailer. Such a
/// text reads back only through [`super::Transcript::recover`], which reports it unfinished.
/// After an I/O error the recording is broken (part of a step may be written): drop the
/// writer.
pub struct TranscriptWriter<W: Write> {
    out: W,
    hasher: Sha256,
    buffer: Vec<u8>,
    kind: Kind,
    steps: usize,
}

impl<W: Write> TranscriptWriter<W> {
    /// Checks the header and writes it.
    pub fn new(out: W, header: &Header) -> Result<Self, WriteError> {
        header.check()?;
        let mut writer = TranscriptWriter {
            out,
            hasher: Sha256::new(),
            buffer: Vec::with_capacity(512),
            kind: header.kind,
            steps: 0,
        };
        print::header_into(header, &mut writer.buffer);
        writer.emit()?;
        Ok(writer)
    }

    /// Checks a step against the header's kind and writes it.
    pub fn write_step(&mut self, step: &Step) -> Result<(), WriteError> {
        super::check_step(self.kind, self.steps, step)?;
        print::step_into(step, &mut self.buffer);
        self.emit()?;
        self.steps += 1;
        Ok(())
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// How many steps have been written.
    pub fn steps_written(&self) -> usize {
        self.steps
    }

    /// Writes the digest trailer, flushes, and gives back the writer and the digest.
    pub fn finish(mut self) -> Result<(W, Digest), WriteError> {
        let digest = Digest(self.hasher.finalize_reset().into());
        print::trailer_into(&digest, &mut self.buffer);
        self.out.write_all(&self.buffer)?;
        self.out.flush()?;
        Ok((self.out, digest))
    }

    fn emit(&mut self) -> io::Result<()> {
        self.hasher.update(&self.buffer);
        let written = self.out.write_all(&self.buffer);
        self.buffer.clear();
        written
    }
}

impl<W: Write> fmt::Debug for TranscriptWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TranscriptWriter")
            .field("kind", &self.kind)
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}
