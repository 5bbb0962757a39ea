//! POSIX regular expressions, as Yate's route files write them, translated once into the
//! `regex` crate's syntax (linear-time matching: no backtracking blow-up on any input).
//!
//! Basic syntax (the default, `extended=no`) is GNU's: `\(..\)` groups, `\{n,m\}` intervals,
//! `\|` alternation, `\?` and `\+`, while bare `+ ? ( ) { } |` are ordinary characters, so
//! `^+\?8822` means "an optional plus, then 8822". `*`, `\+` and `\?` are literal where they
//! cannot repeat anything (first, or after `\(`, `\|` or a leading `^`), so `^\+44` is
//! "+44"; `^` is an anchor only at the start (of the expression, a group or an alternative)
//! and `$` only at the end. Extended syntax (`extended=yes`) is POSIX ERE. In both, a
//! backslash inside a bracket expression is an ordinary character, and `[:digit:]` classes
//! work. Back-references (`\1` in a pattern) have no linear-time implementation and are
//! refused at load with a clear error. `tests/posix_glibc.rs` checks the translation against
//! glibc's own `regcomp`/`regexec` (what Yate uses).

/// Translates a POSIX expression into `regex` crate syntax. `Err` says what is not supported.
pub fn translate(pattern: &str, extended: bool, insensitive: bool) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut o = Out::new(if insensitive { "(?si)" } else { "(?s)" }, pattern.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        i += 1;
        match c {
            '\\' => {
                let Some(e) = next else {
                    return Err("ends with a lone backslash".into());
                };
                i += 1;
                match e {
                    // Nothing to repeat (start, after `\(` or `\|`, or a leading `^`): GNU
                    // takes `\+` and `\?` as the characters, so `^\+44` means "+44".
                    '?' | '+' if !extended && o.at_start => o.atom(&format!("\\{e}")),
                    '?' | '+' if !extended => o.repeat(&e.to_string()),
                    '(' if !extended => o.open(),
                    ')' if !extended => o.close()?,
                    '|' if !extended => o.alternate(),
                    '{' if !extended => {
                        let (interval, after) = interval(&chars, i, r"\}")
                            .ok_or("\\{ must be followed by a count and \\}, as in \\{2,4\\}")?;
                        i = after;
                        if o.at_start {
                            return Err("\\{ has nothing to repeat".into());
                        }
                        o.repeat(&interval);
                    }
                    '}' if !extended => return Err("\\} without \\{".into()),
                    '1'..='9' => {
                        return Err(format!(
                            "back-reference \\{e} is not supported (no linear-time matching)"
                        ))
                    }
                    '<' => o.atom(r"\b{start}"),
                    '>' => o.atom(r"\b{end}"),
                    '`' => o.anchor(r"\A"),
                    '\'' => o.anchor(r"\z"),
                    'b' | 'B' => o.anchor(&format!("\\{e}")),
                    'w' | 'W' | 's' | 'S' => o.atom(&format!("\\{e}")),
                    'n' => o.atom(r"\n"),
                    't' => o.atom(r"\t"),
                    other => o.atom(&regex::escape(&other.to_string())),
                }
            }
            '[' => {
                let mut class = String::new();
                i = bracket(&chars, i - 1, &mut class)?;
                o.atom(&class);
            }
            // `^^`: the second is the character.
            '^' if (o.at_start && !o.out.ends_with('^')) || extended => o.anchor("^"),
            '$' if extended || next.is_none() || ends_group(&chars, i, extended) => o.anchor("$"),
            '*' | '+' | '?' if o.at_start || (extended && o.last.is_none()) => {
                o.atom(&regex::escape(&c.to_string()))
            }
            '*' => o.repeat("*"),
            '+' | '?' if extended => o.repeat(&c.to_string()),
            '{' if extended => match interval(&chars, i, "}") {
                Some((interval, after)) if o.last.is_some() => {
                    i = after;
                    o.repeat(&interval);
                }
                _ => o.atom(r"\{"),
            },
            '(' if extended => o.open(),
            ')' if extended && !o.groups.is_empty() => o.close()?,
            '|' if extended => o.alternate(),
            '.' => o.atom("."),
            _ => o.atom(&regex::escape(&c.to_string())),
        }
    }
    if !o.groups.is_empty() {
        return Err(if extended {
            "( is never closed".into()
        } else {
            "\\( is never closed by \\)".into()
        });
    }
    Ok(o.out)
}

/// The translation as it is written, with what a repetition operator would apply to.
struct Out {
    out: String,
    /// Where each open group starts in `out`.
    groups: Vec<usize>,
    /// Where the last atom (or group) starts, if a repetition can follow it.
    last: Option<usize>,
    /// The last thing written was a repetition operator.
    repeated: bool,
    /// Nothing to repeat yet: the start of the expression, of a group or of an alternative
    /// (a leading `^` keeps it so).
    at_start: bool,
}

impl Out {
    fn new(flags: &str, len: usize) -> Out {
        let mut out = String::with_capacity(len + 16);
        out.push_str(flags);
        Out {
            out,
            groups: Vec::new(),
            last: None,
            repeated: false,
            at_start: true,
        }
    }

    fn atom(&mut self, s: &str) {
        self.last = Some(self.out.len());
        self.out.push_str(s);
        self.repeated = false;
        self.at_start = false;
    }

    /// `^`, `$` and other zero-width assertions: nothing to repeat after them.
    fn anchor(&mut self, s: &str) {
        self.out.push_str(s);
        self.last = None;
        self.repeated = false;
    }

    /// A repetition operator. POSIX applies stacked operators one after the other (`a+?` is
    /// "(a+)?"), where the regex crate would read a lazy `+?`: the repeated part is grouped.
    fn repeat(&mut self, op: &str) {
        let Some(start) = self.last else {
            self.atom(&regex::escape(op));
            return;
        };
        if self.repeated {
            self.out.insert_str(start, "(?:");
            self.out.push(')');
        }
        self.out.push_str(op);
        self.repeated = true;
        self.at_start = false;
    }

    fn open(&mut self) {
        self.groups.push(self.out.len());
        self.out.push('(');
        self.last = None;
        self.repeated = false;
        self.at_start = true;
    }

    fn close(&mut self) -> Result<(), String> {
        let start = self
            .groups
            .pop()
            .ok_or("a group is closed that was never opened")?;
        self.out.push(')');
        self.last = Some(start);
        self.repeated = false;
        self.at_start = false;
        Ok(())
    }

    fn alternate(&mut self) {
        self.out.push('|');
        self.last = None;
        self.repeated = false;
        self.at_start = true;
    }
}

/// An interval's count after its opening brace (`chars[i..]`, up to `close`): `{n}`, `{n,}`
/// or `{n,m}` in the regex crate's syntax, and the index after the closing brace.
fn interval(chars: &[char], i: usize, close: &str) -> Option<(String, usize)> {
    let close: Vec<char> = close.chars().collect();
    let end = (i..chars.len()).find(|&j| chars[j..].starts_with(&close))?;
    let body: String = chars[i..end].iter().collect();
    let (lo, hi) = match body.split_once(',') {
        Some((lo, hi)) => (lo, Some(hi)),
        None => (body.as_str(), None),
    };
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if !digits(lo) || hi.is_some_and(|h| !h.is_empty() && !digits(h)) {
        return None;
    }
    Some((format!("{{{body}}}"), end + close.len()))
}

/// True when position `i` closes a group or starts an alternative (so a `$` before it is an
/// anchor).
fn ends_group(chars: &[char], i: usize, extended: bool) -> bool {
    if extended {
        return matches!(chars.get(i), Some(')' | '|'));
    }
    chars.get(i) == Some(&'\\') && matches!(chars.get(i + 1), Some(')' | '|'))
}

/// Copies a bracket expression starting at `chars[start] == '['`; returns the index after it.
fn bracket(chars: &[char], start: usize, out: &mut String) -> Result<usize, String> {
    let mut i = start + 1;
    out.push('[');
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    // A `]` first is an ordinary member.
    if chars.get(i) == Some(&']') {
        out.push_str(r"\]");
        i += 1;
    }
    loop {
        let Some(&c) = chars.get(i) else {
            return Err("a bracket expression [ is never closed".into());
        };
        match c {
            ']' => {
                out.push(']');
                return Ok(i + 1);
            }
            '[' if matches!(chars.get(i + 1), Some(':' | '=' | '.')) => {
                let kind = chars[i + 1];
                let close = (i + 2..chars.len().saturating_sub(1))
                    .find(|&j| chars[j] == kind && chars[j + 1] == ']');
                let Some(end) = close else {
                    return Err(format!("[{kind} is never closed by {kind}]"));
                };
                let name: String = chars[i + 2..end].iter().collect();
                match kind {
                    ':' => {
                        out.push_str("[:");
                        out.push_str(&name);
                        out.push_str(":]");
                    }
                    // Equivalence classes and collating symbols of one character: that character.
                    _ if name.chars().count() == 1 => out.push_str(&regex::escape(&name)),
                    _ => return Err(format!("[{kind}{name}{kind}] is not supported")),
                }
                i = end + 2;
            }
            // Ordinary inside brackets in POSIX, special in the regex crate.
            '\\' | '[' | '&' | '~' => {
                out.push('\\');
                out.push(c);
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        regex::Regex::new(&translate(pattern, false, false).unwrap())
            .unwrap()
            .is_match(text)
    }

    #[test]
    fn gnu_basic_operators_and_literals() {
        // The seed's `^+\?8822`: optional plus, then 8822.
        assert!(m(r"^+\?88229009$", "88229009"));
        assert!(m(r"^+\?88229009$", "+88229009"));
        assert!(!m(r"^+\?88229009$", "++88229009"));
        // Bare + ? ( ) { } | are literals.
        assert!(m(r"a+b", "a+b") && !m(r"a+b", "aab"));
        assert!(m(r"(x)", "(x)") && !m(r"(x)", "x"));
        assert!(m(r"a|b", "a|b") && !m(r"^a|b$", "a"));
        assert!(m(r"a{2}", "a{2}"));
        // Escaped ones are operators.
        assert!(m(r"^a\{2\}$", "aa") && !m(r"^a\{2\}$", "a"));
        assert!(m(r"^\(ab\)\+$", "ababab"));
        assert!(m(r"^cat\|dog$", "dog"));
        // * literal at the start and after \( ; ^ and $ literal in the middle.
        assert!(m(r"*a", "*a") && m(r"^*a", "*a"));
        assert!(m(r"a^b", "a^b") && m(r"a$b", "a$b"));
        assert!(m(r"^.*$", "anything"));
    }

    #[test]
    fn brackets_keep_backslash_ordinary_and_classes_work() {
        assert!(m(r"^[\]$", "\\"));
        assert!(m(r"^[]a]$", "]") && m(r"^[^]a]$", "b"));
        assert!(m(r"^[[:digit:]]\{3\}$", "123") && !m(r"^[[:digit:]]\{3\}$", "12a"));
        assert!(m(r"^[a[]$", "["));
    }

    #[test]
    fn extended_syntax_and_case() {
        let re = regex::Regex::new(&translate(r"^(cat|dog)+$", true, false).unwrap()).unwrap();
        assert!(re.is_match("catdog"));
        let re = regex::Regex::new(&translate(r"^HTTP", false, true).unwrap()).unwrap();
        assert!(re.is_match("http://x"));
    }

    #[test]
    fn unsupported_constructs_are_refused_with_a_reason() {
        assert!(translate(r"\(a\)\1", false, false)
            .unwrap_err()
            .contains("back-reference"));
        assert!(translate(r"[abc", false, false)
            .unwrap_err()
            .contains("never closed"));
        assert!(translate("abc\\", false, false)
            .unwrap_err()
            .contains("lone backslash"));
        // (A key is cut at its first `=`, so this one only arises from code, not a file.)
        assert!(translate("[[=ab=]]", false, false)
            .unwrap_err()
            .contains("[=ab=] is not supported"));
    }
}
