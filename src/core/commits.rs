//! The fencing tokens of consecutive commits, kept as runs.
//!
//! The head names the token of every commit since the newest snapshot (a reader needs it to find
//! the batch `e/<session>/<version>/<token>`), and the snapshot interval grows with the session, so
//! as a plain list the head, written twice a turn, would grow with the session too. Tokens come in
//! runs: each turn takes the next token and commits once (or, with checkpoints, a few times), so
//! the list is `k` commits of token `t`, `k` of `t + 1`, ... until a turn aborts (a token without
//! commits) or commits a different number of times. A run is one such stretch: the head of a
//! session whose turns commit alike stays a few bytes long whatever its length.

/// `tokens` consecutive tokens from `first`, each with `each` commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRun {
    pub first: u64,
    pub each: u64,
    pub tokens: u64,
}

impl TokenRun {
    /// How many commits the run holds.
    pub fn commits(&self) -> u64 {
        self.each * self.tokens
    }

    fn last_token(&self) -> u64 {
        self.first + (self.tokens - 1)
    }
}

/// The tokens of consecutive commits, in order (see the module's documentation). The newest token
/// has a run of its own until the next token comes (its count of commits is not final before);
/// then it joins the run before it when it continues it, so that a session whose turns commit alike
/// keeps one run (two, with a turn cut by a snapshot first) and the one of the newest token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commits {
    runs: Vec<TokenRun>,
}

impl Commits {
    /// `count` commits of `token` (an imported session's versions, all under one token).
    pub fn repeated(token: u64, count: u64) -> Commits {
        let runs = if count == 0 { Vec::new() } else { vec![TokenRun { first: token, each: count, tokens: 1 }] };
        Commits { runs }
    }

    /// Commits from their runs, as read from a record; `None` when a run is malformed (no commit)
    /// or a count overflows.
    pub fn from_runs(runs: Vec<TokenRun>) -> Option<Commits> {
        let mut total = 0u64;
        for run in &runs {
            if run.tokens == 0 || run.each == 0 {
                return None;
            }
            run.first.checked_add(run.tokens - 1)?;
            total = total.checked_add(run.each.checked_mul(run.tokens)?)?;
        }
        Some(Commits { runs })
    }

    pub fn runs(&self) -> &[TokenRun] {
        &self.runs
    }

    pub fn push(&mut self, token: u64) {
        if let Some(last) = self.runs.last_mut() {
            if token == last.last_token() {
                if last.tokens == 1 {
                    last.each += 1;
                } else {
                    // Its last token gets one commit more than the others: it leaves the run.
                    last.tokens -= 1;
                    let each = last.each + 1;
                    self.runs.push(TokenRun { first: token, each, tokens: 1 });
                }
                return;
            }
            self.join_newest();
        }
        self.runs.push(TokenRun { first: token, each: 1, tokens: 1 });
    }

    /// The newest token's run, now complete, joins the run before it when it continues it.
    fn join_newest(&mut self) {
        if let [.., before, newest] = self.runs[..] {
            if newest.tokens == 1
                && newest.each == before.each
                && before.last_token().checked_add(1) == Some(newest.first)
            {
                self.runs.pop();
                if let Some(before) = self.runs.last_mut() {
                    before.tokens += 1;
                }
            }
        }
    }

    pub fn len(&self) -> u64 {
        self.runs.iter().map(TokenRun::commits).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    pub fn clear(&mut self) {
        self.runs.clear();
    }

    /// The token of the `index`-th commit.
    pub fn get(&self, mut index: u64) -> Option<u64> {
        for run in &self.runs {
            let len = run.commits();
            if index < len {
                return Some(run.first + index / run.each);
            }
            index -= len;
        }
        None
    }

    /// The tokens one by one (a snapshot's list of the commits since the one before).
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.runs.iter().flat_map(|run| (0..run.commits()).map(move |i| run.first + i / run.each))
    }

    pub fn last(&self) -> Option<u64> {
        self.runs.last().map(TokenRun::last_token)
    }
}

impl FromIterator<u64> for Commits {
    fn from_iter<I: IntoIterator<Item = u64>>(tokens: I) -> Commits {
        let mut commits = Commits::default();
        for token in tokens {
            commits.push(token);
        }
        commits
    }
}

impl From<Vec<u64>> for Commits {
    fn from(tokens: Vec<u64>) -> Commits {
        tokens.into_iter().collect()
    }
}
