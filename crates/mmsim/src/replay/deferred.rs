//! Lines the parser keeps for a later line, remembered so that a call
//! whose other half never comes can be reported with its line number.

use std::collections::VecDeque;

/// Lines the parser kept for a later line (`<unfinished ...>` halves), to
/// name the line when the other half never comes.
#[derive(Default)]
pub(super) struct Deferred {
    lines: VecDeque<(usize, String)>,
}

impl Deferred {
    /// Bound on the lines kept (the oldest are forgotten).
    const MAX: usize = 1 << 16;

    pub(super) fn push(&mut self, line: usize, text: &str) {
        if self.lines.len() == Self::MAX {
            self.lines.pop_front();
        }
        self.lines.push_back((line, text.to_string()));
    }

    /// The line a never-completed call came from, found by the call's text
    /// that the parser's message quotes.
    /// Returns the line number, the message without the quoted text, and
    /// the line.
    pub(super) fn find(&self, message: &str) -> Option<(usize, String, String)> {
        let (short, head) = ["never resumed: ", "never continued: "].iter().find_map(|m| {
            let i = message.find(m)?;
            Some((&message[..i + m.len() - 2], message[i + m.len()..].trim()))
        })?;
        let (n, text) = self.lines.iter().find(|(_, t)| !head.is_empty() && t.contains(head))?;
        Some((*n, short.to_string(), text.clone()))
    }
}
