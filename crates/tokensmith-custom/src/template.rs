//! Value templates: `"Key {api_key}"`, `"Bearer {token}"`. A `{name}`
//! placeholder stands for a named value; `{{` and `}}` are literal braces.

use std::fmt::Write as _;

/// One part of a template.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum Part {
    /// Text sent as written.
    Literal(String),
    /// A placeholder: the value named.
    Name(String),
}

/// A parsed template.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Template(Vec<Part>);

impl Template {
    /// Parses `text`, or says what is malformed.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(format!(
                            "malformed template {text:?}: the `{{` at byte {at} is never closed \
                             (write `{{{{` for a literal brace)"
                        ));
                    }
                    let valid =
                        name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if !valid {
                        return Err(format!(
                            "malformed template {text:?}: `{{{name}}}` is not a placeholder \
                             (a name of letters, digits and `_`; write `{{{{` for a literal brace)"
                        ));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Name(name));
                }
                '}' => {
                    return Err(format!(
                        "malformed template {text:?}: a lone `}}` at byte {at} (write `}}}}` for a literal brace)"
                    ));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Self(parts))
    }

    /// The names of its placeholders.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            Part::Name(n) => Some(n.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// The literal text of it (what is written in the config file).
    pub(crate) fn literals(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            Part::Literal(l) => Some(l.as_str()),
            Part::Name(_) => None,
        })
    }

    /// The template with each placeholder replaced by `value(name)`.
    pub(crate) fn render<'v>(&self, value: impl Fn(&str) -> &'v str) -> String {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Name(n) => {
                    let _ = write!(out, "{}", value(n));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(text: &str, expected: Result<&[Part], &str>) {
        match (Template::parse(text), expected) {
            (Ok(t), Ok(parts)) => assert_eq!(t.0, parts, "{text:?}"),
            (Err(e), Err(needle)) => assert!(e.contains(needle), "{text:?}: {e}"),
            (got, want) => panic!("{text:?}: got {got:?}, want {want:?}"),
        }
    }

    fn lit(s: &str) -> Part {
        Part::Literal(s.to_owned())
    }

    fn name(s: &str) -> Part {
        Part::Name(s.to_owned())
    }

    #[test]
    fn templates_parse_or_say_what_is_malformed() {
        check("Bearer {token}", Ok(&[lit("Bearer "), name("token")]));
        check("{token}", Ok(&[name("token")]));
        check("CwsAuth Bearer={token}", Ok(&[lit("CwsAuth Bearer="), name("token")]));
        check("{{literal}}", Ok(&[lit("{literal}")]));
        check("a{x}{y}b", Ok(&[lit("a"), name("x"), name("y"), lit("b")]));
        check("", Ok(&[]));
        check("Bearer {token", Err("never closed"));
        check("Bearer token}", Err("a lone `}`"));
        check("{}", Err("is not a placeholder"));
        check("{to ken}", Err("is not a placeholder"));
        check("{1x}", Err("is not a placeholder"));
    }

    #[test]
    fn render_replaces_each_name() {
        let t = Template::parse("Key {a}/{b}/{{x}}").unwrap();
        assert_eq!(t.render(|n| if n == "a" { "1" } else { "2" }), "Key 1/2/{x}");
        assert_eq!(t.names().collect::<Vec<_>>(), ["a", "b"]);
    }
}
