//! What a failed read leaves in its sample, from the sampler to the summary.
//!
//! A sensor's `read` fails with an `anyhow` error, whose text is what the user sees (in
//! `power.csv`, in a window's `invalid: …`). Of its kinds one changes what the summary does:
//! an energy counter that lost count makes every window across it invalid. The sampler tells
//! that kind apart once, by the error's type ([`CounterError::LostCount`]), so nothing
//! downstream has to recognise it in the message.

use super::sysfs::CounterError;

/// Why one read of a sensor gave no value; its text is the read's error as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// An energy counter lost count ([`CounterError::LostCount`]): the energy between its last
    /// change before this read and its first after is unknown.
    #[error("{0}")]
    CounterBreak(String),
    /// Any other failed read (a NACK, a file gone).
    #[error("{0}")]
    Failed(String),
}

impl ReadError {
    /// The error a sensor's `read` returned, its causes on one line (`{:#}`).
    pub fn of(e: &anyhow::Error) -> Self {
        let message = format!("{e:#}");
        match e.downcast_ref::<CounterError>() {
            Some(CounterError::LostCount { .. }) => Self::CounterBreak(message),
            _ => Self::Failed(message),
        }
    }

    /// The message, as the user sees it.
    pub fn message(&self) -> &str {
        match self {
            Self::CounterBreak(message) | Self::Failed(message) => message,
        }
    }

    pub fn is_counter_break(&self) -> bool {
        matches!(self, Self::CounterBreak(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensor::sysfs::{counter_error, LostCount};
    use std::path::Path;

    #[test]
    fn a_lost_count_under_its_file_name_is_a_counter_break_with_the_same_text() {
        let lost = CounterError::LostCount {
            why: LostCount::WentBackwards,
            from_uj: 9,
            to_uj: 1,
        };
        let read = ReadError::of(&counter_error(Path::new("/sys/x/energy1_input"), lost));
        assert_eq!(
            read,
            ReadError::CounterBreak(
                "/sys/x/energy1_input: the energy counter lost count: the counter went \
                 backwards and has no wrap range: was the driver reloaded? (from 9 to 1 µJ)"
                    .into()
            )
        );
        assert_eq!(read.to_string(), read.message());
        // Another error of the counter, or of anything else, is a plain failure.
        let above = CounterError::AboveRange { raw: 2, range: 1 };
        let read = ReadError::of(&counter_error(Path::new("/sys/x/energy_uj"), above));
        assert_eq!(
            read,
            ReadError::Failed("/sys/x/energy_uj: counter 2 µJ is above its range 1 µJ".into())
        );
        let nack = anyhow::anyhow!("no acknowledge").context("INA219 at 0x40");
        assert_eq!(
            ReadError::of(&nack),
            ReadError::Failed("INA219 at 0x40: no acknowledge".into())
        );
    }
}
