//! Runs of plain prefix rules (`^4477=...`, `^+\?8822$=...`), indexed so that a table of ten
//! thousand number prefixes decides in one walk of the called number, not ten thousand regex
//! matches. A rule qualifies when it tests the match string with an anchored literal (an
//! optional `+\?` and an optional final `$` allowed), has no condition chain, opens or
//! closes no block, and ends routing when it matches (a literal target, not a keyword). The
//! index answers "which rule of the run matches first"; that rule is then evaluated like any
//! other, so captures and parameters behave exactly as without the index.

use hashbrown::HashMap;

use super::table::{first_word, Line, Subject, KEYWORDS};

const NONE: u32 = u32::MAX;
/// Shorter runs are not worth an index.
const MIN_RUN: usize = 4;

#[derive(Clone, Copy, Debug)]
struct Node {
    /// Lowest line index of a rule whose prefix ends here.
    prefix: u32,
    /// Lowest line index of a rule that must end exactly here (`$`).
    exact: u32,
}

/// The index of one run of prefix rules: lines `start..end` of a context.
#[derive(Clone, Debug)]
pub struct PrefixIndex {
    pub start: usize,
    pub end: usize,
    nodes: Vec<Node>,
    edges: HashMap<(u32, char), u32>,
}

impl PrefixIndex {
    /// The first line of the run whose rule matches `subject`, if any.
    pub fn lookup(&self, subject: &str) -> Option<usize> {
        let mut node = 0u32;
        let mut best = self.nodes[0].prefix;
        let mut whole = true;
        for c in subject.chars() {
            match self.edges.get(&(node, c)) {
                Some(&n) => {
                    node = n;
                    best = best.min(self.nodes[n as usize].prefix);
                }
                None => {
                    whole = false;
                    break;
                }
            }
        }
        if whole {
            best = best.min(self.nodes[node as usize].exact);
        }
        (best != NONE).then_some(best as usize)
    }

    fn insert(&mut self, text: &str, exact: bool, line: usize) {
        let mut node = 0u32;
        for c in text.chars() {
            let next = self.nodes.len() as u32;
            node = *self.edges.entry((node, c)).or_insert_with(|| next);
            if node == next {
                self.nodes.push(Node {
                    prefix: NONE,
                    exact: NONE,
                });
            }
        }
        let n = &mut self.nodes[node as usize];
        let slot = if exact { &mut n.exact } else { &mut n.prefix };
        *slot = (*slot).min(line as u32);
    }
}

/// The literal prefixes a key stands for, and whether it must match the whole string.
fn literal_prefixes(pattern: &str) -> Option<(Vec<String>, bool)> {
    let rest = pattern.strip_prefix('^')?;
    // `^+\?44`: an optional plus; `^\+44`: a plus (GNU reads `\+` with nothing to repeat as
    // the character).
    let (plus, optional, rest) = if let Some(r) = rest.strip_prefix(r"+\?") {
        (true, true, r)
    } else if let Some(r) = rest.strip_prefix(r"\+") {
        (true, false, r)
    } else {
        (false, false, rest)
    };
    let (lit, exact) = match rest.strip_suffix('$') {
        Some(l) => (l, true),
        None => (rest, false),
    };
    if !lit
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '#' | '_' | '@' | '%' | '/' | ':'))
    {
        return None;
    }
    let v = match (plus, optional) {
        (false, _) => vec![lit.to_string()],
        (true, true) => vec![lit.to_string(), format!("+{lit}")],
        (true, false) => vec![format!("+{lit}")],
    };
    Some((v, exact))
}

/// True when a line, once matched, ends routing with a literal target.
fn terminal(line: &Line) -> bool {
    let target = line.rest.split(';').next().unwrap_or("").trim();
    !target.is_empty()
        && !target.contains(['\\', '$', '{', '}'])
        && !KEYWORDS.contains(&first_word(target))
}

fn qualifies(line: &Line) -> Option<(Vec<String>, bool)> {
    if line.closes
        || line.opens
        || !line.chain.is_empty()
        || line.cond.negate
        || line.cond.subject != Subject::Match
    {
        return None;
    }
    if !terminal(line) {
        return None;
    }
    literal_prefixes(line.cond.source.trim())
}

/// The indexes of every long enough run of qualifying lines, by first line.
pub fn segments(lines: &[Line], insensitive: bool) -> HashMap<usize, PrefixIndex> {
    let mut out = HashMap::new();
    if insensitive {
        return out;
    }
    let mut i = 0;
    while i < lines.len() {
        let mut j = i;
        let mut index = PrefixIndex {
            start: i,
            end: i,
            nodes: vec![Node {
                prefix: NONE,
                exact: NONE,
            }],
            edges: HashMap::new(),
        };
        while j < lines.len() {
            let Some((prefixes, exact)) = qualifies(&lines[j]) else {
                break;
            };
            for p in prefixes {
                index.insert(&p, exact, j);
            }
            j += 1;
        }
        if j - i >= MIN_RUN {
            index.end = j;
            out.insert(i, index);
        }
        i = j.max(i + 1);
    }
    out
}
