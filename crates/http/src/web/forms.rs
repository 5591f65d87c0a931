//! Forms: reading a posted form, the problems found with it, and labelled fields that show their problem
//! next to them and keep what was typed.
//!
//! A form is read as a list of pairs, never as a strict struct, so a missing or malformed field becomes a
//! problem shown next to that field rather than a bare 400 page that loses what was typed.

use std::str::FromStr;

use actix_web::web;
use maud::{Markup, html};

use crate::error::app_error;
use crate::web::{PageError, Viewer};

/// A posted form.
#[derive(Debug, Clone, Default)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub(crate) fn new(pairs: web::Form<Vec<(String, String)>>) -> Self {
        Form(pairs.into_inner())
    }

    /// A form filled with `pairs` (the initial values of a new form).
    pub(crate) fn with(pairs: &[(&str, &str)]) -> Self {
        Form(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    /// The value of `name` as typed, empty when absent.
    pub(crate) fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name` (checkboxes).
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// The value of `name`, `None` when empty (SQL keeps its whitespace; other text is trimmed).
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        let value = self.get(name).trim();
        (!value.is_empty()).then(|| value.to_owned())
    }

    /// The value of `name` exactly as typed, `None` when blank.
    pub(crate) fn raw(&self, name: &str) -> Option<String> {
        let value = self.get(name);
        (!value.trim().is_empty()).then(|| value.to_owned())
    }

    /// The text of `name`; a problem ("enter the `what`") when it is blank.
    pub(crate) fn needed(&self, name: &'static str, what: &str, problems: &mut Problems) -> Option<String> {
        let text = self.text(name);
        if text.is_none() {
            problems.add(name, format!("enter the {what}"));
        }
        text
    }

    /// `name` parsed; a problem when it is missing or does not parse.
    pub(crate) fn required<T: FromStr>(&self, name: &'static str, what: &str, problems: &mut Problems) -> Option<T> {
        match self.text(name) {
            None => {
                problems.add(name, format!("choose or enter the {what}"));
                None
            }
            Some(text) => self.parse(name, what, &text, problems),
        }
    }

    /// `name` parsed when given; a problem when it does not parse.
    pub(crate) fn optional<T: FromStr>(&self, name: &'static str, what: &str, problems: &mut Problems) -> Option<T> {
        let text = self.text(name)?;
        self.parse(name, what, &text, problems)
    }

    /// Every value of `name` (a group of checkboxes) parsed; a problem for each that does not parse.
    pub(crate) fn checked<T: FromStr>(&self, name: &'static str, what: &str, problems: &mut Problems) -> Vec<T> {
        let mut values = Vec::new();
        for value in self.all(name) {
            match value.parse() {
                Ok(parsed) => values.push(parsed),
                Err(_) => problems.add(name, format!("{value:?} is not a {what}")),
            }
        }
        values
    }

    fn parse<T: FromStr>(&self, name: &'static str, what: &str, text: &str, problems: &mut Problems) -> Option<T> {
        match text.parse() {
            Ok(value) => Some(value),
            Err(_) => {
                problems.add(name, format!("this is not a valid {what}"));
                None
            }
        }
    }
}

/// What is wrong with a submitted form: per field, and for the form as a whole.
#[derive(Debug, Clone, Default)]
pub(crate) struct Problems {
    fields: Vec<(String, String)>,
    general: Vec<String>,
}

impl Problems {
    pub(crate) fn add(&mut self, field: &str, message: impl Into<String>) {
        self.fields.push((field.to_owned(), message.into()));
    }

    pub(crate) fn general(&mut self, message: impl Into<String>) {
        self.general.push(message.into());
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.general.is_empty()
    }

    /// The problem with `field`, if any.
    pub(crate) fn of(&self, field: &str) -> Option<&str> {
        self.fields.iter().find(|(f, _)| f == field).map(|(_, m)| m.as_str())
    }

    /// A use case's refusal as problems to show on the form (`fields` are the form's field names: a refusal
    /// about another field is shown above the form); anything else is an error page.
    pub(crate) fn from_app(viewer: &Viewer, error: app::AppError, fields: &[&str]) -> Result<Self, PageError> {
        use app::AppError as E;
        let mut problems = Problems::default();
        match error {
            E::Invalid { field: Some(field), message, .. } if fields.contains(&field) => problems.add(field, message),
            E::Invalid { message, .. } | E::Conflict { message, .. } => problems.general(super::sentence(&message)),
            E::TooLarge { .. } => problems.general(super::sentence(&error.to_string())),
            E::Denied(denial) => problems.general(super::sentence(&denial.to_string())),
            other => return Err(PageError(app_error(&viewer.request_id, other))),
        }
        Ok(problems)
    }

    /// Every problem, above the form (each field's problem is also next to it).
    pub(crate) fn summary(&self) -> Markup {
        html! {
            @if !self.is_empty() {
                div.problems role="alert" {
                    p { strong { "There is a problem:" } }
                    ul {
                        @for message in &self.general { li { (message) } }
                        @for (field, message) in &self.fields {
                            li { a href={ "#" (field) } { (message) } }
                        }
                    }
                }
            }
        }
    }
}

/// The hidden CSRF field of a form.
pub(crate) fn csrf(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf_token" value=(viewer.csrf()); }
}

/// A field's label, hint and problem around its control.
#[allow(clippy::needless_pass_by_value)] // maud splices markup by value
fn field(name: &str, label: &str, hint: Option<&str>, problems: &Problems, control: Markup) -> Markup {
    html! {
        div.field.invalid[problems.of(name).is_some()] {
            label for=(name) { (label) }
            @if let Some(hint) = hint { p.hint id={ (name) "-hint" } { (hint) } }
            (control)
            @if let Some(problem) = problems.of(name) {
                p.field-error id={ (name) "-error" } { (problem) }
            }
        }
    }
}

fn described_by(name: &str, hint: Option<&str>, problems: &Problems) -> Option<String> {
    let mut ids = Vec::new();
    if hint.is_some() {
        ids.push(format!("{name}-hint"));
    }
    if problems.of(name).is_some() {
        ids.push(format!("{name}-error"));
    }
    (!ids.is_empty()).then(|| ids.join(" "))
}

/// Options of a text input.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Input<'a> {
    pub kind: &'a str,
    pub hint: Option<&'a str>,
    pub required: bool,
    pub max_length: Option<usize>,
    pub min: Option<u32>,
    pub max: Option<u32>,
}

/// A labelled text (or `kind`) input.
pub(crate) fn input(form: &Form, problems: &Problems, name: &str, label: &str, options: Input<'_>) -> Markup {
    let kind = if options.kind.is_empty() { "text" } else { options.kind };
    let control = html! {
        input id=(name) name=(name) type=(kind) value=(form.get(name))
            required[options.required] maxlength=[options.max_length] min=[options.min] max=[options.max]
            aria-invalid=[problems.of(name).map(|_| "true")]
            aria-describedby=[described_by(name, options.hint, problems)];
    };
    field(name, label, options.hint, problems, control)
}

/// A labelled text area (SQL keeps its spacing: the value is the text as typed).
pub(crate) fn textarea(
    form: &Form,
    problems: &Problems,
    name: &str,
    label: &str,
    hint: Option<&str>,
    rows: u32,
) -> Markup {
    let control = html! {
        textarea id=(name) name=(name) rows=(rows) spellcheck="false"
            aria-invalid=[problems.of(name).map(|_| "true")]
            aria-describedby=[described_by(name, hint, problems)] { (form.get(name)) }
    };
    field(name, label, hint, problems, control)
}

/// A labelled select of `(value, label)` options; `blank` adds a first, empty choice.
pub(crate) fn select(
    form: &Form,
    problems: &Problems,
    name: &str,
    label: &str,
    options: &[(String, String)],
    blank: Option<&str>,
) -> Markup {
    select_with_hint(form, problems, name, label, options, blank, None)
}

/// A labelled select with a hint under its label.
pub(crate) fn select_with_hint(
    form: &Form,
    problems: &Problems,
    name: &str,
    label: &str,
    options: &[(String, String)],
    blank: Option<&str>,
    hint: Option<&str>,
) -> Markup {
    let chosen = form.get(name);
    let control = html! {
        select id=(name) name=(name)
            aria-invalid=[problems.of(name).map(|_| "true")]
            aria-describedby=[described_by(name, hint, problems)] {
            @if let Some(blank) = blank { option value="" { (blank) } }
            @for (value, text) in options {
                option value=(value) selected[value == chosen] { (text) }
            }
        }
    };
    field(name, label, hint, problems, control)
}

/// The options of a closed set of names (enums with `NAMES`).
pub(crate) fn names(names: &[&str]) -> Vec<(String, String)> {
    names.iter().map(|n| ((*n).to_owned(), n.replace('_', " "))).collect()
}

/// A group of checkboxes named `name`, one per option (value, text), checked where the form holds the value.
pub(crate) fn checkboxes(
    form: &Form,
    problems: &Problems,
    name: &str,
    legend: &str,
    options: &[(String, String)],
) -> Markup {
    let checked = form.all(name);
    html! {
        fieldset.field.invalid[problems.of(name).is_some()] id=(name) {
            legend { (legend) }
            @for (value, text) in options {
                label.check {
                    input type="checkbox" name=(name) value=(value) checked[checked.contains(&value.as_str())];
                    " " (text)
                }
            }
            @if let Some(problem) = problems.of(name) { p.field-error { (problem) } }
        }
    }
}
