//! Loading a route file: sections merged by name, every regex compiled, every line parsed
//! into its key condition, its `if`/`and`/`or` chain and its action, blocks checked, and runs
//! of plain prefix rules indexed. A file with any error yields no table at all: the caller
//! keeps the one it has.

use std::collections::HashMap;
use std::fmt;

use regex::Regex;

use super::posix;
use super::prefix::PrefixIndex;
use crate::config::ini::Ini;

/// Yate's default rule for `${param}` and `$(func)` keys with no regex: "true-ish".
pub const DEFAULT_RULE: &str = r"^\(false\|no\|off\|disable\|f\|0*\)$^";
/// Nested blocks at most.
pub const MAX_BLOCKS: usize = 10;

/// A route file problem: `file:line: what is wrong`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

impl std::error::Error for RouteError {}

/// `[priorities]` settings.
#[derive(Clone, Debug)]
pub struct Options {
    pub extended: bool,
    pub insensitive: bool,
    pub prerouteall: bool,
    pub maxdepth: usize,
    pub default_rule: String,
}

/// What a condition looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// The match string (normally `called`).
    Match,
    /// `${name}` or `${name$default}`.
    Param {
        name: String,
        default: Option<String>,
    },
    /// `$(...)`, expanded (parameters, then functions) before matching.
    Func(String),
}

/// One regex test.
#[derive(Clone, Debug)]
pub struct Cond {
    pub subject: Subject,
    pub regex: Regex,
    pub negate: bool,
    /// As written, for the explain tool.
    pub source: String,
    /// The line's value uses `\0`..`\9`: a match must record its groups.
    pub captures: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Word {
    If,
    And,
    Or,
}

/// A line of a context.
#[derive(Clone, Debug)]
pub struct Line {
    pub file_line: usize,
    /// The key as written, and the value as written.
    pub key: String,
    pub value: String,
    /// The key starts with `}`: closes the innermost block.
    pub closes: bool,
    /// The key's condition (for a closing line, what follows the `}`; `.*` when nothing).
    pub cond: Cond,
    /// `if`/`and`/`or` conditions from the value.
    pub chain: Vec<(Word, Cond)>,
    /// The value after the chain: `{`, `echo ...`, or `target;name=value...`.
    pub rest: String,
    /// The value is `{` or `...={`: opens a block.
    pub opens: bool,
    /// `rest` substitutes a parameter that no condition reads (`billid` in a URL): a decision
    /// through this line depends on more than the cache key and is not cached.
    pub reads_unkeyed: bool,
}

/// A named section of rules.
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub name: String,
    pub lines: Vec<Line>,
    /// Runs of plain prefix rules, by the index of their first line.
    pub segments: hashbrown::HashMap<usize, PrefixIndex>,
}

/// A compiled route file. Immutable; a new file makes a new table with a new version.
#[derive(Clone, Debug)]
pub struct RouteTable {
    pub version: u64,
    pub file: String,
    pub options: Options,
    pub contexts: HashMap<String, Context>,
    /// `[$init]` and `[$once]`: global variables to start with.
    pub init_vars: Vec<(String, String)>,
    /// Every message parameter the table's conditions read (`${name}` in keys and in
    /// `if`/`and`/`or`), besides called and caller: with them, the key of a cached decision.
    pub reads: Vec<String>,
    pub warnings: Vec<RouteError>,
}

/// Words the action of a line may start with (after substitution).
pub const KEYWORDS: &[&str] = &[
    "return", "goto", "jump", "@goto", "@jump", "include", "call", "@include", "@call", "match",
    "newmatch", "noop", "rename", "retval", "msleep", "echo", "output", "debug", "dispatch",
    "enqueue",
];

struct Loader<'a> {
    file: &'a str,
    options: Options,
    errors: Vec<RouteError>,
    warnings: Vec<RouteError>,
}

impl Loader<'_> {
    fn err(&mut self, line: usize, message: impl Into<String>) {
        self.errors.push(RouteError {
            file: self.file.to_string(),
            line,
            message: message.into(),
        });
    }

    fn warn(&mut self, line: usize, message: impl Into<String>) {
        self.warnings.push(RouteError {
            file: self.file.to_string(),
            line,
            message: message.into(),
        });
    }

    fn regex(&mut self, line: usize, pattern: &str, what: &str) -> Option<Regex> {
        match posix::translate(pattern, self.options.extended, self.options.insensitive)
            .and_then(|r| Regex::new(&r).map_err(|e| one_line(&e.to_string())))
        {
            Ok(r) => Some(r),
            Err(e) => {
                self.err(line, format!("{what} {pattern:?}: {e}"));
                None
            }
        }
    }

    /// Parses a key (or a condition of a chain): `regex`, `${name}regex`, `$(func)regex`.
    fn cond(&mut self, line: usize, text: &str) -> Option<Cond> {
        let text = text.trim();
        let (subject, mut pattern) = if let Some(r) = text.strip_prefix("${") {
            let Some(end) = r.find('}') else {
                self.err(line, format!("{text:?}: ${{ without its closing }}"));
                return None;
            };
            let inner = r[..end].trim();
            let (name, default) = match inner.split_once('$') {
                Some((n, d)) => (n.trim(), Some(d.to_string())),
                None => (inner, None),
            };
            if name.is_empty() {
                self.err(line, format!("{text:?}: empty parameter name in ${{}}"));
                return None;
            }
            (
                Subject::Param {
                    name: name.to_string(),
                    default,
                },
                r[end + 1..].trim().to_string(),
            )
        } else if let Some(r) = text.strip_prefix("$(") {
            let Some(end) = r.find(')') else {
                self.err(line, format!("{text:?}: $( without its closing )"));
                return None;
            };
            self.check_functions(line, &text[..end + 3]);
            (
                Subject::Func(format!("$({})", &r[..end])),
                r[end + 1..].trim().to_string(),
            )
        } else {
            (Subject::Match, text.to_string())
        };
        if subject != Subject::Match {
            if pattern.is_empty() {
                pattern = self.options.default_rule.clone();
            } else if pattern == "^" {
                // `${x}^`: the default rule with its negation flipped, as Yate does.
                let d = &self.options.default_rule;
                pattern = match d.strip_suffix('^') {
                    Some(p) => p.to_string(),
                    None => format!("{d}^"),
                };
            }
        }
        let negate = pattern.ends_with('^') && !pattern.ends_with("\\^");
        let body = if negate {
            &pattern[..pattern.len() - 1]
        } else {
            &pattern[..]
        };
        let regex = self.regex(line, body, "regex")?;
        Some(Cond {
            subject,
            regex,
            negate,
            source: text.to_string(),
            captures: true,
        })
    }

    /// Warns about `$(name,...)` calls regexroute does not have here.
    fn check_functions(&mut self, line: usize, text: &str) {
        let mut rest = text;
        while let Some(at) = rest.find("$(") {
            let Some(end) = rest[at + 2..].find(')') else {
                self.err(line, "$( without its closing )");
                return;
            };
            let call = rest[at + 2..at + 2 + end].trim();
            let (name, args) = super::subst::split_call(call);
            let known = super::subst::FUNCTIONS.contains(&name)
                || (args.is_none()
                    && (name.starts_with("++") || name.starts_with("--") || !name.contains(' ')));
            if !known {
                // Yate has engine functions ($(config,...), $(message,...)) the gateway does
                // not: as in Yate for a function it lacks, the call gives an empty string.
                self.warn(
                    line,
                    format!("unknown function $({call}): the gateway does not have it; it gives an empty string"),
                );
            }
            rest = &rest[at + 2 + end + 1..];
        }
    }

    fn line(&mut self, file_line: usize, key: &str, value: &str) -> Option<Line> {
        let key = key.trim();
        let value = value.trim();
        let (closes, cond_text) = match key.strip_prefix('}') {
            Some(r) => (true, if r.trim().is_empty() { ".*" } else { r }),
            None => (false, key),
        };
        let cond = self.cond(file_line, cond_text)?;
        // The chain: `if|and|or COND =` repeated.
        let mut chain = Vec::new();
        let mut rest = value;
        loop {
            let word = [("if", Word::If), ("and", Word::And), ("or", Word::Or)]
                .into_iter()
                .find(|(w, _)| {
                    rest.strip_prefix(w)
                        .is_some_and(|r| r.starts_with([' ', '\t']))
                });
            let Some((w, word)) = word else { break };
            let after = rest[w.len()..].trim_start();
            let Some(eq) = after.find('=') else {
                self.err(
                    file_line,
                    format!("{w:?} condition without its `=`: {value:?}"),
                );
                return None;
            };
            let text = after[..eq].trim();
            if text.is_empty() {
                self.err(file_line, format!("empty {w:?} condition"));
                return None;
            }
            chain.push((word, self.cond(file_line, text)?));
            rest = after[eq + 1..].trim_start();
        }
        let opens = value == "{"
            || (value.ends_with('{') && value[..value.len() - 1].trim_end().ends_with('='));
        let opens = opens || rest == "{";
        for kw in ["dispatch", "enqueue", "rename", "msleep"] {
            if first_word(rest) == kw {
                self.warnings.push(RouteError {
                    file: self.file.to_string(),
                    line: file_line,
                    message: format!("{kw:?} is a Yate engine action the gateway does not perform; the line does nothing"),
                });
            }
        }
        self.check_functions(file_line, rest);
        Some(Line {
            file_line,
            key: key.to_string(),
            value: value.to_string(),
            closes,
            cond,
            chain,
            rest: rest.to_string(),
            opens,
            reads_unkeyed: false,
        })
    }
}

/// The first whitespace-separated word.
pub fn first_word(s: &str) -> &str {
    s.split_whitespace().next().unwrap_or("")
}

fn boolean(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "enable" | "t" => Some(true),
        "false" | "no" | "off" | "disable" | "f" => Some(false),
        _ => None,
    }
}

/// Collects the `${name}` names in a text.
/// The regex crate's multi-line error (pattern, caret, `error: ...`) as its last line: the
/// pattern is already in our message.
fn one_line(e: &str) -> String {
    let last = e.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(e);
    last.trim().trim_start_matches("error: ").to_string()
}

/// The text refers to a capture (`\0`..`\9`).
fn uses_captures(text: &str) -> bool {
    text.as_bytes()
        .windows(2)
        .any(|w| w[0] == b'\\' && w[1].is_ascii_digit())
}

fn param_names(text: &str, out: &mut Vec<String>) {
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        let after = &rest[at + 2..];
        let Some(end) = after.find('}') else { return };
        let inner = after[..end].trim();
        let name = inner.split('$').next().unwrap_or("").trim();
        if !name.is_empty() && !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
        rest = &after[end + 1..];
    }
}

impl RouteTable {
    /// Compiles a route file's text. `file` names it in messages; `version` is the table's.
    pub fn load(file: &str, text: &str, version: u64) -> Result<RouteTable, Vec<RouteError>> {
        let ini = Ini::parse(text);
        let prio = ini
            .sections_named("priorities")
            .flat_map(|s| s.entries.iter())
            .collect::<Vec<_>>();
        let get = |k: &str| {
            prio.iter()
                .find(|e| e.key == k)
                .and_then(|e| e.value.clone())
        };
        let mut l = Loader {
            file,
            options: Options {
                extended: get("extended").and_then(|v| boolean(&v)).unwrap_or(false),
                insensitive: get("insensitive")
                    .and_then(|v| boolean(&v))
                    .unwrap_or(false),
                prerouteall: get("prerouteall")
                    .and_then(|v| boolean(&v))
                    .unwrap_or(false),
                maxdepth: get("maxdepth")
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(5usize)
                    .clamp(5, 100),
                default_rule: get("defaultrule").unwrap_or_else(|| DEFAULT_RULE.to_string()),
            },
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        if l.options.extended && get("defaultrule").is_none() {
            l.warnings.push(RouteError {
                file: file.to_string(),
                line: 0,
                message: "extended=yes keeps the basic-syntax default rule; set defaultrule for ${param} keys without a regex".into(),
            });
        }
        let mut contexts: HashMap<String, Context> = HashMap::new();
        let mut init_vars = Vec::new();
        let mut reads = Vec::new();
        for s in &ini.sections {
            match s.name.as_str() {
                "priorities" => continue,
                "$init" | "$once" => {
                    for e in &s.entries {
                        init_vars.push((e.key.clone(), e.value.clone().unwrap_or_default()));
                    }
                    continue;
                }
                "extra" => {
                    l.warnings.push(RouteError {
                        file: file.to_string(),
                        line: s.line,
                        message: "[extra] installs Yate message handlers; the gateway routes messages only, ignored".into(),
                    });
                    continue;
                }
                "" => {
                    for e in &s.entries {
                        l.warn(e.line, "rule outside any [section]: never used");
                    }
                    continue;
                }
                _ => {}
            }
            let ctx = contexts.entry(s.name.clone()).or_insert_with(|| Context {
                name: s.name.clone(),
                ..Context::default()
            });
            let mut depth = 0usize;
            let mut lines = Vec::with_capacity(s.entries.len());
            for e in &s.entries {
                let value = e.value.clone().unwrap_or_default();
                if e.key.is_empty() {
                    continue;
                }
                let Some(line) = l.line(e.line, &e.key, &value) else {
                    continue;
                };
                param_names(&line.cond.source, &mut reads);
                for (_, c) in &line.chain {
                    param_names(&c.source, &mut reads);
                }
                if line.closes {
                    if depth == 0 {
                        // Yate loads it; at run time it closes nothing.
                        l.warn(e.line, "`}` closes no open block");
                    }
                    depth = depth.saturating_sub(1);
                }
                if line.opens {
                    depth += 1;
                    if depth == MAX_BLOCKS + 1 {
                        l.warn(
                            e.line,
                            format!("blocks nested deeper than {MAX_BLOCKS}: a message that reaches this line is not routed by this context (as in Yate)"),
                        );
                    }
                }
                lines.push(line);
            }
            if depth > 0 {
                let last = s.entries.last().map_or(s.line, |e| e.line);
                l.warn(
                    last,
                    format!(
                        "[{}]: {depth} block(s) opened with `{{` are never closed (they end with the section)",
                        s.name
                    ),
                );
            }
            ctx.lines.extend(lines);
        }
        // goto/include to a context named literally should exist (Yate loads the file and
        // the line does nothing: a warning, not an error).
        let names: Vec<String> = contexts.keys().cloned().collect();
        let mut named: Vec<String> = vec!["default".into(), "contexts".into()];
        let mut dynamic = false;
        if let Some(c) = contexts.get("contexts") {
            for line in &c.lines {
                let target = line.rest.split(';').next().unwrap_or("").trim();
                dynamic |= target.contains(['$', '\\']);
                named.push(target.to_string());
            }
        }
        for ctx in contexts.values() {
            for line in &ctx.lines {
                let target = line.rest.split(';').next().unwrap_or("").trim();
                let mut words = target.split_whitespace();
                let (Some(kw), Some(arg)) = (words.next(), words.next()) else {
                    continue;
                };
                if !matches!(kw, "goto" | "jump" | "include" | "call") {
                    continue;
                }
                if arg.contains(['$', '\\']) {
                    dynamic = true;
                } else if !names.iter().any(|n| n == arg) {
                    l.warnings.push(RouteError {
                        file: file.to_string(),
                        line: line.file_line,
                        message: format!(
                            "{kw} {arg}: there is no [{arg}] section; the line routes nowhere"
                        ),
                    });
                }
                named.push(arg.to_string());
            }
        }
        // A section nothing can reach is most likely a rule that starts with `[`: Yate (and
        // so the gateway) reads such a line as a section header.
        if !dynamic {
            for s in &ini.sections {
                let n = s.name.as_str();
                if matches!(n, "priorities" | "$init" | "$once" | "extra" | "")
                    || named.iter().any(|m| m == n)
                {
                    continue;
                }
                named.push(n.to_string()); // one warning per name

                l.warnings.push(RouteError {
                    file: file.to_string(),
                    line: s.line,
                    message: format!(
                        "[{n}] is never used: no [contexts] rule, include or goto names it (a rule \
                         that starts with `[` is read as a section header: write ^[...] instead)"
                    ),
                });
            }
        }
        if !l.errors.is_empty() {
            l.errors.sort_by_key(|e| e.line);
            return Err(l.errors);
        }
        for ctx in contexts.values_mut() {
            for line in &mut ctx.lines {
                let captures = uses_captures(&line.rest);
                line.cond.captures = captures;
                for (_, c) in &mut line.chain {
                    c.captures = captures;
                }
                let mut names = Vec::new();
                param_names(&line.rest, &mut names);
                line.reads_unkeyed = names
                    .iter()
                    .any(|n| n != "called" && n != "caller" && !reads.contains(n));
            }
            // The index reads keys as basic syntax (`^+\?44`): extended files are scanned.
            if !l.options.extended {
                ctx.segments = super::prefix::segments(&ctx.lines, l.options.insensitive);
            }
        }
        reads.retain(|n| n != "called" && n != "caller");
        l.warnings.sort_by_key(|w| w.line);
        Ok(RouteTable {
            version,
            file: file.to_string(),
            options: l.options,
            contexts,
            init_vars,
            reads,
            warnings: l.warnings,
        })
    }
}

impl RouteTable {
    /// Targets written literally (`smppclient/ID`, `smppserver/ID`), with their file lines:
    /// for checking against the configured links and accounts.
    pub fn literal_targets(&self) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for ctx in self.contexts.values() {
            for line in &ctx.lines {
                let target = line.rest.split(';').next().unwrap_or("").trim();
                if (target.starts_with("smppclient/") || target.starts_with("smppserver/"))
                    && !target.contains(['$', '\\', ' '])
                {
                    out.push((line.file_line, target.to_string()));
                }
            }
        }
        out.sort();
        out
    }

    /// One line for `smppgw check`: contexts, rules, indexed prefix rules, parameters read.
    pub fn summary(&self) -> String {
        let mut names: Vec<&str> = self.contexts.keys().map(String::as_str).collect();
        names.sort_unstable();
        let rules: usize = self.contexts.values().map(|c| c.lines.len()).sum();
        let indexed: usize = self
            .contexts
            .values()
            .flat_map(|c| c.segments.values())
            .map(|s| s.end - s.start)
            .sum();
        let mut reads = self.reads.clone();
        reads.sort_unstable();
        format!(
            "routes: {} with {rules} rule(s) in {} ({indexed} in prefix indexes); rules read {}\n",
            self.file,
            names
                .iter()
                .map(|n| format!("[{n}]"))
                .collect::<Vec<_>>()
                .join(" "),
            if reads.is_empty() {
                "called and caller only".to_string()
            } else {
                format!("called, caller, {}", reads.join(", "))
            }
        )
    }
}
