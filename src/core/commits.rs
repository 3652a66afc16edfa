//! The fencing tokens of consecutive commits, kept as runs.
//!
//! The head names the token of every commit since the newest snapshot (a reader needs it to find
//! the batch `e/<session>/<version>/<token>`), and the snapshot interval grows with the session, so
//! as a plain list the head, written twice a turn, would grow with the session too. Tokens come in
//! runs: each turn takes the next token and commits once (or, with checkpoints, a few times), so
//! the list is `k` commits of token `t`, `k` of `t + 1`, ... until a turn aborts (a token without
//! commits) or commits a different number of times. A run is one such stretch: the head stays a few
//! bytes long whatever the session's length.

/// `tokens` consecutive tokens from `first`, each with `each` commits, except the last, which has
/// `last` (1 to `each`): the one still being added to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRun {
    pub first: u64,
    pub each: u64,
    pub tokens: u64,
    pub last: u64,
}

impl TokenRun {
    fn single(token: u64) -> TokenRun {
        TokenRun { first: token, each: 1, tokens: 1, last: 1 }
    }

    /// How many commits the run holds.
    pub fn commits(&self) -> u64 {
        (self.tokens - 1) * self.each + self.last
    }

    fn last_token(&self) -> u64 {
        self.first + (self.tokens - 1)
    }

    /// The run with one more commit of `token` after it, or `None` when `token` does not continue it.
    fn extended(self, token: u64) -> Option<TokenRun> {
        if token == self.last_token() && self.last < self.each {
            Some(TokenRun { last: self.last + 1, ..self })
        } else if token == self.last_token() && self.tokens == 1 {
            // One token so far: its commits set how many each token of the run has.
            Some(TokenRun { each: self.each + 1, last: self.last + 1, ..self })
        } else if Some(token) == self.last_token().checked_add(1) && self.last == self.each {
            Some(TokenRun { tokens: self.tokens + 1, last: 1, ..self })
        } else {
            None
        }
    }
}

/// The tokens of consecutive commits, in order (see the module's documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commits {
    runs: Vec<TokenRun>,
}

impl Commits {
    /// `count` commits of `token` (an imported session's versions, all under one token).
    pub fn repeated(token: u64, count: u64) -> Commits {
        let runs =
            if count == 0 { Vec::new() } else { vec![TokenRun { first: token, each: count, tokens: 1, last: count }] };
        Commits { runs }
    }

    /// Commits from their runs, as read from a record; `None` when a run is malformed (no commit,
    /// or a last token with more commits than the others) or the count overflows.
    pub fn from_runs(runs: Vec<TokenRun>) -> Option<Commits> {
        let mut total = 0u64;
        for run in &runs {
            if run.tokens == 0 || run.last == 0 || run.last > run.each {
                return None;
            }
            run.first.checked_add(run.tokens - 1)?;
            total = total.checked_add((run.tokens - 1).checked_mul(run.each)?.checked_add(run.last)?)?;
        }
        Some(Commits { runs })
    }

    pub fn runs(&self) -> &[TokenRun] {
        &self.runs
    }

    pub fn push(&mut self, token: u64) {
        match self.runs.last_mut().and_then(|run| run.extended(token).map(|next| (run, next))) {
            Some((run, next)) => *run = next,
            None => self.runs.push(TokenRun::single(token)),
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
