//! POSIX regular expressions, as Yate's route files write them, translated once into the
//! `regex` crate's syntax (linear-time matching: no backtracking blow-up on any input).
//!
//! Basic syntax (the default, `extended=no`) is GNU's: `\(..\)` groups, `\{n,m\}` intervals,
//! `\|` alternation, `\?` and `\+`, while bare `+ ? ( ) { } |` are ordinary characters, so
//! `^+\?8822` means "an optional plus, then 8822". `*` is literal where it cannot repeat
//! anything (first, or after `\(`, `\|` or a leading `^`); `^` is an anchor only at the start
//! (of the expression, a group or an alternative) and `$` only at the end. Extended syntax
//! (`extended=yes`) is POSIX ERE. In both, a backslash inside a bracket expression is an
//! ordinary character, and `[:digit:]` classes work. Back-references (`\1` in a pattern) have
//! no linear-time implementation and are refused at load with a clear error.

/// Translates a POSIX expression into `regex` crate syntax. `Err` says what is not supported.
pub fn translate(pattern: &str, extended: bool, insensitive: bool) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    out.push_str(if insensitive { "(?si)" } else { "(?s)" });
    // True where an operator has nothing to apply to (start, after a group opening or `|`).
    let mut at_start = true;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '\\' => {
                let Some(e) = next else {
                    return Err("ends with a lone backslash".into());
                };
                i += 2;
                match e {
                    '(' | ')' | '{' | '}' | '|' | '?' | '+' if !extended => {
                        out.push(e);
                        at_start = matches!(e, '(' | '|');
                        continue;
                    }
                    '1'..='9' => {
                        return Err(format!(
                            "back-reference \\{e} is not supported (no linear-time matching)"
                        ))
                    }
                    '<' => out.push_str(r"\b{start}"),
                    '>' => out.push_str(r"\b{end}"),
                    '`' => out.push_str(r"\A"),
                    '\'' => out.push_str(r"\z"),
                    'b' | 'B' | 'w' | 'W' | 's' | 'S' => {
                        out.push('\\');
                        out.push(e);
                    }
                    'n' => out.push_str(r"\n"),
                    't' => out.push_str(r"\t"),
                    other => out.push_str(&regex::escape(&other.to_string())),
                }
                at_start = false;
                continue;
            }
            '[' => {
                i = bracket(&chars, i, &mut out)?;
                at_start = false;
                continue;
            }
            '^' if at_start || extended => {
                out.push('^');
                // `*` right after a leading `^` is still literal in basic syntax.
                i += 1;
                continue;
            }
            '$' if extended || next.is_none() || ends_group(&chars, i + 1, extended) => {
                out.push('$')
            }
            '*' if at_start => out.push_str(r"\*"),
            '*' | '.' => out.push(c),
            '+' | '?' | '{' | '}' | '|' | '(' | ')' if extended => {
                out.push(c);
                at_start = matches!(c, '(' | '|');
                i += 1;
                continue;
            }
            _ => out.push_str(&regex::escape(&c.to_string())),
        }
        at_start = false;
        i += 1;
    }
    Ok(out)
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
