//! The INI dialect of YateSMSC's configuration files, lexed with line numbers.
//!
//! What Yate accepts, and so what we accept:
//! - a line whose first non-blank character is `;` is a comment (there are no trailing
//!   comments: `;` inside a value is data, as in route parameters `=;retries=10`);
//! - `[name]` opens a section; the name ends at the first `]` (anything after it is ignored);
//!   the same name may appear again, and each occurrence is kept, in file order (the route
//!   file joins them; `[listenerserver NAME]` uses the name's words); a `[` line without `]`
//!   or with an empty name is skipped;
//! - `key=value` splits at the first `=`; key and value are trimmed; a line without `=` is a
//!   key with no value (route files use `}` that way); a line with no key (`=x`) is skipped;
//!   a value ending in `\` continues on the next line (the backslash goes);
//! - blank lines are ignored; `\r\n` line ends and a leading UTF-8 BOM are accepted.
//!
//! Every item keeps its 1-based line number so that each error can name `file:line`.

/// One `key=value` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    /// `None` for a line without `=`.
    pub value: Option<String>,
    pub line: usize,
}

/// One occurrence of a section, with its entries in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub line: usize,
    pub entries: Vec<Entry>,
}

impl Section {
    /// The last value of `key` in this section (later lines win, as in Yate).
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.key == key)
    }
}

/// A lexed file: entries before the first section header go to a section named "" at line 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ini {
    pub sections: Vec<Section>,
}

impl Ini {
    pub fn parse(text: &str) -> Ini {
        let mut ini = Ini::default();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = text.lines().enumerate();
        while let Some((i, raw)) = lines.next() {
            let line = i + 1;
            let t = raw.trim();
            if t.is_empty() || t.starts_with(';') {
                continue;
            }
            if let Some(rest) = t.strip_prefix('[') {
                // The name ends at the first `]`; what follows is ignored (`[default] ; main`).
                // A `[` line without `]`, or with an empty name, is skipped, as Yate does.
                if let Some((name, _)) = rest.split_once(']') {
                    let name = name.trim();
                    if !name.is_empty() {
                        ini.sections.push(Section {
                            name: name.to_string(),
                            line,
                            entries: Vec::new(),
                        });
                    }
                }
                continue;
            }
            let (key, value) = match t.split_once('=') {
                Some((k, v)) => (k.trim_end(), Some(v.trim_start().to_string())),
                None => (t, None),
            };
            if key.is_empty() {
                // `=value`: Yate skips lines without a key.
                continue;
            }
            let value = value.map(|mut v| {
                // A value ending in `\` goes on in the next line.
                while v.ends_with('\\') {
                    v.pop();
                    match lines.next() {
                        Some((_, more)) => v.push_str(more.trim_start()),
                        None => break,
                    }
                }
                v.trim().to_string()
            });
            if ini.sections.is_empty() {
                ini.sections.push(Section {
                    name: String::new(),
                    line: 0,
                    entries: Vec::new(),
                });
            }
            if let Some(s) = ini.sections.last_mut() {
                s.entries.push(Entry {
                    key: key.to_string(),
                    value,
                    line,
                });
            }
        }
        ini
    }

    /// Every occurrence of sections with this name, in file order.
    pub fn sections_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
        self.sections.iter().filter(move |s| s.name == name)
    }

    /// The first occurrence of a section.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_end_at_their_bracket_and_values_continue_after_a_backslash() {
        let ini = Ini::parse(
            "\u{feff}[default] ; the main context\n=ignored\n[\n[ ]\n[broken\n\
             a=one \\\n   two \\\n three\nb=c\n",
        );
        assert_eq!(ini.sections.len(), 1);
        let s = &ini.sections[0];
        assert_eq!((s.name.as_str(), s.line), ("default", 1));
        assert_eq!(s.entries.len(), 2, "{:?}", s.entries);
        assert_eq!(s.entries[0].key, "a");
        assert_eq!(s.entries[0].value.as_deref(), Some("one two three"));
        assert_eq!(s.entries[0].line, 6);
        assert_eq!((s.entries[1].key.as_str(), s.entries[1].line), ("b", 9));
    }

    #[test]
    fn sections_repeat_values_keep_semicolons_and_lines_are_numbered() {
        let ini = Ini::parse(
            "; comment\n[default]\n${module}smppserver=;retries=10\r\n\n[default]\n  key = a=b \n}\n",
        );
        assert_eq!(ini.sections.len(), 2);
        let first = &ini.sections[0];
        assert_eq!((first.name.as_str(), first.line), ("default", 2));
        assert_eq!(first.entries[0].key, "${module}smppserver");
        assert_eq!(first.entries[0].value.as_deref(), Some(";retries=10"));
        assert_eq!(first.entries[0].line, 3);
        let second = &ini.sections[1];
        assert_eq!(second.entries[0].key, "key");
        assert_eq!(second.entries[0].value.as_deref(), Some("a=b"));
        assert_eq!(
            second.entries[1],
            Entry {
                key: "}".into(),
                value: None,
                line: 7
            }
        );
        assert_eq!(ini.sections_named("default").count(), 2);
    }
}
