//! Evaluating a message against a table, with regexroute's semantics: context selection
//! through `[contexts]`, lines top to bottom, block states, condition chains, actions, and a
//! trail of what matched for the explain tool.

use std::borrow::Cow;

use super::subst::{self, Captures, Env, Params};
use super::table::{first_word, Cond, Context, Line, RouteTable, Subject, Word, MAX_BLOCKS};

/// A change a decision makes to the message's parameters, in order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ParamChange {
    Set(String, String),
    Clear(String),
}

/// One step of the trail: a line that matched, and what it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub context: String,
    pub line: usize,
    pub key: String,
    pub value: String,
    pub what: String,
}

/// The outcome of routing one message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// A rule produced a target.
    pub handled: bool,
    /// The target as produced (empty when not handled): `smppclient/ID`, `smppserver/ID`,
    /// `http`, a URL, `-` (reject), or another module's name.
    pub target: String,
    /// The context routing ran in.
    pub context: String,
    /// What the rules did to the parameters, in order.
    pub changes: Vec<ParamChange>,
    pub trail: Vec<Step>,
    /// False when the evaluation used chance or shared state (`$(random)`, variables).
    pub cacheable: bool,
}

impl Decision {
    /// Applies the changes to a parameter list.
    pub fn apply(&self, p: &mut Params) {
        for c in &self.changes {
            match c {
                ParamChange::Set(n, v) => p.set(n, v),
                ParamChange::Clear(n) => p.clear(n),
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    Run,
    Skip,
    Done,
}

struct Run<'a, 'e> {
    table: &'a RouteTable,
    params: Params,
    changes: Vec<ParamChange>,
    trail: Vec<Step>,
    env: &'a mut Watch<'e>,
    ret: String,
    caps: Captures,
    explain: bool,
}

/// Wraps an environment to note impurity.
struct Watch<'a> {
    inner: &'a mut dyn Env,
    impure: bool,
}

impl Env for Watch<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.inner.var(name)
    }
    fn set_var(&mut self, name: &str, value: &str) {
        self.impure = true;
        self.inner.set_var(name, value)
    }
    fn random_digit(&mut self) -> u8 {
        self.impure = true;
        self.inner.random_digit()
    }
    fn impure(&mut self) {
        self.impure = true;
    }
}

fn to_bool(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "true" | "yes" | "on" | "enable" | "t"
    )
}

impl Run<'_, '_> {
    fn subject<'s>(&'s mut self, c: &'s Cond, match_str: &'s str) -> Cow<'s, str> {
        match &c.subject {
            Subject::Match => Cow::Borrowed(match_str.trim()),
            Subject::Param { name, default } => match self.params.get(name) {
                Some(v) => Cow::Borrowed(v.trim()),
                None => Cow::Borrowed(default.as_deref().unwrap_or("").trim()),
            },
            Subject::Func(t) => Cow::Owned(
                subst::functions(&subst::params(t, &self.params), self.env)
                    .trim()
                    .to_string(),
            ),
        }
    }

    fn test(&mut self, c: &Cond, match_str: &str) -> bool {
        if !c.captures {
            // The line's value uses no capture: a plain match is enough.
            let hit = {
                let s = self.subject(c, match_str);
                c.regex.is_match(&s)
            };
            if hit != c.negate {
                self.caps = Captures::default();
                return true;
            }
            return false;
        }
        let caps = {
            let s = self.subject(c, match_str);
            c.regex.captures(&s).map(|m| Captures::from_regex(&m))
        };
        match caps {
            Some(m) if !c.negate => {
                self.caps = m;
                true
            }
            Some(_) => {
                self.caps = Captures::default();
                false
            }
            None if c.negate => {
                self.caps = Captures::default();
                true
            }
            None => false,
        }
    }

    /// The key and its chain; `Some(rest)` when the line applies.
    fn chain<'l>(&mut self, line: &'l Line, match_str: &str) -> Option<&'l str> {
        let mut ok = self.test(&line.cond, match_str);
        for (word, cond) in &line.chain {
            match (ok, word) {
                (true, Word::Or) => return Some(&line.rest),
                (true, _) => ok = self.test(cond, match_str),
                (false, Word::Or) => ok = self.test(cond, match_str),
                (false, _) => return None,
            }
        }
        ok.then_some(&line.rest)
    }

    fn step(&mut self, ctx: &Context, line: &Line, what: String) {
        if self.explain {
            self.trail.push(Step {
                context: ctx.name.clone(),
                line: line.file_line,
                key: line.key.clone(),
                value: line.value.clone(),
                what,
            });
        }
    }

    fn set(&mut self, name: &str, value: &str) {
        if let Some(var) = name.strip_prefix('$') {
            self.env.set_var(var, value);
        } else {
            self.params.set(name, value);
            self.changes
                .push(ParamChange::Set(name.to_string(), value.to_string()));
        }
    }

    fn clear(&mut self, name: &str) {
        if let Some(var) = name.strip_prefix('$') {
            self.env.set_var(var, "");
        } else {
            self.params.clear(name);
            self.changes.push(ParamChange::Clear(name.to_string()));
        }
    }

    /// setMessage: substitutes and applies `;name=value` pieces; returns the target.
    fn set_message(&mut self, rest: &str) -> String {
        let mut pieces = rest.split(';');
        let target = pieces.next().unwrap_or("");
        let t = target.trim_start();
        let target = if t.starts_with("http://") || t.starts_with("https://") {
            subst::substitute_url(target, &self.caps, &self.params, self.env)
        } else {
            subst::substitute(target, &self.caps, &self.params, self.env)
        }
        .trim()
        .to_string();
        for piece in pieces {
            let p = subst::substitute(piece, &self.caps, &self.params, self.env);
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            match p.find('=') {
                Some(i) if i > 0 => {
                    let (n, v) = (p[..i].trim().to_string(), p[i + 1..].trim().to_string());
                    self.set(&n, &v);
                }
                _ => self.clear(p),
            }
        }
        target
    }

    /// Runs one context; true when it handled the message (a target, or `return true`).
    fn context(&mut self, name: &str, match_str: &mut String, depth: usize) -> bool {
        if depth > self.table.options.maxdepth {
            return false;
        }
        let Some(ctx) = self.table.contexts.get(name) else {
            return false;
        };
        let mut stack: Vec<Block> = Vec::new();
        let mut i = 0;
        while i < ctx.lines.len() {
            let mut block_this = stack.last().copied().unwrap_or(Block::Run);
            // A run of prefix rules: one index lookup instead of a regex per line.
            if let (Some(seg), false) = (ctx.segments.get(&i), self.explain) {
                if block_this != Block::Run {
                    i = seg.end;
                    continue;
                }
                match seg.lookup(match_str.trim()) {
                    Some(k) => i = k,
                    None => {
                        i = seg.end;
                        continue;
                    }
                }
            }
            let line = &ctx.lines[i];
            i += 1;
            let mut block_last = Block::Skip;
            if line.closes {
                block_last = stack.pop().unwrap_or(Block::Skip);
                block_this = stack.last().copied().unwrap_or(Block::Run);
            }
            let evaluate = if line.opens {
                if stack.len() >= MAX_BLOCKS {
                    return false;
                }
                if block_this == Block::Run && block_last == Block::Skip {
                    stack.push(Block::Skip);
                    true
                } else {
                    stack.push(Block::Done);
                    false
                }
            } else {
                block_this == Block::Run && (!line.closes || block_last == Block::Skip)
            };
            if !evaluate {
                continue;
            }
            let Some(rest) = self.chain(line, match_str) else {
                continue;
            };
            if line.reads_unkeyed {
                self.env.impure();
            }
            if line.opens && rest == "{" {
                if let Some(top) = stack.last_mut() {
                    *top = Block::Run;
                }
                self.step(ctx, line, "enters the block".into());
                continue;
            }
            let word = first_word(rest);
            if matches!(word, "echo" | "output" | "debug") {
                let text = subst::substitute(rest, &self.caps, &self.params, self.env);
                self.step(ctx, line, format!("logs {:?}", text.trim()));
                continue;
            }
            if matches!(word, "dispatch" | "enqueue") {
                continue;
            }
            let target = self.set_message(rest);
            let mut words = target.splitn(2, char::is_whitespace);
            let kw = words.next().unwrap_or("");
            let arg = words.next().unwrap_or("").trim().to_string();
            match kw {
                "" => {
                    if line.closes && line.rest.is_empty() {
                        continue;
                    }
                    self.step(ctx, line, "sets parameters and goes on".into());
                }
                "noop" | "rename" | "msleep" => self.step(ctx, line, format!("{kw}: goes on")),
                "return" => {
                    let b = to_bool(&arg);
                    self.step(ctx, line, format!("returns {b}"));
                    return b;
                }
                "goto" | "jump" | "@goto" | "@jump" => {
                    self.step(ctx, line, format!("goes to [{arg}]"));
                    return self.context(&arg, match_str, depth + 1);
                }
                "include" | "call" | "@include" | "@call" => {
                    self.step(ctx, line, format!("includes [{arg}]"));
                    if self.context(&arg, match_str, depth + 1) {
                        return true;
                    }
                }
                "match" | "newmatch" => {
                    if !arg.is_empty() {
                        self.step(ctx, line, format!("matches {arg:?} from now on"));
                        *match_str = arg;
                    }
                }
                "retval" => {
                    self.step(ctx, line, format!("sets the return value {arg:?}"));
                    self.ret = arg;
                }
                _ => {
                    self.step(ctx, line, format!("routes to {target}"));
                    self.ret = target;
                    return true;
                }
            }
        }
        false
    }
}

impl RouteTable {
    /// Routes a message. `params` are its parameters (`called`, `caller`, `module`,
    /// `submit_info`, ...); `env` holds global variables and randomness. With `explain`, the
    /// trail records every line that matched (and the prefix index is bypassed, so that the
    /// trail is complete).
    pub fn route(&self, params: &Params, env: &mut dyn Env, explain: bool) -> Decision {
        let mut watch = Watch {
            inner: env,
            impure: false,
        };
        let mut decision = {
            let run = Run {
                table: self,
                params: params.clone(),
                changes: Vec::new(),
                trail: Vec::new(),
                env: &mut watch,
                ret: String::new(),
                caps: Captures::default(),
                explain,
            };
            run.route()
        };
        decision.cacheable = !watch.impure;
        decision
    }
}

impl Run<'_, '_> {
    fn route(mut self) -> Decision {
        // [contexts]: choose the context from the caller, unless the message names one.
        let caller = self.params.get("caller").unwrap_or("").to_string();
        if self.table.contexts.contains_key("contexts")
            && (self.table.options.prerouteall
                // An empty `context` counts as none (Yate's empty strings are null).
                || (self.params.get("context").is_none_or(str::is_empty) && !caller.is_empty()))
        {
            let mut m = caller;
            self.ret.clear();
            if self.context("contexts", &mut m, 0) {
                let ret = std::mem::take(&mut self.ret);
                if ret == "-" || ret == "error" {
                    return Decision {
                        handled: true,
                        target: ret,
                        context: "contexts".into(),
                        changes: self.changes,
                        trail: self.trail,
                        cacheable: true,
                    };
                }
                self.set("context", &ret);
            }
        }
        let context = match self.params.get("context") {
            None => "default".to_string(),
            Some(c) => c.to_string(),
        };
        let called = self.params.get("called").unwrap_or("").to_string();
        let mut handled = false;
        if !context.is_empty() && !called.trim().is_empty() {
            let mut m = called;
            self.ret.clear();
            handled = self.context(&context, &mut m, 0);
        }
        Decision {
            handled,
            target: if handled { self.ret } else { String::new() },
            context,
            changes: self.changes,
            trail: self.trail,
            cacheable: true,
        }
    }
}
