//! Commit ids shortened for people, in one place and at two deliberate
//! lengths.

use std::fmt;

/// A commit id cut for people to read. `of` keeps 10 characters: the
/// columns of `teal history`, `teal status`, the dashboard and the log
/// lines, where ids are compared by eye. `git` keeps 7, git's own default,
/// in sentences (`refused 4be1c0a: ...`, the waves, the fleet table). A
/// shorter id is kept whole; the cut never splits a character (a peer's
/// status may say anything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortCommit<'a>(&'a str);

impl<'a> ShortCommit<'a> {
    /// Characters `of` keeps.
    pub const LEN: usize = 10;
    /// Characters `git` keeps.
    pub const GIT: usize = 7;

    /// The first 10 characters of `commit`.
    pub fn of(commit: &'a str) -> ShortCommit<'a> {
        ShortCommit(cut(commit, Self::LEN))
    }

    /// The first 7 characters of `commit`, as `git log --oneline` shows it.
    pub fn git(commit: &'a str) -> ShortCommit<'a> {
        ShortCommit(cut(commit, Self::GIT))
    }

    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

impl fmt::Display for ShortCommit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

fn cut(s: &str, chars: usize) -> &str {
    s.char_indices().nth(chars).map_or(s, |(i, _)| &s[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_cut_at_ten_or_seven_and_short_ones_kept_whole() {
        let id = "4be1c0aa7f0d11e2b6a1c9e5a8f7d6c5b4a39281";
        assert_eq!(ShortCommit::of(id).to_string(), "4be1c0aa7f");
        assert_eq!(ShortCommit::git(id).as_str(), "4be1c0a");
        assert_eq!(ShortCommit::of("abc").as_str(), "abc");
        assert_eq!(ShortCommit::git("").as_str(), "");
        assert_eq!(ShortCommit::git("ééééééééé").as_str(), "ééééééé", "cut on characters");
    }
}
