//! The INI dialect of YateSMSC's configuration files, lexed with line numbers.
//!
//! What Yate accepts, and so what we accept:
//! - a line whose first non-blank character is `;` is a comment (there are no trailing
//!   comments: `;` inside a value is data, as in route parameters `=;retries=10`);
//! - `[name]` opens a section; the same name may appear again, and each occurrence is kept,
//!   in file order (the route file joins them; `[listenerserver NAME]` uses the name's words);
//! - `key=value` splits at the first `=`; key and value are trimmed; a line without `=` is a
//!   key with no value (route files use `}` that way);
//! - blank lines are ignored; `\r\n` line ends are accepted.
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
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let t = raw.trim();
            if t.is_empty() || t.starts_with(';') {
                continue;
            }
            if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                ini.sections.push(Section {
                    name: name.trim().to_string(),
                    line,
                    entries: Vec::new(),
                });
                continue;
            }
            if ini.sections.is_empty() {
                ini.sections.push(Section {
                    name: String::new(),
                    line: 0,
                    entries: Vec::new(),
                });
            }
            let (key, value) = match t.split_once('=') {
                Some((k, v)) => (k.trim_end(), Some(v.trim_start().to_string())),
                None => (t, None),
            };
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
