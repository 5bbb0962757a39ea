//! Editing the text of an INI file while keeping what the edit does not touch byte for byte:
//! comments, blank lines, the order of sections and keys, a leading UTF-8 BOM and the line
//! ends (new lines use `\r\n` when the text has any, `\n` otherwise).
//!
//! The text is cut into logical lines exactly as [`super::ini::Ini::parse`] reads it (a value
//! ending in `\` takes the next line with it), so an entry spread over several lines is
//! replaced or removed as a whole. Section names match after their whitespace is normalised
//! (`[listenerserver   a]` is `listenerserver a`); keys match exactly after trimming. The
//! entries before the first header (the section "") are never edited.
//!
//! Nothing here reads or writes files: each function takes a text and returns the new one.

/// What one logical line is, as the lexer in `ini` sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Blank,
    Comment,
    /// `[name]`, with the name's words joined by one space.
    Header(String),
    /// `key=value` or `key`, maybe continued over several lines. `dangling` when the text ends
    /// while the value still asks for a next line (a line added after it would join it).
    Entry {
        key: String,
        dangling: bool,
    },
    /// A line the lexer skips: `[` without `]` or with an empty name, or `=value`.
    Other,
}

/// One logical line: its kind and the physical lines `start..end` it covers.
struct Item {
    kind: Kind,
    start: usize,
    end: usize,
}

/// What happens to one logical line when the text is written back.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Action {
    Keep,
    Remove,
    /// Replaced by this `key=value`, after the old line's indentation and before its line end.
    Replace(String),
}

/// A text cut into physical lines (each with its line end) and logical lines.
struct Doc<'a> {
    bom: &'static str,
    lines: Vec<&'a str>,
    items: Vec<Item>,
    eol: &'static str,
}

/// A physical line without its line end (as `str::lines` gives it).
fn content(line: &str) -> &str {
    match line.strip_suffix('\n') {
        Some(line) => line.strip_suffix('\r').unwrap_or(line),
        None => line,
    }
}

/// The words of a section name joined by one space.
fn normalise(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The normalised name, or `None` for a name no header could have (empty, or with `]`).
fn section_name(name: &str) -> Option<String> {
    let name = normalise(name);
    (!name.is_empty() && !name.contains(']')).then_some(name)
}

/// Ends the last line of `out` if it has no line end. A last line ending in a lone `\r` gets
/// a space first: `\r\n` would make the `\r` part of the line end and could let a `\` before
/// it continue the value.
fn end_line(out: &mut String, eol: &str) {
    if !out.ends_with('\n') {
        if out.ends_with('\r') {
            out.push(' ');
        }
        out.push_str(eol);
    }
}

/// The line ending new lines get: `\r\n` if the text has one anywhere, `\n` otherwise.
fn line_end(text: &str) -> &'static str {
    if text.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    }
}

impl<'a> Doc<'a> {
    /// Cuts the text into logical lines, following `Ini::parse` step by step.
    fn lex(text: &'a str) -> Doc<'a> {
        let (bom, body) = match text.strip_prefix('\u{feff}') {
            Some(body) => ("\u{feff}", body),
            None => ("", text),
        };
        let lines: Vec<&str> = body.split_inclusive('\n').collect();
        let mut items = Vec::new();
        let mut i = 0;
        while let Some(raw) = lines.get(i) {
            let t = content(raw).trim();
            let mut end = i + 1;
            let kind = if t.is_empty() {
                Kind::Blank
            } else if t.starts_with(';') {
                Kind::Comment
            } else if let Some(rest) = t.strip_prefix('[') {
                match rest.split_once(']') {
                    Some((name, _)) if !name.trim().is_empty() => Kind::Header(normalise(name)),
                    _ => Kind::Other,
                }
            } else {
                let (key, value) = match t.split_once('=') {
                    Some((k, v)) => (k.trim_end(), Some(v.trim_start())),
                    None => (t, None),
                };
                if key.is_empty() {
                    Kind::Other
                } else {
                    let mut dangling = false;
                    if let Some(value) = value {
                        // The same loop as the lexer's, so that `\\` endings count alike.
                        let mut v = value.to_string();
                        while v.ends_with('\\') {
                            v.pop();
                            match lines.get(end) {
                                Some(more) => {
                                    v.push_str(content(more).trim_start());
                                    end += 1;
                                }
                                None => {
                                    dangling = true;
                                    break;
                                }
                            }
                        }
                    }
                    Kind::Entry {
                        key: key.to_string(),
                        dangling,
                    }
                }
            };
            items.push(Item {
                kind,
                start: i,
                end,
            });
            i = end;
        }
        Doc {
            bom,
            lines,
            items,
            eol: line_end(text),
        }
    }

    /// Each occurrence of the section `name` as (index of its header, index of the next header
    /// or the end).
    fn occurrences(&self, name: &str) -> Vec<(usize, usize)> {
        let headers: Vec<usize> = (0..self.items.len())
            .filter(|&i| matches!(self.items[i].kind, Kind::Header(_)))
            .collect();
        headers
            .iter()
            .enumerate()
            .filter(|&(_, &h)| self.items[h].kind == Kind::Header(name.to_string()))
            .map(|(n, &h)| (h, headers.get(n + 1).copied().unwrap_or(self.items.len())))
            .collect()
    }

    fn is_blank(&self, i: usize) -> bool {
        self.items.get(i).is_some_and(|it| it.kind == Kind::Blank)
    }

    /// The text again with each logical line kept, removed or replaced, and the lines of
    /// `insert` (each followed by the line end) added after the logical line `at`.
    fn render(&self, actions: &[Action], at: Option<usize>, insert: &[String]) -> String {
        let mut out = String::with_capacity(self.lines.iter().map(|l| l.len()).sum::<usize>());
        out.push_str(self.bom);
        let body = out.len();
        for (i, item) in self.items.iter().enumerate() {
            let lines = self.lines.get(item.start..item.end).unwrap_or(&[]);
            let action = actions.get(i).unwrap_or(&Action::Keep);
            match action {
                Action::Keep => lines.iter().for_each(|l| out.push_str(l)),
                Action::Remove => {}
                Action::Replace(line) => {
                    let first = lines.first().map_or("", |l| content(l));
                    out.push_str(&first[..first.len() - first.trim_start().len()]);
                    out.push_str(line);
                    let last = lines.last().copied().unwrap_or("");
                    out.push_str(&last[content(last).len()..]);
                }
            }
            if at == Some(i) {
                if out.len() > body {
                    end_line(&mut out, self.eol);
                }
                let dangling = matches!(item.kind, Kind::Entry { dangling: true, .. });
                if dangling && *action == Action::Keep {
                    // A blank line ends the value, so that the new lines stay lines of their own.
                    out.push_str(self.eol);
                }
                for line in insert {
                    out.push_str(line);
                    out.push_str(self.eol);
                }
            }
        }
        out
    }
}

/// The text with a new section `[name]` holding `lines` at its end, after a blank line.
fn append(text: &str, name: &str, lines: &[String]) -> String {
    let eol = line_end(text);
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = text.to_string();
    if !body.is_empty() {
        end_line(&mut out, eol);
    }
    if !body.is_empty() && !body.lines().last().is_some_and(|l| l.trim().is_empty()) {
        out.push_str(eol);
    }
    for line in [format!("[{name}]")].iter().chain(lines) {
        out.push_str(line);
        out.push_str(eol);
    }
    out
}

/// The keys to change, trimmed, in the order they first appear, each with its last value
/// (`None`: remove). Keys that no entry line could hold (empty, with `=` or a line end, or
/// starting with `;` or `[`) are left out.
fn changes<'v>(
    set: impl Iterator<Item = (&'v str, Option<&'v str>)>,
) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for (key, value) in set {
        let key = key.trim();
        if key.is_empty() || key.contains(['=', '\n', '\r']) || key.starts_with([';', '[']) {
            continue;
        }
        if let Some(v) = value {
            debug_assert!(
                !v.contains(['\n', '\r']) && !v.trim_end().ends_with('\\'),
                "value of {key} has a line end or a trailing backslash: {v:?}"
            );
        }
        let value = value.map(str::to_string);
        match out.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => out.push((key.to_string(), value)),
        }
    }
    out
}

/// Applies `changes` to section `name`; with `put`, entries of keys not listed go too and a
/// missing section is added even with no keys.
fn edit_keys(text: &str, name: &str, changes: &[(String, Option<String>)], put: bool) -> String {
    let Some(name) = section_name(name) else {
        return text.to_string();
    };
    let line = |k: &str, v: &str| format!("{k}={v}");
    let doc = Doc::lex(text);
    let occurrences = doc.occurrences(&name);
    let Some(&(last_header, last_end)) = occurrences.last() else {
        let new: Vec<String> = changes
            .iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| line(k, v)))
            .collect();
        if new.is_empty() && !put {
            return text.to_string();
        }
        return append(text, &name, &new);
    };
    let mut actions = vec![Action::Keep; doc.items.len()];
    let mut written: Vec<&str> = Vec::new();
    for &(header, end) in &occurrences {
        for (i, item) in doc.items.iter().enumerate().take(end).skip(header + 1) {
            let Kind::Entry { key, .. } = &item.kind else {
                continue;
            };
            actions[i] = match changes.iter().find(|(k, _)| k == key) {
                Some((k, Some(v))) if !written.contains(&k.as_str()) => {
                    written.push(k);
                    Action::Replace(line(k, v))
                }
                Some(_) => Action::Remove,
                None if put => Action::Remove,
                None => Action::Keep,
            };
        }
    }
    let new: Vec<String> = changes
        .iter()
        .filter(|(k, _)| !written.contains(&k.as_str()))
        .filter_map(|(k, v)| v.as_deref().map(|v| line(k, v)))
        .collect();
    let at = (last_header + 1..last_end)
        .rev()
        .find(|&i| matches!(doc.items[i].kind, Kind::Entry { .. }))
        .unwrap_or(last_header);
    doc.render(&actions, Some(at), &new)
}

/// Replaces the keys of section `name` with exactly `keys` (in that order for new ones).
///
/// In every occurrence of the section, the first line of each listed key (in file order) is
/// rewritten as `key=value`, keeping its indentation; other lines of that key, and lines of
/// keys not listed, are removed. Comments and blank lines stay. Keys not in the file yet go
/// after the last entry of the last occurrence. A missing section is added at the end, after
/// a blank line. If a key is listed twice its last value counts.
pub fn put_section(text: &str, name: &str, keys: &[(&str, &str)]) -> String {
    let changes = changes(keys.iter().map(|&(k, v)| (k, Some(v))));
    edit_keys(text, name, &changes, true)
}

/// Sets (Some) or removes (None) individual keys of section `name`; other keys untouched.
///
/// A key that is set has its first line rewritten and its other lines removed, or is added
/// after the last entry of the last occurrence. A missing section is added at the end with
/// the keys that are set; if none is set the text comes back unchanged.
pub fn merge_keys(text: &str, name: &str, set: &[(&str, Option<&str>)]) -> String {
    let changes = changes(set.iter().copied());
    edit_keys(text, name, &changes, false)
}

/// Removes every occurrence of section `name` (header and its entries).
///
/// Each occurrence goes from its header up to the next header, except the comments (and the
/// blank lines between them) just before the next header, which usually describe it. Where a
/// cut would leave two blank lines in a row the blank lines after it go; where it reaches
/// the end of the text the blank lines before it go.
pub fn delete_section(text: &str, name: &str) -> String {
    let Some(name) = section_name(name) else {
        return text.to_string();
    };
    let doc = Doc::lex(text);
    let occurrences = doc.occurrences(&name);
    if occurrences.is_empty() {
        return text.to_string();
    }
    let n = doc.items.len();
    let mut cut = vec![false; n];
    for &(header, end) in &occurrences {
        let mut keep_from = end;
        if end < n {
            let mut i = end;
            while i > header + 1 && matches!(doc.items[i - 1].kind, Kind::Comment | Kind::Blank) {
                i -= 1;
                if doc.items[i].kind == Kind::Comment {
                    keep_from = i;
                }
            }
        }
        cut[header..keep_from].fill(true);
    }
    let mut remove = cut.clone();
    let mut start = 0;
    while start < n {
        if !cut[start] {
            start += 1;
            continue;
        }
        let mut end = start;
        while end < n && cut[end] {
            end += 1;
        }
        if end == n {
            let mut i = start;
            while i > 0 && doc.is_blank(i - 1) {
                i -= 1;
                remove[i] = true;
            }
        } else if start > 0 && doc.is_blank(start - 1) {
            let mut i = end;
            while i < n && !cut[i] && doc.is_blank(i) {
                remove[i] = true;
                i += 1;
            }
        }
        start = end;
    }
    let actions: Vec<Action> = remove
        .iter()
        .map(|&r| if r { Action::Remove } else { Action::Keep })
        .collect();
    doc.render(&actions, None, &[])
}

/// Whether the text has a section `name`.
pub fn has_section(text: &str, name: &str) -> bool {
    section_name(name).is_some_and(|name| !Doc::lex(text).occurrences(&name).is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ini::Ini;
    use proptest::collection::vec;
    use proptest::option;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    type Entries = Vec<(String, Option<String>)>;

    /// The sections other than `s` (name and entries, without line numbers) and the sorted
    /// entries of all `s` occurrences, as the loader's lexer reads the text.
    fn split(text: &str) -> (Vec<(String, Entries)>, Entries) {
        let (mut others, mut s) = (Vec::new(), Vec::new());
        for section in Ini::parse(text).sections {
            let entries = section.entries.into_iter().map(|e| (e.key, e.value));
            if section.name == "s" {
                s.extend(entries);
            } else {
                others.push((section.name, entries.collect()));
            }
        }
        s.sort();
        (others, s)
    }

    #[test]
    fn a_replaced_value_keeps_the_comments_around_it() {
        let text = "; top\n[general]\n; the port\n  port = 2775\n\nname=a\n; end\n[other]\nx=1\n";
        let out = put_section(text, "general", &[("port", "2776"), ("name", "a")]);
        assert_eq!(
            out,
            "; top\n[general]\n; the port\n  port=2776\n\nname=a\n; end\n[other]\nx=1\n"
        );
        let out = merge_keys(text, "general", &[("port", Some("1"))]);
        assert_eq!(out, text.replace("  port = 2775", "  port=1"));
    }

    #[test]
    fn put_section_removes_unlisted_keys_and_appends_new_ones_after_the_last_entry() {
        let text = "[s]\na=1\nb=2\n; about b\nc=3\n; trailing\n\n[t]\nd=4\n";
        let out = put_section(text, "s", &[("b", "20"), ("e", "5"), ("f", "6")]);
        assert_eq!(
            out,
            "[s]\nb=20\n; about b\ne=5\nf=6\n; trailing\n\n[t]\nd=4\n"
        );
        let out = put_section("[s]\n; nothing yet\n[t]\n", "s", &[("a", "1")]);
        assert_eq!(out, "[s]\na=1\n; nothing yet\n[t]\n");
        assert_eq!(put_section("[s]", "s", &[("a", "1")]), "[s]\na=1\n");
    }

    #[test]
    fn duplicate_sections_and_keys_keep_only_the_first_entry_of_each_key() {
        let text = "[s]\na=1\nb=1\n[t]\na=9\n[s]\na=2\nc=3\nb=2\n";
        let out = put_section(text, "s", &[("a", "x"), ("b", "y"), ("d", "z")]);
        assert_eq!(out, "[s]\na=x\nb=y\n[t]\na=9\n[s]\nd=z\n");
        let out = merge_keys(
            text,
            "s",
            &[("b", None), ("a", Some("x")), ("e", Some("5"))],
        );
        assert_eq!(out, "[s]\na=x\n[t]\na=9\n[s]\nc=3\ne=5\n");
    }

    #[test]
    fn continuation_lines_are_replaced_and_removed_as_a_whole() {
        let text = "[s]\n  a=one \\\n   two \\\n[t]\nb=x \\\ny\nc=3\n[u]\n";
        let out = put_section(text, "s", &[("a", "1"), ("c", "3")]);
        assert_eq!(out, "[s]\n  a=1\nc=3\n[u]\n");
        let out = merge_keys(text, "s", &[("b", None)]);
        assert_eq!(out, "[s]\n  a=one \\\n   two \\\n[t]\nc=3\n[u]\n");
        // A value still open at the end is ended by a blank line before new keys.
        let out = merge_keys("[s]\na=1 \\", "s", &[("b", Some("2"))]);
        assert_eq!(out, "[s]\na=1 \\\n\nb=2\n");
        assert_eq!(split(&out), split("[s]\na=1\nb=2\n"));
    }

    #[test]
    fn crlf_text_stays_crlf() {
        let text = "; c\r\n[s]\r\na=1\r\n";
        assert_eq!(
            put_section(text, "s", &[("a", "2"), ("b", "3")]),
            "; c\r\n[s]\r\na=2\r\nb=3\r\n"
        );
        assert_eq!(
            put_section(text, "t", &[("x", "1")]),
            "; c\r\n[s]\r\na=1\r\n\r\n[t]\r\nx=1\r\n"
        );
    }

    #[test]
    fn the_bom_is_kept() {
        let text = "\u{feff}[s]\na=1\n[t]\nb=2\n";
        assert_eq!(
            put_section(text, "s", &[("a", "2")]),
            "\u{feff}[s]\na=2\n[t]\nb=2\n"
        );
        assert_eq!(delete_section(text, "s"), "\u{feff}[t]\nb=2\n");
        assert_eq!(
            put_section("\u{feff}", "s", &[("a", "1")]),
            "\u{feff}[s]\na=1\n"
        );
        assert!(has_section(text, "s"));
    }

    #[test]
    fn a_missing_section_is_appended_after_a_blank_line() {
        let out = put_section("[s]\na=1", "t", &[("x", "1"), ("y", "2")]);
        assert_eq!(out, "[s]\na=1\n\n[t]\nx=1\ny=2\n");
        assert_eq!(put_section("[s]\n\n", "t", &[]), "[s]\n\n[t]\n");
        assert_eq!(put_section("", "t", &[("x", "1")]), "[t]\nx=1\n");
        let out = merge_keys("[s]\n", "t", &[("x", None), ("y", Some("2"))]);
        assert_eq!(out, "[s]\n\n[t]\ny=2\n");
        // Only removals for a missing section: nothing to write.
        assert_eq!(merge_keys("[s]\r\na=1", "t", &[("a", None)]), "[s]\r\na=1");
    }

    #[test]
    fn delete_section_keeps_the_comment_before_the_next_header() {
        let text = "[a]\nx=1\n\n[old]\ny=2\n\n; about b\n\n; more\n[b]\nz=3\n";
        assert_eq!(
            delete_section(text, "old"),
            "[a]\nx=1\n\n; about b\n\n; more\n[b]\nz=3\n"
        );
        let text = "[a]\nx=1\n\n[old]\ny=2\n\n[b]\n\n[old]\n; last\n";
        assert_eq!(delete_section(text, "old"), "[a]\nx=1\n\n[b]\n");
        assert_eq!(delete_section(text, "none"), text);
    }

    #[test]
    fn section_names_match_after_normalising_whitespace() {
        let text = "[listenerserver   a ]\nport=1\n";
        assert!(has_section(text, "listenerserver a"));
        assert!(!has_section(text, "listenerserver"));
        let out = put_section(text, " listenerserver\ta", &[("port", "2")]);
        assert_eq!(out, "[listenerserver   a ]\nport=2\n");
        assert_eq!(delete_section(text, "listenerserver a"), "");
    }

    #[test]
    fn entries_before_the_first_header_and_odd_names_are_left_alone() {
        let text = "a=1\n[s]\na=2\n";
        assert_eq!(put_section(text, "s", &[("b", "3")]), "a=1\n[s]\nb=3\n");
        for name in ["", "  ", "a]b"] {
            assert_eq!(put_section(text, name, &[("a", "9")]), text);
            assert_eq!(delete_section(text, name), text);
            assert!(!has_section(text, name));
        }
    }

    /// Lines the texts of the property are made of: headers, odd lines, continuations.
    const LINES: &[&str] = &[
        "[s]", "[ s ]", "[t]", "[broken", "a=1", "  b = 2", "a=x \\", "c=\\", "; c", "", "=x", "}",
        "d=\\\r",
    ];

    fn text() -> impl Strategy<Value = String> {
        let picks = vec(0..LINES.len(), 0..14);
        (any::<bool>(), any::<bool>(), picks, any::<bool>()).prop_map(|(bom, crlf, picks, end)| {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = String::from(if bom { "\u{feff}" } else { "" });
            for (i, &p) in picks.iter().enumerate() {
                text.push_str(LINES[p]);
                if end || i + 1 < picks.len() {
                    text.push_str(eol);
                }
            }
            text
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn edits_give_the_lexer_exactly_what_was_asked_and_leave_the_rest(
            text in text(),
            set in vec((0..4usize, option::of(0..3usize)), 0..5),
        ) {
            let set: Vec<(&str, Option<&str>)> = set
                .iter()
                .map(|&(k, v)| (["a", "b", "c", "new"][k], v.map(|v| ["1", "x y", ""][v])))
                .collect();
            let (others, before) = split(&text);
            let put: Vec<(&str, &str)> = set.iter().filter_map(|&(k, v)| Some((k, v?))).collect();
            let last: BTreeMap<&str, Option<&str>> = set.iter().copied().collect();
            let owned = |k: &str, v: &str| (k.to_string(), Some(v.to_string()));

            let out = put_section(&text, "s", &put);
            let want: BTreeMap<&str, &str> = put.iter().copied().collect();
            let want: Vec<_> = want.into_iter().map(|(k, v)| owned(k, v)).collect();
            prop_assert_eq!(split(&out), (others.clone(), want), "{:?} -> {:?}", text, out);
            prop_assert_eq!(put_section(&out, "s", &put), out);

            let out = merge_keys(&text, "s", &set);
            let mut want: Vec<_> = before.into_iter().filter(|e| !last.contains_key(e.0.as_str())).collect();
            want.extend(last.iter().filter_map(|(&k, &v)| Some(owned(k, v?))));
            want.sort();
            prop_assert_eq!(split(&out), (others.clone(), want), "{:?} -> {:?}", text, out);

            let out = delete_section(&text, "s");
            prop_assert!(!has_section(&out, "s"));
            prop_assert_eq!(split(&out), (others, vec![]), "{:?} -> {:?}", text, out);
        }
    }
}
