//! Reading TOML settings so that every mistake is found at once and told with its line
//! and key: the configuration file (`--config`, `stepline check-config`) and the older
//! files of one kind each (Temporal, Airflow and pushing sources, sign-in providers,
//! alerts), which are read the same way.

use serde::de::{DeserializeOwned, IntoDeserializer};
use std::fmt;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// One mistake in a settings file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based.
    pub line: usize,
    /// Where in the file: `server.listen`, `temporal[2]`, or empty for the file's syntax.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "line {}: {}", self.line, self.message)
        } else {
            write!(f, "line {}: {}: {}", self.line, self.key, self.message)
        }
    }
}

/// Every problem, one a line, each after `file` (`stepline.toml:12: server.listen: ...`).
pub fn report(file: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|problem| {
            let key = if problem.key.is_empty() {
                String::new()
            } else {
                format!(" {}:", problem.key)
            };
            format!("{file}:{}:{key} {}", problem.line, problem.message)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How secrets named by a file are found: `env` reads an environment variable.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The real environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A parsed settings file and the problems found in it so far.
pub struct Document<'a> {
    text: &'a str,
    root: DeTable<'a>,
    pub problems: Vec<Problem>,
}

impl<'a> Document<'a> {
    /// Parses `text`, recovering from syntax errors so that later ones are found too.
    pub fn parse(text: &'a str) -> Self {
        let (root, errors) = DeTable::parse_recoverable(text);
        let mut document = Self {
            text,
            root: root.into_inner(),
            problems: Vec::new(),
        };
        for error in errors {
            let span = error.span().unwrap_or(0..0);
            document.problem(span, "", error.message().trim().to_owned());
        }
        document
    }

    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    /// Records a problem at `span` of the text.
    pub fn problem(&mut self, span: std::ops::Range<usize>, key: &str, message: String) {
        let line = self.line_of(span.start);
        self.problems.push(Problem {
            line,
            key: key.to_owned(),
            message,
        });
    }

    /// The top-level entries, by key, each with the span of its key.
    pub fn entries(&self) -> Vec<(String, std::ops::Range<usize>, Spanned<DeValue<'a>>)> {
        self.root
            .iter()
            .map(|(key, value)| (key.get_ref().to_string(), key.span(), value.clone()))
            .collect()
    }

    /// The top-level value at `key`.
    pub fn get(&self, key: &str) -> Option<Spanned<DeValue<'a>>> {
        self.root.get(key).cloned()
    }

    /// Reads `value` as a `T`, or records why it is not one (at the part that is wrong).
    pub fn read<T: DeserializeOwned>(
        &mut self,
        key: &str,
        value: &Spanned<DeValue<'a>>,
    ) -> Option<T> {
        match T::deserialize(value.clone().into_deserializer()) {
            Ok(read) => Some(read),
            Err(error) => {
                let span = error.span().unwrap_or_else(|| value.span());
                self.problem(span, key, error.message().trim().to_owned());
                None
            }
        }
    }

    /// `value` if no problem was found, else every problem, one after the other.
    pub fn finish<T>(self, value: T) -> Result<T, String> {
        if self.problems.is_empty() {
            return Ok(value);
        }
        Err(self
            .problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "))
    }

    /// Records every top-level key not in `known`.
    pub fn unknown_keys(&mut self, known: &[&str]) {
        for (key, span, _) in self.entries() {
            if !known.contains(&key.as_str()) {
                self.problem(
                    span,
                    &key,
                    format!("unknown key; expected one of: {}", known.join(", ")),
                );
            }
        }
    }

    /// The declarations of the array of tables `value` (`[[key]]`), each read and
    /// checked on its own: every entry's mistake is recorded, and the good ones kept.
    pub fn declared<T: Declared>(
        &mut self,
        key: &str,
        value: &Spanned<DeValue<'a>>,
        env: Env<'_>,
    ) -> Vec<T> {
        let DeValue::Array(entries) = value.get_ref() else {
            self.problem(
                value.span(),
                key,
                format!("expected one [[{key}]] table for each {}", T::WHAT),
            );
            return Vec::new();
        };
        let mut declared: Vec<T> = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let at = format!("{key}[{}]", index + 1);
            let Some(raw) = self.read::<T::Raw>(&at, entry) else {
                continue;
            };
            match T::declare(raw, env) {
                Ok(made) => {
                    for one in made {
                        let name = one.name();
                        if !name.is_empty() && declared.iter().any(|known| known.name() == name) {
                            self.problem(
                                entry.span(),
                                &at,
                                format!("{} {name:?} is declared twice", T::WHAT),
                            );
                            break;
                        }
                        declared.push(one);
                    }
                }
                Err(message) => self.problem(entry.span(), &at, message),
            }
        }
        declared
    }
}

/// Something a settings file declares in a `[[table]]` of its own: a source, a provider,
/// a channel, a rule.
pub trait Declared: Sized {
    /// As written.
    type Raw: DeserializeOwned;
    /// What one is called in messages ("Temporal source").
    const WHAT: &'static str;
    /// What `raw` declares (a Temporal source: one per namespace), its secrets read
    /// through `env`; or what is wrong with it.
    fn declare(raw: Self::Raw, env: Env<'_>) -> Result<Vec<Self>, String>;
    /// What no two may share (empty: anything goes).
    fn name(&self) -> String;
}

/// Reads a file of one kind of declaration (`[[source]]` tables, say, and nothing else):
/// every one, or every problem.
pub fn read_declarations<T: Declared>(
    text: &str,
    key: &'static str,
    env: Env<'_>,
) -> Result<Vec<T>, String> {
    let mut document = Document::parse(text);
    document.unknown_keys(&[key]);
    let declared = match document.get(key) {
        Some(value) => document.declared::<T>(key, &value, env),
        None => Vec::new(),
    };
    document.finish(declared)
}
